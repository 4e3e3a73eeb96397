/**
 * @module
 * The one path by which a configuration document reaches the proxy, whichever channel brought it
 * (WebSocket push or HTTP fallback): validate, skip what is not newer, `proxy.apply`, persist as the
 * last good config. Offers are serialised, so two channels delivering at once cannot apply out of
 * order, and the outcome says what to report (ACK, NACK, or nothing). A service that cannot be
 * applied is isolated (`isolate-services.ts`): the rest of the document is applied and the ACK lists it.
 */
import { ConfigRejectedError } from "../proxy/index.ts";
import { MAX_NACK_ERROR, type ServiceRejection } from "../schema/agent-protocol.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ConfigStore } from "./config-store.ts";
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
  | { kind: "rejected"; version: number; error: string };

export interface ConfigApplierOptions {
  apply: (document: ConfigDocument) => Promise<void>;
  store: ConfigStore;
  /** The document the proxy started with (the last good config from disk), if any. */
  initial: ConfigDocument | null;
  log: Logger;
}

export class ConfigApplier {
  private applied: ConfigDocument | null;
  /** The services of the applied version that are not served as configured. */
  private rejected: ServiceRejection[] = [];
  private persistFailure: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly options: ConfigApplierOptions;

  constructor(options: ConfigApplierOptions) {
    this.options = options;
    this.applied = options.initial;
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
      // The proxy's own refusal says which fields are wrong; anything else is the proxy failing.
      const message = truncate(
        error instanceof ConfigRejectedError
          ? error.message
          : `the proxy could not apply it: ${error instanceof Error ? error.message : String(error)}`,
      );
      log.warn(`rejected config version ${document.version} from ${source}: ${message}`);
      return { kind: "rejected", version: document.version, error: message };
    }
    this.applied = document;
    this.rejected = rejected;
    log.info(`applied config version ${document.version} from ${source} (${document.services.length} services)`);
    try {
      await this.options.store.write(document);
      if (this.persistFailure !== null) log.info(`last good config persisted again to ${this.options.store.file}`);
      this.persistFailure = null;
    } catch (error) {
      // The proxy serves it, so it is applied; only a restart would fall back to the older file.
      this.persistFailure = `cannot persist the last good config to ${this.options.store.file}: ${(error as Error).message}`;
      log.error(this.persistFailure);
    }
    return { kind: "applied", version: document.version, rejected };
  }
}

/** The document's version when it has a usable one, so even a NACK can name what it refuses. */
function versionOf(candidate: unknown): number | null {
  const version = (candidate as { version?: unknown } | null)?.version;
  return typeof version === "number" && Number.isSafeInteger(version) && version >= 0 ? version : null;
}

const truncate = (text: string) => (text.length > MAX_NACK_ERROR ? `${text.slice(0, MAX_NACK_ERROR - 1)}…` : text);
