/**
 * @module
 * The refusal of a gateway deletion (or re-create) that would silently take services with it
 * (409 `has_services`, field `cascade`): one wording for the Worker, its GatewayObject and the
 * CLI's test double.
 */

export const HAS_SERVICES = "has_services";

export function servicesRefusal(
  gateway: string,
  services: readonly string[],
  action: "delete" | "re-create",
): { status: 409; code: typeof HAS_SERVICES; field: "cascade"; message: string } {
  const one = services.length === 1;
  const noun = one ? "service" : "services";
  return {
    status: 409,
    code: HAS_SERVICES,
    field: "cascade",
    message:
      `Gateway ${gateway} has ${services.length} ${noun} (${services.join(", ")}): to ${action} it deletes ` +
      `${one ? "it" : "them"} and ${one ? "its" : "their"} replica registrations. ` +
      `Delete the ${noun} first, or ask for it with cascade: true.`,
  };
}
