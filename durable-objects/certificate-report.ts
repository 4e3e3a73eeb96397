/**
 * @module
 * An agent's certificate report against the previous one: the typed events it implies. A host is
 * `certificate.issued` when it has a certificate it did not have before (new expiry), and
 * `certificate.failed` when a new failure is reported (a later `last_error_at`), so repeated
 * reports of the same state emit nothing.
 */
import type { CertificateState } from "../schema/agent-protocol.ts";
import type { TypedEvent } from "../schema/events.ts";

export interface CertificateEvent {
  message: string;
  typed: TypedEvent;
}

export function certificateEvents(
  replicaNum: number,
  previous: readonly CertificateState[],
  current: readonly CertificateState[],
): CertificateEvent[] {
  const before = new Map(previous.map((s) => [s.host, s]));
  const events: CertificateEvent[] = [];
  for (const s of current) {
    const old = before.get(s.host);
    if (s.status === "issued" && s.not_after && s.not_after !== old?.not_after) {
      events.push({
        message: `Certificate for ${s.host} issued on gateway replica ${replicaNum} (expires ${s.not_after})`,
        typed: { type: "certificate.issued", data: { host: s.host, replica_num: replicaNum, expires_at: s.not_after } },
      });
    }
    if (s.last_error && s.last_error_at && s.last_error_at !== old?.last_error_at) {
      events.push({
        message: `Certificate for ${s.host} failed on gateway replica ${replicaNum}: ${s.last_error.slice(0, 500)}`,
        typed: { type: "certificate.failed", data: { host: s.host, replica_num: replicaNum, error: s.last_error } },
      });
    }
  }
  return events;
}
