/**
 * @module
 * The external routers of one gateway host: one SGLang Model Gateway per service whose effective
 * router is `sglang`, started when such a service appears, stopped when it goes or drops the router.
 * Sits between the config applier and the proxy: the proxy gets the document with each service that
 * is `external` right now pointed at its router (`http://127.0.0.1:<port>`, one replica), so the proxy
 * needs no knowledge of routers; every other service keeps its replicas on the built-in balancer.
 * When a router becomes usable, or stops being usable, the current document is applied again.
 *
 * Built-in is the fallback whenever the router cannot serve (not installed, starting, restarting,
 * no replica registered yet, or a policy it does not have): the service keeps answering with the
 * proxy's own policies, and the mode and its reason are reported to the control plane (`routers` in
 * the agent's health). Gateplane's own policies (`prefix_load`) are built-in only: no router is
 * started for them. Other policies are passed to the router when its `--help` lists them among its
 * `--policy` choices (least_load needs SMG); when the help cannot be read, the classic four are
 * assumed. The policy's tunables go as the router's own flags when its help lists them
 * (`--least-load-*`), else its defaults apply.
 *
 * A PD service (`router.pd_disaggregation`) gets the router in PD mode when its help lists the PD
 * flags (worker-set.ts) and has both side policies; the proxy then sees the service as a plain one
 * behind the router (the router does the pairing). Otherwise it stays on the proxy's built-in PD
 * routing, the reason reported.
 */
import type { RouterReport } from "../../schema/agent-protocol.ts";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";
import {
  BUILT_IN_ONLY_POLICIES,
  type PdRouting,
  pdRouting,
  type RouterConfig,
  type RouterPolicy,
} from "../../schema/router.ts";
import type { Logger } from "../log.ts";
import {
  CLASSIC_POLICIES,
  detectSglangRouter,
  type RouterHelp,
  type RouterInstallation,
  routerHelp,
} from "./detect.ts";
import { PortAllocator, type PortRange } from "./ports.ts";
import { tunableFlags } from "./router-process.ts";
import { type RouterMode, ServiceRouter, type ServiceRouterTiming } from "./service-router.ts";
import { pdModeFlags, pdRefusal, serviceWorkers } from "./worker-set.ts";

export interface SglangRoutersOptions {
  /** Finds the router on this host (default {@link detectSglangRouter}). */
  detect?: () => Promise<RouterInstallation>;
  /** What the installed router takes (default {@link routerHelp}: its `--help`). */
  help?: (command: readonly string[]) => Promise<RouterHelp>;
  ports: PortRange;
  timing: ServiceRouterTiming;
  log: Logger;
  /** Hands a document to the proxy (rejections propagate to the caller of {@link SglangRouters.apply}). */
  applyToProxy: (document: ConfigDocument) => Promise<void>;
  /** Hands a delta to the proxy, likewise (absent: the merged document goes whole). */
  applyDeltaToProxy?: (delta: ConfigDelta) => Promise<void>;
  /** Called when a service's mode changes (to report it without waiting for the next health period). */
  onReportsChange?: () => void;
}

/** Not installed: look again at most this often (an operator may install it on a running host). */
const REDETECT_AFTER_MS = 60_000;

/** The document the proxy serves: external services point at their router. */
export function routeThroughRouters(doc: ConfigDocument, modes: ReadonlyMap<string, RouterMode>): ConfigDocument {
  return { ...doc, services: doc.services.map((service) => routeThroughRouter(service, modes)) };
}

/** One service as the proxy serves it: pointed at its router while that is external. */
function routeThroughRouter(service: ConfigService, modes: ReadonlyMap<string, RouterMode>): ConfigService {
  const mode = modes.get(service.name);
  // A service that just dropped its router leaves it at once, before the process is stopped.
  if (mode?.mode !== "external" || service.router?.type !== "sglang") return service;
  // The port in the id: a restarted router is a new upstream, with fresh health and counters.
  const replicas = [{ id: `sglang-router-${mode.port}`, url: `http://127.0.0.1:${mode.port}` }];
  // A PD router pairs prefill and decode itself: to the proxy it is one plain upstream.
  const { pd_disaggregation: _pd, prefill_policy: _p, decode_policy: _d, ...router } = service.router;
  return { ...service, router, replicas };
}

