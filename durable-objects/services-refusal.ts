/**
 * @module
 * The refusal of a gateway deletion (or re-create) that would silently take services with it:
 * one wording for the Worker's all-or-nothing check and the object's own.
 */
import type { ErrorInfo } from "../worker/errors.ts";

export function servicesRefusal(
  gateway: string,
  services: readonly string[],
  action: "delete" | "re-create",
): ErrorInfo & { field: string } {
  const list = services.join(", ");
  const noun = services.length === 1 ? "service" : "services";
  return {
    status: 409,
    code: "has_services",
    field: "cascade",
    message:
      `Gateway ${gateway} has ${services.length} ${noun} (${list}): to ${action} it deletes ${services.length === 1 ? "it" : "them"} ` +
      `and ${services.length === 1 ? "its" : "their"} replica registrations. Delete the ${noun} first, or ask for it with cascade: true.`,
  };
}
