/**
 * @module
 * The HTTP fallback for configuration: `GET /api/v1/agent/config` with `If-None-Match: "<applied
 * version>"` once at boot, then every poll interval while the WebSocket has been down for longer than
 * the grace period. A new document goes through the same applier as a pushed one, and its outcome is
 * reported with `POST /api/v1/agent/ack` (`error: null` when applied). With a version applied it
 * asks for what changed since (`?since=N`): a delta goes through the applier's delta path, and one
 * that does not apply on the version held (a gap) is followed at once by a pull of the whole document.
 */
import type { ApplyOutcome, ConfigApplier } from "./config-applier.ts";
import { type ControlPlaneClient, isUnauthorized } from "./control-plane-client.ts";
import type { Credentials } from "./credentials.ts";
import type { LinkState } from "./link-state.ts";
import type { Logger } from "./log.ts";

export interface PollTiming {
  /** How long the WebSocket must have been down before polling starts. */
  fallbackAfterMs: number;
  /** Between polls while it stays down. */
  intervalMs: number;
}

export const DEFAULT_POLL_TIMING: PollTiming = { fallbackAfterMs: 10_000, intervalMs: 10_000 };

export interface ConfigPollOptions {
  client: ControlPlaneClient;
  credentials: Credentials;
  applier: ConfigApplier;
  link: LinkState;
  log: Logger;
  timing: PollTiming;
}

const errorMessage = (error: unknown) => (error instanceof Error ? error.message : String(error));

export async function runConfigPoll(options: ConfigPollOptions, signal: AbortSignal): Promise<void> {
  const { link, timing } = options;
  let failing = false;
  const pollOnce = async () => {
    const ok = await poll(options, signal, failing);
    if (!signal.aborted) failing = !ok;
  };
  // At boot, whatever the WebSocket does: a host must not depend on one channel to get its first config.
  await pollOnce();
  let lastPollAt = Date.now();
  while (!signal.aborted) {
    if (link.connected) {
      await link.changed(signal);
      continue;
    }
    const dueAt = Math.max(link.since + timing.fallbackAfterMs, lastPollAt + timing.intervalMs);
    if (Date.now() < dueAt) {
      await link.changed(signal, dueAt - Date.now());
      continue;
    }
    await pollOnce();
    lastPollAt = Date.now();
  }
}

/** One fetch (and ACK when there was something new); false when the control plane could not be asked. */
async function poll(options: ConfigPollOptions, signal: AbortSignal, wasFailing: boolean): Promise<boolean> {
  const { client, credentials, applier, log } = options;
  const token = await credentials.ready(signal);
  if (!token) return true;
  let outcome: ApplyOutcome | null = null;
  try {
    const answer = await client.fetchConfig(token.token, applier.version, signal, true);
    if (answer.kind === "delta") {
      outcome = await applier.offerDelta(answer.delta, "the HTTP fallback");
      if (outcome.kind === "gap") {
        // The whole document instead: a pull without `since`.
        const whole = await client.fetchConfig(token.token, applier.version, signal, false);
        outcome = whole.kind === "document" ? await applier.offer(whole.document, "the HTTP fallback") : null;
      }
    } else if (answer.kind === "document") {
      outcome = await applier.offer(answer.document, "the HTTP fallback");
    }
  } catch (error) {
    if (signal.aborted) return true;
    if (isUnauthorized(error)) {
      log.warn(`token refused on config fetch (${errorMessage(error)}); getting a new one`);
      credentials.refused(token.token);
    } else if (!wasFailing) {
      // Once per outage: the poll repeats every interval while the control plane is away.
      log.warn(`config fetch failed (${errorMessage(error)}); serving version ${applier.version ?? "(none)"}`);
    }
    return false;
  }
  if (wasFailing) log.info("config fetch works again");
  if (outcome === null || (outcome.kind !== "applied" && outcome.kind !== "rejected")) return true;
  const body =
    outcome.kind === "rejected"
      ? { version: outcome.version, error: outcome.error, rejected: [] }
      : { version: outcome.version, error: null, rejected: outcome.rejected };
  try {
    await client.ack(token.token, body, signal);
  } catch (error) {
    // Not retried: the next poll fetches the same document again if it was rejected, and the
    // If-None-Match of the next poll (or the WebSocket's ACK) tells the version if it was applied.
    if (!signal.aborted) log.warn(`cannot report config version ${outcome.version}: ${errorMessage(error)}`);
    if (isUnauthorized(error)) credentials.refused(token.token);
  }
  return true;
}
