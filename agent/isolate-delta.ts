/**
 * @module
 * `isolate-services.ts` for a delta: its envelope (versions, removed names, the head when present)
 * is validated as a whole, and a refusal there is a NACK; each service it carries is validated on
 * its own, and one that cannot be applied keeps its last good state (it simply stays out of the
 * delta) or, when new, is not served. Only what the delta carries is validated: the services it does
 * not touch were validated when they arrived, and the clashes with them are looked up in the
 * applied document's indexes (`proxy/config-merge.ts`), not found by a walk of every service.
 */
import * as v from "valibot";
import { type ConfigState, deltaProblems } from "../proxy/config-merge.ts";
import { normalizeHost, parseDocument } from "../proxy/routes.ts";
import { MAX_REPORT_TEXT, type ServiceRejection } from "../schema/agent-protocol.ts";
import { type ConfigDelta, ConfigHead } from "../schema/config-delta.ts";
import type { ConfigService } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";

/** The delta with its services unchecked: what must hold for any of it to be applied. */
const Version = v.pipe(v.number(), v.integer(), v.minValue(1));
const Envelope = v.object({
  base_version: Version,
  version: Version,
  services: v.array(v.unknown()),
  removed: v.array(v.string()),
  head: v.optional(ConfigHead),
});

export type DeltaIsolation =
  | { ok: true; delta: ConfigDelta; rejected: ServiceRejection[] }
  | { ok: false; error: string };

/** The delta's versions, when it has usable ones (before anything else is checked: a gap is not a NACK). */
export function deltaVersions(candidate: unknown): { base: number; version: number } | null {
  const c = candidate as { base_version?: unknown; version?: unknown } | null;
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isSafeInteger(n) && n >= 1;
  return ok(c?.base_version) && ok(c?.version) ? { base: c.base_version, version: c.version } : null;
}

/**
 * Splits `candidate` (on top of `state`, at its base version) into the delta to apply and the
 * services refused, each named with its field.
 */
export function isolateDelta(candidate: unknown, state: ConfigState): DeltaIsolation {
  const envelope = v.safeParse(Envelope, candidate);
  if (!envelope.success) {
    return { ok: false, error: `invalid config delta: ${fromValibot(envelope.issues).map(formatIssue).join("; ")}` };
  }
  const { base_version, version, removed, head } = envelope.output;
  if (version <= base_version) return { ok: false, error: "version: expected a version after base_version" };
  const base = { ...(head ?? state.head), version, services: [] as ConfigService[] };
  try {
    // The head's own rules (the entrypoint's host) concern every service: refused as a whole.
    if (head) parseDocument(base);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const accepted: ConfigService[] = [];
  const rejected: ServiceRejection[] = [];
  const changing = new Set<string>();
  const gone = new Set(removed);
  const hosts = new Set<string>();
  envelope.output.services.forEach((raw, i) => {
    const name = nameOf(raw);
    let error: string | null = null;
    try {
      const service = parseDocument({ ...base, services: [raw] }).services[0]!;
      error = clash(service, state, accepted, hosts, gone);
      if (error === null) {
        accepted.push(service);
        changing.add(service.name);
        hosts.add(normalizeHost(service.host));
      }
    } catch (e) {
      error = (e as Error).message.replace(/^configuration version \d+ rejected: /, "");
    }
    if (error === null) return;
    // Its last good state stays in force: it is not in the delta (unless the delta removes it).
    const kept = name !== null && state.byName.has(name) && !gone.has(name);
    rejected.push({
      service: name ?? "(unnamed)",
      error: truncate(error.replaceAll("services[0]", `services[${i}]`)),
      kept,
    });
  });
  const delta: ConfigDelta = { base_version, version, services: accepted, removed, ...(head ? { head } : {}) };
  // What is left must hold as a whole (a service refused and kept may hold a host another one took).
  const problems = deltaProblems(state, delta);
  if (problems.length > 0)
    return { ok: false, error: `configuration version ${version} rejected: ${problems.join("; ")}` };
  return { ok: true, delta, rejected };
}

function clash(
  service: ConfigService,
  state: ConfigState,
  accepted: readonly ConfigService[],
  hosts: ReadonlySet<string>,
  gone: ReadonlySet<string>,
): string | null {
  const host = normalizeHost(service.host);
  if (gone.has(service.name)) return `name: ${service.name} is also removed by this delta`;
  if (accepted.some((s) => s.name === service.name)) return `name: ${service.name} is already another service's name`;
  if (hosts.has(host)) return `host: ${host} is already another service's host`;
  const owner = state.hostOwner.get(host);
  // The owner's host is free only if it moves (accepted earlier in this delta) or goes.
  if (owner !== undefined && owner !== service.name && !gone.has(owner)) {
    const moved = accepted.find((s) => s.name === owner);
    if (!moved || normalizeHost(moved.host) === host) return `host: ${host} is already another service's host`;
  }
  return null;
}

function nameOf(raw: unknown): string | null {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === "string" && name.length > 0 && name.length <= 200 ? name : null;
}

const truncate = (text: string) => (text.length > MAX_REPORT_TEXT ? `${text.slice(0, MAX_REPORT_TEXT - 1)}…` : text);