export class SglangRouters {
  readonly #o: SglangRoutersOptions;
  readonly #ports: PortAllocator;
  readonly #routers = new Map<string, ServiceRouter>();
  readonly #retiring = new Set<Promise<void>>();
  #installation: RouterInstallation | null = null;
  /** The installed router's help (policy choices, flags), read once per installation. */
  #help: { command: readonly string[]; help: RouterHelp } | null = null;
  /** Services that stay built-in because of their policy, with the reason. */
  readonly #unoffered = new Map<string, string>();
  #detectedAt = 0;
  #document: ConfigDocument | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #reapplyQueued = false;
  #stopped = false;

  constructor(options: SglangRoutersOptions) {
    this.#o = options;
    this.#ports = new PortAllocator(options.ports);
  }

  /** Applies `document` to the proxy (with the routers' current modes), then reconciles the routers. */
  apply(document: ConfigDocument): Promise<void> {
    return this.#enqueue(async () => {
      await this.#o.applyToProxy(routeThroughRouters(document, this.#modes()));
      this.#document = document;
      await this.#reconcile(document);
    });
  }

  /**
   * Applies `delta` to the proxy (its services pointed at their routers, as `apply` does; every other
   * service keeps what the proxy serves), then reconciles the routers with `document`, the merged whole.
   */
  applyDelta(delta: ConfigDelta, document: ConfigDocument): Promise<void> {
    return this.#enqueue(async () => {
      const modes = this.#modes();
      if (this.#o.applyDeltaToProxy) {
        await this.#o.applyDeltaToProxy({
          ...delta,
          services: delta.services.map((service) => routeThroughRouter(service, modes)),
        });
      } else {
        await this.#o.applyToProxy(routeThroughRouters(document, modes));
      }
      this.#document = document;
      await this.#reconcile(document);
    });
  }

  /** Mode of every service that asks for the sglang router, in document order. */
  reports(): RouterReport[] {
    const doc = this.#document;
    if (!doc) return [];
    return doc.services.flatMap((service) => {
      if (service.router?.type !== "sglang") return [];
      const router = this.#routers.get(service.name);
      if (router) return [{ service: service.name, mode: router.mode.mode, reason: router.mode.reason }];
      const unoffered = this.#unoffered.get(service.name);
      if (unoffered) return [{ service: service.name, mode: "built-in" as const, reason: unoffered }];
      const reason = this.#installation?.installed === false ? this.#installation.reason : "sglang router starting";
      return [{ service: service.name, mode: "built-in" as const, reason }];
    });
  }

  /** The supervisor of `service`'s router, if it has one (tests and diagnostics). */
  router(service: string): ServiceRouter | null {
    return this.#routers.get(service) ?? null;
  }

  /** Stops every router process. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const routers = [...this.#routers.values()];
    this.#routers.clear();
    await Promise.all([...routers.map((r) => r.stop()), ...this.#retiring]);
    await this.#queue;
  }

  #modes(): Map<string, RouterMode> {
    return new Map([...this.#routers].map(([name, router]) => [name, router.mode]));
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(task);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  async #installed(): Promise<RouterInstallation> {
    const known = this.#installation;
    if (known && (known.installed || Date.now() - this.#detectedAt < REDETECT_AFTER_MS)) return known;
    const found = await (this.#o.detect ?? detectSglangRouter)();
    if (found.installed !== known?.installed) {
      if (found.installed) this.#o.log.info(`sglang router found: ${found.source}`);
      else this.#o.log.warn(`${found.reason}: services asking for it use the built-in balancer`);
    }
    this.#installation = found;
    this.#detectedAt = Date.now();
    return found;
  }

  /** Why the installed router cannot serve `policy` (the service stays built-in), or null. */
  async #refusal(policy: RouterPolicy, installation: RouterInstallation, pd: PdRouting | null): Promise<string | null> {
    const policies = pd ? [...new Set([pd.prefill_policy, pd.decode_policy])] : [policy];
    for (const p of policies) {
      if (BUILT_IN_ONLY_POLICIES.includes(p)) {
        const which = pd ? `${p === pd.prefill_policy ? "prefill_policy" : "decode_policy"} ${p}` : `policy ${p}`;
        return `${which} is Gateplane's own: built-in only, the sglang router does not have it`;
      }
    }
    if (!installation.installed) return null;
    const help = await this.#helpOf(installation.command);
    const pdWhy = pd && pdRefusal(pd, help);
    if (pdWhy) return pdWhy;
    for (const p of policies) {
      const why = this.#policyRefusal(p, help);
      if (why) return why;
    }
    return null;
  }

  async #helpOf(command: readonly string[]): Promise<RouterHelp> {
    if (this.#help?.command !== command) {
      const help = await (this.#o.help ?? routerHelp)(command);
      this.#help = { command, help };
    }
    return this.#help.help;
  }

  #policyRefusal(policy: RouterPolicy, help: RouterHelp): string | null {
    const offered = help.policies;
    if (offered === null) {
      return CLASSIC_POLICIES.includes(policy)
        ? null
        : `cannot tell whether the installed sglang router has policy ${policy} (its --help lists no --policy choices)`;
    }
    return offered.includes(policy)
      ? null
      : `the installed sglang router has no policy ${policy} (its --policy choices: ${offered.join(", ")})`;
  }

  async #reconcile(document: ConfigDocument): Promise<void> {
    const wanted = new Map(
      document.services.flatMap((s) => (s.router?.type === "sglang" && !this.#stopped ? [[s.name, s] as const] : [])),
    );
    // A policy the router does not have keeps the service built-in (no router process for it).
    this.#unoffered.clear();
    const refusals = wanted.size > 0 ? await this.#refusalsFor(wanted) : new Map<string, string>();
    for (const [name, reason] of refusals) {
      wanted.delete(name);
      this.#unoffered.set(name, reason);
    }
    for (const [name, router] of this.#routers) {
      if (wanted.has(name)) continue;
      this.#o.log.info(`service ${name} no longer uses the sglang router; stopping it`);
      this.#routers.delete(name);
      const retired = router.stop().finally(() => this.#retiring.delete(retired));
      this.#retiring.add(retired);
    }
    if (wanted.size === 0) return;
    const installation = await this.#installed();
    for (const [name, service] of wanted) {
      const policy = service.router!.policy;
      const help = this.#help?.help ?? { policies: null, flags: new Set<string>() };
      const tunables = tunableFlags(service.router!, help.flags);
      const pd = pdRouting(service.router);
      const pdFlags = pd ? pdModeFlags(pd, help) : null;
      const workers = serviceWorkers(service);
      const existing = this.#routers.get(name);
      if (existing) existing.update(policy, workers, tunables, pdFlags);
      else if (installation.installed) {
        this.#routers.set(
          name,
          new ServiceRouter({
            service: name,
            command: installation.command,
            policy,
            tunables,
            pd: pdFlags,
            workers,
            ports: this.#ports,
            timing: this.#o.timing,
            log: this.#o.log,
            onModeChange: () => this.#modeChanged(),
          }),
        );
      }
    }
    this.#o.onReportsChange?.();
  }

  async #refusalsFor(wanted: ReadonlyMap<string, { router: RouterConfig | null }>) {
    const out = new Map<string, string>();
    // Detection only when some service could use the router.
    const couldUse = [...wanted.values()].some((s) => {
      const pd = pdRouting(s.router);
      const policies = pd ? [pd.prefill_policy, pd.decode_policy] : [s.router!.policy];
      return policies.every((p) => !BUILT_IN_ONLY_POLICIES.includes(p));
    });
    const installation: RouterInstallation = couldUse ? await this.#installed() : { installed: false, reason: "" };
    for (const [name, service] of wanted) {
      const reason = await this.#refusal(service.router!.policy, installation, pdRouting(service.router));
      if (reason !== null) out.set(name, reason);
    }
    return out;
  }

  #modeChanged(): void {
    this.#o.onReportsChange?.();
    if (this.#reapplyQueued) return;
    this.#reapplyQueued = true;
    void this.#enqueue(async () => {
      this.#reapplyQueued = false;
      const doc = this.#document;
      if (!doc) return;
      try {
        await this.#o.applyToProxy(routeThroughRouters(doc, this.#modes()));
      } catch (error) {
        this.#o.log.error(`cannot switch router modes in the proxy: ${(error as Error).message}`);
      }
    });
  }
}
