/**
 * @module
 * Tables of `gateplane webhook`: endpoints (STATUS says enabled, failing or why it was disabled) and
 * an endpoint's delivery log (what was sent, how often, and what the receiver last answered).
 */
import type { Delivery, Webhook } from "../schema/webhooks.ts";
import { formatAge } from "./age.ts";
import type { Style } from "./style.ts";
import { renderTable } from "./text-table.ts";

export function webhookStatus(w: Webhook): string {
  if (!w.enabled) return `disabled${w.disabled_reason ? `: ${w.disabled_reason}` : ""}`;
  if (w.consecutive_failures > 0) return `failing (${w.consecutive_failures} in a row)`;
  return "enabled";
}

export function webhooksTable(list: readonly Webhook[], now: number, style: Style): string[] {
  const rows = list.map((w) => ({
    cells: [w.id, w.url, w.events.join(","), webhookStatus(w), formatAge(w.created_at, now)],
  }));
  return renderTable(["ID", "URL", "EVENTS", "STATUS", "CREATED"], rows, style);
}

/** RESULT: the receiver's last answer (status, else the error); NEXT: when a pending one is tried again. */
export function deliveriesTable(list: readonly Delivery[], now: number, style: Style): string[] {
  const rows = list.map((d) => ({
    cells: [
      String(d.id),
      d.event_type,
      d.gateway ?? "",
      d.sequence === null ? "" : String(d.sequence),
      d.state,
      String(d.attempts),
      d.last_status !== null ? `HTTP ${d.last_status}` : (d.last_error ?? ""),
      d.next_attempt_at ? inTime(d.next_attempt_at, now) : "",
      formatAge(d.created_at, now),
    ],
  }));
  return renderTable(["ID", "EVENT", "GATEWAY", "SEQ", "STATE", "ATTEMPTS", "RESULT", "NEXT", "CREATED"], rows, style);
}

function inTime(iso: string, now: number): string {
  const seconds = Math.max(0, Math.round((Date.parse(iso) - now) / 1000));
  if (seconds < 60) return `in ${seconds} sec`;
  if (seconds < 3600) return `in ${Math.round(seconds / 60)} min`;
  return `in ${Math.round(seconds / 3600)} h`;
}
