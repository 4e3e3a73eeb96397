/**
 * @module
 * The one path by which a configuration document reaches the proxy, whichever channel brought it
 * (WebSocket push or HTTP fallback): validate, skip what is not newer, `proxy.apply`, persist as the
 * last good config. Offers are serialised, so two channels delivering at once cannot apply out of
 * order, and the outcome says what to report (ACK, NACK, or nothing). A service that cannot be
 * applied is isolated (`isolate-services.ts`): the rest of the document is applied and the ACK lists it.
 *
 * A delta (`schema/config-delta.ts`) takes the same path on top of the applied document: only at
 * its base version (anything else is a gap, reported for the channel to resync, never applied),
 * only its services validated (`isolate-delta.ts`), handed to the proxy as a delta, and persisted as
 * a delta on top of the document persisted (`config-store.ts`: a line appended to a journal, not a
 * 10 MB file rewritten). That write is not awaited: the next delta must not wait for it. A whole
 * document's write is, as it always was.
 */

import { type ConfigState, indexDocument } from "../proxy/config-merge.ts";
import { ConfigRejectedError } from "../proxy/index.ts";
import { MAX_NACK_ERROR, type ServiceRejection } from "../schema/agent-protocol.ts";
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import { composeDeltas } from "./compose-deltas.ts";
import type { ConfigStore } from "./config-store.ts";
import { deltaVersions, isolateDelta } from "./isolate-delta.ts";
import { isolateServices } from "./isolate-services.ts";
import type { Logger } from "./log.ts";

export type ApplyOutcome =
  /** Now served and persisted (ACK), but for the `rejected` services (kept at their last good state, or left out). */
  | { kind: "applied"; version: number; rejected: ServiceRejection[] }
  /** Already the applied version: nothing done (re-ACK on the socket, so a new connection learns it). */
  | { kind: "current"; version: number; rejected: ServiceRejection[] }
  /** Older than the applied version: ignored, nothing reported. */
  | { kind: "stale"; version: number; applied: number }
  /** Invalid, or the proxy refused it: the previous config stays (NACK). */
  | { kind: "rejected"; version: number; error: string }
  /** A delta on top of another version than the applied one: not applied; the channel asks to resync from `applied`. */
  | { kind: "gap"; version: number; applied: number | null };

export interface ConfigApplierOptions {
  apply: (document: ConfigDocument) => Promise<void>;
  /** Applies a checked delta; `document` is the merged whole (absent: `apply(document)`). */
  applyDelta?: (delta: ConfigDelta, document: ConfigDocument) => Promise<void>;
  store: ConfigStore;
  /** The document the proxy started with (the last good config from disk), if any. */
  initial: ConfigDocument | null;
  log: Logger;
}

export class ConfigApplier {
  private applied: ConfigDocument | null;
  /** The applied document's indexes, which a delta is checked against and merged into. */
  private state: ConfigState | null;
  /** The services of the applied version that are not served as configured. */
  private rejected: ServiceRejection[] = [];
  private persistFailure: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Deltas offered while another offer was being applied: composed and applied as one (`compose-deltas.ts`). */
  private pendingDeltas: { candidate: unknown; source: string; resolve: (outcome: ApplyOutcome) => void }[] = [];
  private readonly options: ConfigApplierOptions;

  constructor(options: ConfigApplierOptions) {
    this.options = options;
    this.applied = options.initial;
    this.state = options.initial ? indexDocument(options.initial) : null;
  }

  /** The version the proxy serves, or null before any document. */
  get version(): number | null {
    return this.applied?.version ?? null;
  }

  /** The services of the applied version that are not served as configured. */
  get rejectedServices(): ServiceRejection[] {
    return this.rejected;
  }

  /** Why the last applied document could not be persisted (the host then runs degraded), or null. */
  get persistError(): string | null {
    return this.persistFailure;
  }

