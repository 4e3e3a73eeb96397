/**
 * @module
 * A configuration delta (`schema/config-delta.ts`) on top of the document in force: its checks and
 * the merged state. A delta is checked and merged in O(changed): the host and name clashes that
 * `documentProblems` finds by scanning every service are looked up in the state's indexes, which the
 * delta then changes in place (`ConfigState.apply`, undone when the delta is refused downstream).
 * The document stays whole on the host when asked for (the processes restart from it, the agent
 * persists it), made from the indexes then, in the control plane's order: services by name.
 */
import * as v from "valibot";
import { ConfigDelta, type ConfigHead } from "../schema/config-delta.ts";
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";
import { ConfigRejectedError } from "./errors.ts";
import { normalizeHost } from "./headers.ts";
import { entrypointProblems, serviceProblems } from "./routes.ts";

/**
 * A validated document held as its indexes, which a delta changes in place: services by name, which
 * service owns each host, the envelope and the version. The whole document (`doc`, services in name
 * order) is made when asked for (a persisted write, a process started, a rollback), not per delta.
 * `apply` returns what undoes it, so a delta refused downstream leaves the state as it was.
 */
export class ConfigState {
  readonly #byName = new Map<string, ConfigService>();
  readonly #hostOwner = new Map<string, string>();
  #version: number;
  #head: ConfigHead;
  /** The whole document as last made; null: made again when asked. */
  #doc: ConfigDocument | null;
  /**
   * The last document made (even of an older version) and what changed since, which `doc` patches:
   * the names added, the names changed in place, whether any was removed; each service's position
   * in `#base` (made when first needed after services were added or removed).
   */
  #base: ConfigDocument;
  #added = new Set<string>();
  #changed = new Set<string>();
  #removed = false;
  #positions: Map<string, number> | null = null;

  constructor(doc: ConfigDocument) {
    const { version, services, ...head } = doc;
    this.#version = version;
    this.#head = head;
    this.#doc = doc;
    this.#base = doc;
    for (const service of services) {
      this.#byName.set(service.name, service);
      this.#hostOwner.set(normalizeHost(service.host), service.name);
    }
  }

  get version(): number {
    return this.#version;
  }

  /** The envelope: the document without its version and services. */
  get head(): ConfigHead {
    return this.#head;
  }

  get byName(): ReadonlyMap<string, ConfigService> {
    return this.#byName;
  }

  get hostOwner(): ReadonlyMap<string, string> {
    return this.#hostOwner;
  }

  /**
   * The whole document. After deltas that only changed services: a copy of the last one made (an
   * array of references) with those services replaced, O(changed). After services were added or
   * removed: the kept services in their order, each at its newest, the added merged in by name, O(services).
   */
  get doc(): ConfigDocument {
    if (this.#doc) return this.#doc;
    let services: ConfigService[];
    if (this.#added.size === 0 && !this.#removed) {
      this.#positions ??= new Map(this.#base.services.map((s, i) => [s.name, i]));
      services = this.#base.services.slice();
      for (const name of this.#changed) services[this.#positions.get(name)!] = this.#byName.get(name)!;
    } else {
      const kept: ConfigService[] = [];
      for (const service of this.#base.services) {
        const now = this.#byName.get(service.name);
        if (now !== undefined && !this.#added.has(service.name)) kept.push(now);
      }
      const added = [...this.#added].flatMap((name) => this.#byName.get(name) ?? []).sort(byNameOrder);
      services = mergeByName(kept, added);
      this.#positions = null;
    }
    this.#doc = { ...this.#head, version: this.#version, services };
    this.#base = this.#doc;
    this.#added = new Set();
    this.#changed = new Set();
    this.#removed = false;
    return this.#doc;
  }

  /** Applies a checked delta in place (O(changed)); the returned function puts the state back as it was. */
  apply(delta: ConfigDelta): () => void {
    const before = new Map<string, ConfigService | undefined>();
    const hosts = new Map<string, string | undefined>();
    const { version, head, doc, base } = { version: this.#version, head: this.#head, doc: this.#doc, base: this.#base };
    const [added, changed, removed, positions] = [
      new Set(this.#added),
      new Set(this.#changed),
      this.#removed,
      this.#positions,
    ];
    const setHost = (host: string, owner: string | undefined) => {
      if (!hosts.has(host)) hosts.set(host, this.#hostOwner.get(host));
      if (owner === undefined) this.#hostOwner.delete(host);
      else this.#hostOwner.set(host, owner);
    };
    const drop = (name: string) => {
      const old = this.#byName.get(name);
      if (!before.has(name)) before.set(name, old);
      if (!old) return;
      this.#byName.delete(name);
      const host = normalizeHost(old.host);
      if (this.#hostOwner.get(host) === name) setHost(host, undefined);
    };
    for (const name of delta.removed) {
      drop(name);
      if (before.get(name) !== undefined && !this.#added.has(name)) this.#removed = true;
    }
    for (const service of delta.services) drop(service.name);
    for (const service of delta.services) {
      if (before.get(service.name) === undefined) this.#added.add(service.name);
      else if (!this.#added.has(service.name)) this.#changed.add(service.name);
      this.#byName.set(service.name, service);
      setHost(normalizeHost(service.host), service.name);
    }
    this.#version = delta.version;
    if (delta.head) this.#head = delta.head;
    this.#doc = null;
    return () => {
      for (const [name, service] of before) {
        if (service === undefined) this.#byName.delete(name);
        else this.#byName.set(name, service);
      }
      for (const [host, owner] of hosts) {
        if (owner === undefined) this.#hostOwner.delete(host);
        else this.#hostOwner.set(host, owner);
      }
      this.#version = version;
      this.#head = head;
      this.#doc = doc;
      this.#base = base;
      this.#added = added;
      this.#changed = changed;
      this.#removed = removed;
      this.#positions = positions;
    };
  }
}

/** The state of a validated document (O(services), once per whole document). */
export function indexDocument(doc: ConfigDocument): ConfigState {
  return new ConfigState(doc);
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
  if (delta.base_version !== state.version) {
    problems.push(`base_version: ${delta.base_version} is not the version in force (${state.version})`);
    return problems;
  }
  const head = delta.head ?? state.head;
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
  if (entrypoint !== null && delta.head && entrypoint !== entrypointOf(state.head)) {
    const owner = ownerKept(entrypoint);
    if (owner !== null) problems.push(`entrypoint.host: ${entrypoint} is already the host of service ${owner}`);
  }
  return problems;
}

const entrypointOf = (head: ConfigHead) => (head.entrypoint ? normalizeHost(head.entrypoint.host) : null);

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
