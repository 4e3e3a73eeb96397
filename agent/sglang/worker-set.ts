/**
 * @module
 * The workers a service's router should have, as the router registers them: a URL, a worker type
 * (`regular`, or under prefill/decode disaggregation `prefill` / `decode`) and, for a prefill worker,
 * its bootstrap port (`/work/shared/reference/sglang-router.md` §2.3, llm-serving-protocols.md §3.2).
 * Two registrations are the same worker only when all three match: a replica re-registered under
 * another role or bootstrap port is removed and added again, as dstack's `router_worker_sync` does.
 *
 * A PD router takes its workers on the command line too (`--prefill URL PORT|none`, `--decode URL`):
 * the API of the legacy routers (`/add_worker?url=`) has no worker type, and their PD router refuses
 * it, so there the launch flags are the only way in and a changed set means a restart.
 */
import type { ConfigService } from "../../schema/config-document.ts";
import { type PdRouting, pdRouting, type RouterPolicy } from "../../schema/router.ts";
import { pdUnroutable } from "../../schema/service.ts";
import type { RouterHelp } from "./detect.ts";

export type WorkerType = "regular" | "prefill" | "decode";

export interface WorkerSpec {
  url: string;
  type: WorkerType;
  /** A prefill worker's bootstrap port; null: none (and always for the other types). */
  bootstrapPort: number | null;
}

/** Router URLs are compared without a trailing slash (the router stores what it was given). */
export const normalizeWorkerUrl = (url: string) => url.replace(/\/+$/, "");

/** One key per registration: URL, type and bootstrap port. */
export const workerKey = (w: WorkerSpec) => `${normalizeWorkerUrl(w.url)} ${w.type} ${w.bootstrapPort ?? "none"}`;

/**
 * The workers of `service` for its router: every replica as `regular`; under PD only the replicas
 * with a role, with it (a replica without one serves neither side, as in the built-in PD routing).
 */
export function serviceWorkers(service: Pick<ConfigService, "replicas" | "router">): WorkerSpec[] {
  const pd = pdRouting(service.router);
  return service.replicas.flatMap((r): WorkerSpec[] => {
    const url = normalizeWorkerUrl(r.url);
    if (!pd) return [{ url, type: "regular", bootstrapPort: null }];
    if (r.role === "prefill") return [{ url, type: "prefill", bootstrapPort: r.bootstrap_port ?? null }];
    if (r.role === "decode") return [{ url, type: "decode", bootstrapPort: null }];
    return [];
  });
}

/** The PD flags every PD router takes (v0.1 on, SMG): the side policies, and the workers at launch. */
export const PD_FLAGS = ["--pd-disaggregation", "--prefill", "--decode"] as const;

/**
 * Why the installed router cannot run `pd` (the service stays on the built-in PD routing), or null.
 * Without `--prefill-policy`/`--decode-policy` in its help, a router uses `--policy` for both sides:
 * acceptable only when the two are the same.
 */
export function pdRefusal(pd: PdRouting, help: RouterHelp): string | null {
  const missing = PD_FLAGS.filter((f) => !help.flags.has(f));
  if (missing.length > 0) {
    return `the installed sglang router has no prefill/decode mode (its --help lists no ${missing.join(", ")})`;
  }
  const sided = help.flags.has("--prefill-policy") && help.flags.has("--decode-policy");
  if (!sided && pd.prefill_policy !== pd.decode_policy) {
    return `the installed sglang router takes one policy for both sides (its --help lists no --prefill-policy, --decode-policy): prefill_policy ${pd.prefill_policy} and decode_policy ${pd.decode_policy} differ`;
  }
  return null;
}

/**
 * The PD mode's launch flags: `--pd-disaggregation` and each side's policy when the router takes
 * them (else `--policy`, the same for both, is enough).
 */
export function pdModeFlags(pd: PdRouting, help: RouterHelp): string[] {
  const sided = help.flags.has("--prefill-policy") && help.flags.has("--decode-policy");
  return [
    "--pd-disaggregation",
    ...(sided ? ["--prefill-policy", pd.prefill_policy, "--decode-policy", pd.decode_policy] : []),
  ];
}

