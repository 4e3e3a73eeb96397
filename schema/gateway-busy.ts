/**
 * @module
 * The "busy" rule of a gateway change, in one place for the Worker's plan and the GatewayObject's
 * apply: a gateway being deleted takes no change, and a FAILED one cannot change in place (a
 * re-create replaces it, so the object checks that part after the re-create branch). Refusals are
 * of kind `busy` (409 in the API).
 */

export interface BusyRefusal {
  kind: "busy";
  code: "being_deleted" | "failed";
  message: string;
}

interface GatewayForBusy {
  name: string;
  to_be_deleted: boolean;
  status: string;
}

export function beingDeletedRefusal(g: GatewayForBusy): BusyRefusal | null {
  if (!g.to_be_deleted) return null;
  return { kind: "busy", code: "being_deleted", message: `Gateway ${g.name} is being deleted. Try again later.` };
}

export function failedRefusal(g: GatewayForBusy): BusyRefusal | null {
  if (g.status !== "failed") return null;
  return {
    kind: "busy",
    code: "failed",
    message: `Gateway ${g.name} is in FAILED status and cannot be updated in-place. Delete it and re-apply.`,
  };
}

/** A plan against a busy gateway is refused at once: being deleted first, then failed. */
export const busyRefusal = (g: GatewayForBusy): BusyRefusal | null => beingDeletedRefusal(g) ?? failedRefusal(g);
