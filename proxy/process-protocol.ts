/**
 * @module
 * Messages between the proxy's parent process and its child processes (Node IPC, JSON). The
 * listening socket travels as the message's handle where a message says so. The gates' messages
 * belong to the gates (`rate-limit-gate.ts`, `routing-gate.ts`); this module only composes them.
 */
import type { ConfigDelta } from "../schema/config-delta.ts";
import type { ConfigDocument } from "../schema/config-document.ts";
import type { ChallengeTokens } from "./acme-challenge.ts";
import type { ActiveVerdict } from "./health/checker.ts";
import type { PassiveEvent } from "./health/passive-share.ts";
import type { MetricFamily } from "./observe/families.ts";
import type { RateLimitAsk, RateLimitVerdicts } from "./rate-limit-gate.ts";
import type { RouteAnswer, RouteAsk } from "./routing-gate.ts";
import type { ServerSettings } from "./settings.ts";
import type { RawServiceStats } from "./stats.ts";
import type { TlsCertificate } from "./tls.ts";

export type ToProcess =
  | {
      type: "init";
      settings: ServerSettings;
      document: ConfigDocument | null;
      /** Bind this address (cluster mode, or the first process in handle mode), or use the attached handle. */
      listen: { host: string; port: number } | "handle";
      /** Send the listening handle back with `ready` (the first process in handle mode). */
      shareHandle: boolean;
      /** The HTTPS listener like `listen`; "handle" = it follows in a `tls-handle` message; null = none. */
      tls: { host: string; port: number } | "handle" | null;
      certificates: TlsCertificate[];
      challenges: ChallengeTokens;
      /** The agent's state directory, where the access log file is; null: none. */
      stateDir: string | null;
    }
  /** Carries the HTTPS listening handle (one handle per IPC message). */
  | { type: "tls-handle" }
  | { type: "certificates"; id: number; certificates: TlsCertificate[] }
  | { type: "challenges"; id: number; tokens: ChallengeTokens }
  | { type: "apply"; id: number; document: ConfigDocument }
  /** A checked delta on top of the document the process runs (`server.applyDelta`); answered like `apply`. */
  | { type: "apply-delta"; id: number; delta: ConfigDelta }
  | { type: "stats"; id: number }
  /** This process's metric series (`observe/registry.ts`). */
  | { type: "metrics"; id: number }
  /** Answers an `exposition-ask`: the host's metrics rendered for Prometheus, or why not. */
  | { type: "exposition"; ask: number; text: string | null; error: string | null }
  /** The parent rotated the access log: open its path anew. */
  | { type: "reopen-access-log" }
  /** Answers a `rate-limit` batch. */
  | RateLimitVerdicts
  /** Answers a `route` batch. */
  | RouteAnswer
  /** The host's active health checks' verdicts (changes, or all of them for a child just started): `health/checker.ts`. */
  | { type: "health"; verdicts: ActiveVerdict[] }
  /** Passive-health changes another child saw (or, for a child just started, the ejections and open breakers still running): `health/passive-share.ts`. */
  | { type: "passive"; events: PassiveEvent[] }
  | { type: "close"; successor?: boolean };

export type FromProcess =
  /** The process listens for messages (anything sent earlier may be lost): send `init`. */
  | { type: "started" }
  | { type: "ready"; port: number }
  /** The HTTPS listener is up; its handle comes along when `shareHandle` was asked (sent before `ready`). */
  | { type: "tls-ready"; port: number }
  | { type: "set"; id: number }
  | { type: "set-failed"; id: number; error: string }
  | { type: "failed"; error: string }
  | { type: "applied"; id: number; version: number }
  | { type: "apply-failed"; id: number; error: string }
  | { type: "stats"; id: number; stats: RawServiceStats[] }
  | { type: "metrics"; id: number; families: MetricFamily[] }
  /** A client asked this process for the host's metrics (`GET /metrics` when public): the parent has them all. */
  | { type: "exposition-ask"; ask: number }
  | { type: "log"; line: string }
  /** The rate-limit checks of one event-loop turn; the buckets of the host are in the parent. */
  | RateLimitAsk
  /** The routing decisions of one event-loop turn and the leases handed back; the host's routing state is in the parent. */
  | RouteAsk
  /** A request is held for `service`, which is scaled to zero (rate-limited per service by the process). */
  | { type: "held"; service: string }
  /** The access log file passed its `max_size`: the parent rotates it, then sends `reopen-access-log` to all. */
  | { type: "rotate-access-log" }
  /** This process's passive-health changes of one event-loop turn, for the other children (`health/passive-share.ts`). */
  | { type: "passive"; events: PassiveEvent[] };
