/**
 * @module
 * A configuration delta (`schema/config-delta.ts`) on top of the document in force: its checks and
 * the merged document. The document stays whole on the host (the processes restart from it, the
 * agent persists it), but a delta is checked in O(changed): the host and name clashes that
 * `documentProblems` finds by scanning every service are looked up in the indexes kept beside the
 * document. The merged document keeps the control plane's order, services by name.
 */
import * as v from "valibot";
import { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";
import { ConfigRejectedError } from "./errors.ts";
import { normalizeHost } from "./headers.ts";
import { entrypointProblems, serviceProblems } from "./routes.ts";

/** A validated document with its indexes: services by name, and which service owns each host. */
export interface ConfigState {
  readonly doc: ConfigDocument;
  readonly byName: ReadonlyMap<string, ConfigService>;
  readonly hostOwner: ReadonlyMap<string, string>;
}

/** The indexes of a validated document (O(services), once per whole document). */
export function indexDocument(doc: ConfigDocument): ConfigState {
  const byName = new Map<string, ConfigService>();
  const hostOwner = new Map<string, string>();
  for (const service of doc.services) {
    byName.set(service.name, service);
    hostOwner.set(normalizeHost(service.host), service.name);
  }
  return { doc, byName, hostOwner };
}

/** Validates a delta's shape (valibot, only the services it carries) or throws {@link ConfigRejectedError}. */
export function parseDeltaShape(input: unknown): ConfigDelta {
  const result = v.safeParse(ConfigDelta, input);
  if (result.success) return result.output;
  const version = (input as { version?: unknown } | null)?.version;
  throw new ConfigRejectedError(
    typeof version === "number" ? version : null,
    fromValibot(result.issues).map(formatIssue),
  );
}

/** Validates a delta completely against `state` (shape, base version, the services' rules) or throws. */
export function parseDelta(input: unknown, state: ConfigState): ConfigDelta {
  const delta = parseDeltaShape(input);
  const problems = deltaProblems(state, delta);
  if (problems.length > 0) throw new ConfigRejectedError(delta.version, problems);
  return delta;
}

/**
 * What `documentProblems` would find in the merged document, found from the delta and the indexes:
 * the changed services' own rules, their hosts and names against each other and the services kept,
 * and the entrypoint against every host when the head moves it.
 */
export function deltaProblems(state: ConfigState, delta: ConfigDelta): string[] {
  const problems: string[] = [];
  if (delta.base_version !== state.doc.version) {
    problems.push(`base_version: ${delta.base_version} is not the version in force (${state.doc.version})`);
    return problems;
  }
  const head = delta.head ?? state.doc;
  const entrypoint = entrypointProblems(head, problems);
  const changed = new Set(delta.services.map((s) => s.name));
  const removed = new Set(delta.removed);
  // A host is free when its owner goes away or moves in this delta.
  const ownerKept = (host: string) => {
    const owner = state.hostOwner.get(host);
    return owner !== undefined && !changed.has(owner) && !removed.has(owner) ? owner : null;
  };
  const hosts = new Map<string, number>();
  const names = new Map<string, number>();
  delta.services.forEach((service, i) => {
    const at = `services[${i}]`;
    const host = normalizeHost(service.host);
    problems.push(...serviceProblems(service, at, entrypoint));
    if (removed.has(service.name)) problems.push(`${at}.name: ${service.name} is also in removed`);
    const sameName = names.get(service.name);
    if (sameName !== undefined)
      problems.push(`${at}.name: ${service.name} is already the name of services[${sameName}]`);
    else names.set(service.name, i);
    const sameHost = hosts.get(host);
    const owner = ownerKept(host);
    if (sameHost !== undefined) problems.push(`${at}.host: ${host} is already the host of services[${sameHost}]`);
    else if (owner !== null) problems.push(`${at}.host: ${host} is already the host of service ${owner}`);
    else hosts.set(host, i);
  });
  // A new entrypoint host must not be a kept service's (rare: a change of domain comes as a whole document).
  if (entrypoint !== null && delta.head && entrypoint !== entrypointOf(state.doc)) {
    const owner = ownerKept(entrypoint);
    if (owner !== null) problems.push(`entrypoint.host: ${entrypoint} is already the host of service ${owner}`);
  }
  return problems;
}

const entrypointOf = (doc: ConfigDocument) => (doc.entrypoint ? normalizeHost(doc.entrypoint.host) : null);

/** The state after a checked delta: the merged document (services in name order) and its indexes. */
export function mergeDelta(state: ConfigState, delta: ConfigDelta): ConfigState {
  const byName = new Map(state.byName);
  const hostOwner = new Map(state.hostOwner);
  const drop = (name: string) => {
    const old = byName.get(name);
    if (!old) return;
    byName.delete(name);
    const host = normalizeHost(old.host);
    if (hostOwner.get(host) === name) hostOwner.delete(host);
  };
  for (const name of delta.removed) drop(name);
  const added: ConfigService[] = [];
  for (const service of delta.services) {
    if (!state.byName.has(service.name)) added.push(service);
    drop(service.name);
  }
  for (const service of delta.services) {
    byName.set(service.name, service);
    hostOwner.set(normalizeHost(service.host), service.name);
  }
  // The kept services in their order, each at its newest; the added merged in by name.
  const kept: ConfigService[] = [];
  for (const service of state.doc.services) {
    const now = byName.get(service.name);
    if (now !== undefined) kept.push(now);
  }
  const services = added.length === 0 ? kept : mergeByName(kept, added.sort(byNameOrder));
  const { version: _v, services: _s, ...envelope } = state.doc;
  const doc: ConfigDocument = { ...(delta.head ?? envelope), version: delta.version, services };
  return { doc, byName, hostOwner };
}

const byNameOrder = (a: ConfigService, b: ConfigService) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

function mergeByName(a: ConfigService[], b: ConfigService[]): ConfigService[] {
  const out: ConfigService[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) out.push(a[i]!.name <= b[j]!.name ? a[i++]! : b[j++]!);
  while (i < a.length) out.push(a[i++]!);
  while (j < b.length) out.push(b[j++]!);
  return out;
}