/** The workers as a PD router's launcher parses them: `--prefill URL PORT|none`, `--decode URL`. */
export const pdWorkerFlags = (workers: readonly WorkerSpec[]): string[] =>
  workers.flatMap((w) =>
    w.type === "prefill"
      ? ["--prefill", w.url, w.bootstrapPort === null ? "none" : String(w.bootstrapPort)]
      : w.type === "decode"
        ? ["--decode", w.url]
        : [],
  );

/** The `--policy` of a PD router: the prefill side's (the decode side's comes with its own flag). */
export const pdPolicy = (pd: PdRouting): RouterPolicy => pd.prefill_policy;

/**
 * Whether traffic may go through the router: null when it lists at least one of `desired` (under
 * PD: one prefill and one decode); else why not. `listed` are the router's registrations.
 */
export function notUsable(
  service: string,
  pd: boolean,
  desired: readonly WorkerSpec[],
  listed: readonly WorkerSpec[],
): string | null {
  const wanted = new Set(desired.map(workerKey));
  const usable = listed.filter((w) => wanted.has(workerKey(w)));
  if (!pd) {
    if (usable.length > 0) return null;
    return desired.length === 0
      ? "service has no replicas"
      : `sglang router lists none of the service's ${desired.length} replicas yet`;
  }
  const count = (list: readonly WorkerSpec[], type: WorkerType) => list.filter((w) => w.type === type).length;
  const unroutable = pdUnroutable(service, count(desired, "prefill"), count(desired, "decode"));
  if (unroutable) return unroutable;
  const prefill = count(usable, "prefill");
  const decode = count(usable, "decode");
  if (prefill > 0 && decode > 0) return null;
  return `sglang router lists ${prefill} of the service's ${count(desired, "prefill")} prefill and ${decode} of its ${count(desired, "decode")} decode replicas yet (needs one of each)`;
}

/**
 * What to remove from the router (registrations the service does not have) and to add (those it
 * lacks), given `pending`: key → when an addition was accepted (202), dropped once it shows up. An
 * accepted addition is not posted again before `pendingTimeoutMs`; a URL being removed under another
 * type or port is added back once the router let it go (SMG answers 409 to a URL it has).
 */
export function workerDiff<W extends WorkerSpec & { portUnknown?: boolean }>(
  desired: readonly WorkerSpec[],
  listed: readonly W[],
  pending: Map<string, number>,
  now: number,
  pendingTimeoutMs: number,
): { removals: W[]; additions: WorkerSpec[] } {
  listed = withKnownPorts(listed, desired);
  const wanted = new Set(desired.map(workerKey));
  const present = new Set(listed.map(workerKey));
  const removals = listed.filter((w) => !wanted.has(workerKey(w)));
  const leaving = new Set(removals.map((w) => normalizeWorkerUrl(w.url)));
  const seen = new Set<string>();
  const additions = desired.filter((w) => {
    const key = workerKey(w);
    // Two replicas on one URL are one worker.
    if (seen.has(key)) return false;
    seen.add(key);
    if (present.has(key)) {
      pending.delete(key);
      return false;
    }
    const since = pending.get(key);
    return !leaving.has(normalizeWorkerUrl(w.url)) && (since === undefined || now - since >= pendingTimeoutMs);
  });
  return { removals, additions };
}

/**
 * A router that lists a prefill worker without its bootstrap port: taken as the port the service
 * registered for that URL, rather than removing and adding the worker at every sync for a field the
 * listing does not carry.
 */
export const withKnownPorts = <W extends WorkerSpec & { portUnknown?: boolean }>(
  listed: readonly W[],
  desired: readonly WorkerSpec[],
): W[] =>
  listed.map((w) =>
    w.portUnknown
      ? {
          ...w,
          bootstrapPort:
            desired.find((d) => d.url === normalizeWorkerUrl(w.url) && d.type === w.type)?.bootstrapPort ?? null,
        }
      : w,
  );

/** A legacy listing names URLs only: each is the desired worker of that URL (as it was launched). */
export const asLaunched = (listed: readonly WorkerSpec[], desired: readonly WorkerSpec[]): WorkerSpec[] =>
  listed.map((w) => desired.find((d) => d.url === normalizeWorkerUrl(w.url)) ?? w);
