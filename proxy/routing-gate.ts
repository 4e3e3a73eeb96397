/**
 * @module
 * Where a process gets its routing decisions. Services whose policy keeps host-wide state
 * (`routing-state.ts`: an explicit `round_robin`, `power_of_two`, `cache_aware`, `least_load`,
 * `prefix_load`) are routed by the one `RoutingState` of the host: in this process without child
 * processes (`LocalRoutingGate`), else in the parent, asked over IPC with every decision of one
 * event-loop turn in one message (`IpcRoutingGate`, `ipc-batch.ts`; the gate owns both messages,
 * `RouteAsk` and `RouteAnswer`, and `process-protocol.ts` only composes them). A child sends the
 * service, the routing text (the tree policies only, cache_aware and prefix_load, capped at
 * `ROUTING_TEXT_CAP`) and the ids of the replicas it considers eligible (its own passive health,
 * minus those a retry already tried; null when that is all of them), and gets the
 * chosen id and a lease; the lease goes back, batched too, when the exchange ends.
 *
 * Everything else (`random`, no `router:`) is decided by the process itself, as is every decision
 * the parent does not answer within the gate's bound: routing never waits on the parent for long.
 */
import type { ConfigDocument, ConfigService } from "../schema/config-document.ts";
import { type RouterConfig, routesOnText } from "../schema/router.ts";
import type { Balancer, ReplicaState } from "./balancer.ts";
import { IpcBatcher } from "./ipc-batch.ts";
import { capRoutingText } from "./policies/routing-text.ts";
import { type Decision, RoutingState, sharesState } from "./routing-state.ts";

/** What the gate needs of a service's route (`routes.ts`). */
export interface RoutedService {
  readonly name: string;
  readonly router: RouterConfig | null;
  readonly balancer: Balancer;
}

/** Gets the decision: the replica (undefined: none left to try) and the lease to release (0: none). */
export interface RoutingClient {
  routed(replica: ReplicaState | undefined, lease: number): void;
}

export interface RoutingGate {
  /** Decides at once or after one round trip; `tried` are the replicas a retry already tried. */
  pick(route: RoutedService, tried: readonly ReplicaState[] | null, text: string, client: RoutingClient): void;
  /** The exchange holding `lease` (non-zero) ended. */
  release(lease: number): void;
  /** A new document (the state is here: keep it in step; in the parent: nothing to do). */
  retain(doc: ConfigDocument): void;
  /** A delta: only the services it changes or removes (`RoutingState.retainChanged`). */
  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void;
}

interface HostQuestion {
  candidates: readonly ReplicaState[];
  /** The capped routing text (cache_aware, prefix_load), else "". */
  text: string;
  /** Ids the host's state may choose from; null = every replica of the service. */
  eligible: string[] | null;
}

/**
 * What to ask the host's state, or null when this process decided already (no candidate left, or
 * a policy with nothing shared).
 */
function question(
  route: RoutedService,
  tried: readonly ReplicaState[] | null,
  text: string,
  client: RoutingClient,
): HostQuestion | null {
  const now = Date.now();
  const { balancer } = route;
  const candidates = balancer.candidates(now, tried);
  if (candidates.length === 0) client.routed(undefined, 0);
  else if (!sharesState(route.router)) client.routed(balancer.policy.select(candidates, text, now), 0);
  else
    return {
      candidates,
      text: routesOnText(route.router) ? capRoutingText(text) : "",
      eligible: candidates === balancer.replicas ? null : candidates.map((r) => r.id),
    };
  return null;
}

/**
 * Hands the host's decision to the client, or, when there is none (the host's state did not
 * answer, or names a replica this process does not know), decides here; returns a lease the
 * client will not hold.
 */
function conclude(
  route: RoutedService,
  asked: HostQuestion,
  decision: Decision | null,
  client: RoutingClient,
  giveBack: (lease: number) => void,
): void {
  const replica = decision ? route.balancer.byId(decision.id) : undefined;
  if (replica) {
    client.routed(replica, decision!.lease);
    return;
  }
  if (decision) giveBack(decision.lease);
  client.routed(route.balancer.policy.select(asked.candidates, asked.text, Date.now()), 0);
}

