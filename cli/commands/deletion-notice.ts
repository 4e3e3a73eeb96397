/**
 * @module
 * What deleting (or re-creating) a gateway takes along: its services and their replica
 * registrations, listed before the question so that a "yes" is a yes to all of it. The API
 * refuses such a deletion unless asked to cascade; the CLI asks for it only after that "yes".
 */
import type { Service } from "../../schema/service-api.ts";

export function deletionNotice(gateway: string, services: readonly Service[], action: "Deleting" | "Re-creating") {
  if (services.length === 0) return [];
  const registrations = services.reduce((n, s) => n + s.replicas.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return [
    `${action} gateway ${gateway} also deletes its ${plural(services.length, "service")} and their ` +
      `${plural(registrations, "replica registration")}:`,
    ...services.map((s) => `- ${s.name} (${plural(s.replicas.length, "replica")})`),
    "",
  ];
}