  /** Validates and applies `candidate` (raw JSON from the wire) after every earlier offer settled. */
  offer(candidate: unknown, source: string): Promise<ApplyOutcome> {
    const next = this.queue.then(() => this.process(candidate, source));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /**
   * Validates and applies a delta (raw JSON from the wire) after every earlier offer settled. Deltas
   * that queued up meanwhile are composed with it and applied as one: the last of them gets the
   * outcome (its ACK, NACK or resync stands for all: a version's ACK covers the earlier ones), the
   * others `stale` (nothing to report).
   */
  offerDelta(candidate: unknown, source: string): Promise<ApplyOutcome> {
    const outcome = new Promise<ApplyOutcome>((resolve) => this.pendingDeltas.push({ candidate, source, resolve }));
    const next = this.queue.then(() => this.drainDeltas());
    this.queue = next.catch(() => undefined);
    return outcome;
  }

  private async drainDeltas(): Promise<void> {
    const batch = this.pendingDeltas.splice(0);
    let i = 0;
    while (i < batch.length) {
      let composed: unknown = batch[i]!.candidate;
      let j = i + 1;
      for (; j < batch.length; j++) {
        const next = composeDeltas(composed, batch[j]!.candidate);
        if (!next) break;
        composed = next;
      }
      const last = batch[j - 1]!;
      let outcome: ApplyOutcome;
      try {
        if (j - i > 1) this.options.log.info(`composing ${j - i} queued config deltas into one`);
        outcome = await this.processDelta(composed, last.source);
      } catch (error) {
        outcome = { kind: "rejected", version: versionOf(composed) ?? 0, error: proxyRefusal(error) };
      }
      const applied = this.version ?? 0;
      for (const earlier of batch.slice(i, j - 1)) {
        earlier.resolve({ kind: "stale", version: versionOf(earlier.candidate) ?? 0, applied });
      }
      last.resolve(outcome);
      i = j;
    }
  }

  private async processDelta(candidate: unknown, source: string): Promise<ApplyOutcome> {
    const { log } = this.options;
    const versions = deltaVersions(candidate);
    if (versions === null) {
      const error = "invalid config delta: base_version and version: expected whole numbers from 1";
      log.warn(`rejected a config delta from ${source}: ${error}`);
      return { kind: "rejected", version: versionOf(candidate) ?? 0, error };
    }
    const current = this.version;
    if (current !== null && versions.version <= current) {
      if (versions.version < current) return { kind: "stale", version: versions.version, applied: current };
      return { kind: "current", version: versions.version, rejected: this.rejected };
    }
    const state = this.state;
    if (state === null || versions.base !== current) {
      log.info(
        `config delta ${versions.base} → ${versions.version} from ${source} does not apply on version ${current ?? "(none)"}: resyncing`,
      );
      return { kind: "gap", version: versions.version, applied: current };
    }
    const isolated = isolateDelta(candidate, state);
    if (!isolated.ok) {
      const error = truncate(isolated.error);
      log.warn(`rejected config delta ${versions.base} → ${versions.version} from ${source}: ${error}`);
      return { kind: "rejected", version: versions.version, error };
    }
    const { delta } = isolated;
    for (const r of isolated.rejected) {
      const what = r.kept ? "keeps its last good state" : "is not served";
      log.warn(`config version ${delta.version}: service ${r.service} ${what}: ${r.error}`);
    }
    // Merged in place (O(changed)); undone when the proxy refuses it.
    const undo = state.apply(delta);
    const merged = state.doc;
    try {
      if (this.options.applyDelta) await this.options.applyDelta(delta, merged);
      else await this.options.apply(merged);
    } catch (error) {
      undo();
      const message = proxyRefusal(error);
      log.warn(`rejected config delta ${delta.base_version} → ${delta.version} from ${source}: ${message}`);
      return { kind: "rejected", version: delta.version, error: message };
    }
    // The version's refusals: those of services this delta did not touch, and its own.
    const touched = new Set([
      ...delta.removed,
      ...delta.services.map((s) => s.name),
      ...isolated.rejected.map((r) => r.service),
    ]);
    const rejected = [...this.rejected.filter((r) => !touched.has(r.service)), ...isolated.rejected];
    this.applied = merged;
    this.rejected = rejected;
    log.info(
      `applied config delta ${delta.base_version} → ${delta.version} from ${source} (${delta.services.length} services changed, ${delta.removed.length} removed)`,
    );
    void this.persist(merged, delta);
    return { kind: "applied", version: delta.version, rejected };
  }

  /** `delta`: the delta that made `document`, persisted as such (`ConfigStore.writeDelta`). */
  private async persist(document: ConfigDocument, delta?: ConfigDelta): Promise<void> {
    try {
      const { store } = this.options;
      await (delta && store.writeDelta ? store.writeDelta(delta, document) : store.write(document));
      if (this.persistFailure !== null)
        this.options.log.info(`last good config persisted again to ${this.options.store.file}`);
      this.persistFailure = null;
    } catch (error) {
      // The proxy serves it, so it is applied; only a restart would fall back to the older file.
      this.persistFailure = `cannot persist the last good config to ${this.options.store.file}: ${(error as Error).message}`;
      this.options.log.error(this.persistFailure);
    }
  }

  private async process(candidate: unknown, source: string): Promise<ApplyOutcome> {
    const { log } = this.options;
    const version = versionOf(candidate);
    const current = this.version;
    // Before validating: an older document is ignored even when it would not parse.
    if (version !== null && current !== null && version <= current) {
      if (version < current) {
        log.warn(`ignoring config version ${version} from ${source}: version ${current} is already applied`);
        return { kind: "stale", version, applied: current };
      }
      return { kind: "current", version, rejected: this.rejected };
    }
    const isolated = isolateServices(candidate, this.applied);
    if (!isolated.ok) {
      const error = truncate(isolated.error);
      log.warn(`rejected config version ${version ?? "(none)"} from ${source}: ${error}`);
      return { kind: "rejected", version: version ?? 0, error };
    }
    const { document, rejected } = isolated;
    for (const r of rejected) {
      const what = r.kept ? "keeps its last good state" : "is not served";
      log.warn(`config version ${document.version}: service ${r.service} ${what}: ${r.error}`);
    }
    try {
      await this.options.apply(document);
    } catch (error) {
      const message = proxyRefusal(error);
      log.warn(`rejected config version ${document.version} from ${source}: ${message}`);
      return { kind: "rejected", version: document.version, error: message };
    }
    this.applied = document;
    this.state = indexDocument(document);
    this.rejected = rejected;
    log.info(`applied config version ${document.version} from ${source} (${document.services.length} services)`);
    await this.persist(document);
    return { kind: "applied", version: document.version, rejected };
  }
}

/** The proxy's own refusal says which fields are wrong; anything else is the proxy failing. */
function proxyRefusal(error: unknown): string {
  return truncate(
    error instanceof ConfigRejectedError
      ? error.message
      : `the proxy could not apply it: ${error instanceof Error ? error.message : String(error)}`,
  );
}

/** The document's version when it has a usable one, so even a NACK can name what it refuses. */
function versionOf(candidate: unknown): number | null {
  const version = (candidate as { version?: unknown } | null)?.version;
  return typeof version === "number" && Number.isSafeInteger(version) && version >= 0 ? version : null;
}

const truncate = (text: string) => (text.length > MAX_NACK_ERROR ? `${text.slice(0, MAX_NACK_ERROR - 1)}…` : text);
