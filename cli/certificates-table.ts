/**
 * Per-host certificate state of a gateway, as `gateplane gateway get` prints it under the gateway:
 * one row per replica and host (issued, expiry, renewal, last error).
 */
import type { Gateway } from "../schema/api.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

const day = (iso: string | null) => (iso ? iso.slice(0, 16).replace("T", " ") : "-");

export function certificatesTable(gateway: Pick<Gateway, "replicas">, style: Style): string[] {
  const rows = gateway.replicas.flatMap((r) =>
    (r.certificates ?? []).map((c) => ({
      cells: [
        c.host,
        String(r.replica_num),
        c.status,
        day(c.not_after),
        day(c.renew_at),
        c.last_error ? `${c.last_error.replace(/\s+/g, " ")} (retry ${day(c.next_attempt_at)})` : "-",
      ],
    })),
  );
  if (rows.length === 0) return [];
  return ["", ...renderTable(["CERTIFICATE", "REPLICA", "STATUS", "EXPIRES", "RENEWS", "LAST ERROR"], rows, style)];
}