/** The host's state lives in this process (no child processes). */
export class LocalRoutingGate implements RoutingGate {
  readonly state: RoutingState;

  constructor(state = new RoutingState()) {
    this.state = state;
  }

  pick(route: RoutedService, tried: readonly ReplicaState[] | null, text: string, client: RoutingClient): void {
    const asked = question(route, tried, text, client);
    if (!asked) return;
    const decision = this.state.decide(0, route.name, asked.text, asked.eligible, Date.now());
    conclude(route, asked, decision, client, (lease) => this.release(lease));
  }

  release(lease: number): void {
    this.state.release(0, lease);
  }

  retain(doc: ConfigDocument): void {
    this.state.retain(doc);
  }

  retainChanged(changed: readonly ConfigService[], removed: readonly string[]): void {
    this.state.retainChanged(changed, removed);
  }
}

/** A child process's decisions of one event-loop turn, and the leases it hands back. */
export interface RouteAsk {
  type: "route";
  id: number;
  services: string[];
  texts: string[];
  eligible: (string[] | null)[];
  releases: number[];
}

/** The parent's answer to a `RouteAsk`: decisions in the order asked (null: decide yourself). */
export interface RouteAnswer {
  type: "routed";
  id: number;
  decisions: (Decision | null)[];
}

interface RouteItem {
  service: string;
  text: string;
  eligible: string[] | null;
}

/** The host's state lives in the parent process. */
export class IpcRoutingGate implements RoutingGate {
  readonly #batcher: IpcBatcher<RouteItem, Decision | null>;
  #releases: number[] = [];

  /** How long a decision waits for the parent from now on (`ServerSettings.routingAnswerMs`). */
  set timeoutMs(ms: number) {
    this.#batcher.timeoutMs = ms;
  }

  /** `send` returns false when the channel is closed; `timeoutMs` bounds the wait for an answer. */
  constructor(send: (message: RouteAsk) => boolean, timeoutMs: number, log: (line: string) => void) {
    this.#batcher = new IpcBatcher<RouteItem, Decision | null>({
      send: (id, items) => {
        const releases = this.#releases;
        this.#releases = [];
        return send({
          type: "route",
          id,
          services: items.map((i) => i.service),
          texts: items.map((i) => i.text),
          eligible: items.map((i) => i.eligible),
          releases,
        });
      },
      timeoutMs,
      log,
      what: "the host's routing state",
      meanwhile: "routing with this process's own state meanwhile",
      fallback: null,
      // The parent decided after all and holds loads for them: hand them back.
      late: (decisions) => {
        for (const d of decisions) if (d) this.release(d.lease);
      },
    });
  }

  pick(route: RoutedService, tried: readonly ReplicaState[] | null, text: string, client: RoutingClient): void {
    const asked = question(route, tried, text, client);
    if (!asked) return;
    this.#batcher.add({ service: route.name, text: asked.text, eligible: asked.eligible }, (decision) =>
      conclude(route, asked, decision, client, (lease) => this.release(lease)),
    );
  }

  release(lease: number): void {
    this.#releases.push(lease);
    this.#batcher.schedule();
  }

  retain(): void {}

  retainChanged(): void {}

  /** The parent's answer to one batch. */
  receive(message: RouteAnswer): void {
    this.#batcher.receive(message.id, message.decisions);
  }

  /** Routes everything still waiting here (the parent went away). */
  releaseWaiting(): void {
    this.#batcher.release();
  }
}

/** The parent's side: takes the leases a child hands back, then answers its decisions. */
export function answerRoute(state: RoutingState, owner: number, ask: RouteAsk, now = Date.now()): RouteAnswer | null {
  for (const lease of ask.releases) state.release(owner, lease);
  const n = ask.services.length;
  if (n === 0) return null;
  const decisions: (Decision | null)[] = new Array(n);
  for (let i = 0; i < n; i++)
    decisions[i] = state.decide(owner, ask.services[i]!, ask.texts[i]!, ask.eligible[i]!, now);
  return { type: "routed", id: ask.id, decisions };
}
