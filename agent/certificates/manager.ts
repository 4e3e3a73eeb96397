/**
 * @module
 * Keeps a certificate for every HTTPS host of the applied document: loads what is on disk (no
 * re-issuance after a restart), issues what is missing, renews when due (ARI or a third of the
 * lifetime left, checked every 10 minutes), backs off after failures (1 min doubling to 6 h, never
 * before the CA's Retry-After) and hands the proxy the certificates it serves. Hosts are handled
 * one at a time so a fleet of new services never bursts the CA. A host without a valid certificate
 * keeps being served over plain HTTP. A host that leaves the document stops being served and renewed,
 * and its certificate and key are deleted. Every change of state is reported through `onChange`.
 */
import { type CertificateState, MAX_REPORT_TEXT } from "../../schema/agent-protocol.ts";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import type { ConfigDocument } from "../../schema/config-document.ts";
import { AcmeIssueError, AcmeIssuer, type AcmeSettings, LETS_ENCRYPT_DIRECTORY, type StatusPolling } from "./acme.ts";
import type { RenewalWindow } from "./schedule.ts";
import { failureDelay, RENEWAL_CHECK_INTERVAL_MS, renewalAt } from "./schedule.ts";
import { CertificateStore, describeCertificate, type HostRecord, type StoredCertificate } from "./store.ts";

/** What the manager needs of the proxy. */
export interface CertificateSink {
  setCertificates(certificates: { host: string; cert: string; key: string }[]): Promise<void>;
  setChallenges(tokens: Record<string, string>): Promise<void>;
}

/** Something that can issue (the real {@link AcmeIssuer} unless a test brings another). */
export interface Issuer {
  issue(host: string): Promise<{ cert: string; key: string }>;
  renewalInfo(pem: string, now: number): Promise<{ window: RenewalWindow; nextCheckAt: number } | null>;
  close(): void;
}

export interface CertificateEvent {
  type: "certificate.issued" | "certificate.failed";
  host: string;
  message: string;
}

export interface CertificateManagerOptions {
  stateDir: string;
  proxy: CertificateSink;
  log: { info(line: string): void; warn(line: string): void; error(line: string): void };
  now?: () => number;
  checkIntervalMs?: number;
  /** Extra PEM roots trusted for the ACME directory (tests: Pebble's). */
  directoryCa?: string;
  /** How an issuance waits for the CA (default acme-client's: 5 s, doubling to 30 s, 10 times). */
  statusPolling?: StatusPolling;
  onChange?: (states: CertificateState[]) => void;
  onEvent?: (event: CertificateEvent) => void;
  /** For the random moment inside an ARI window. */
  random?: () => number;
  issuerFor?: (settings: AcmeSettings, board: AcmeIssuerBoard) => Issuer;
}

type AcmeIssuerBoard = ConstructorParameters<typeof AcmeIssuer>[0]["board"];

/** The hosts a document asks certificates for, and from which CA (null: no ACME on this gateway). */
export function certificatePlan(doc: ConfigDocument | null): { hosts: string[]; settings: AcmeSettings | null } {
  const acme = doc?.acme ?? null;
  if (!doc || !acme) return { hosts: [], settings: null };
  const hosts = doc.services.filter((s) => s.https).map((s) => s.host.toLowerCase());
  if (doc.entrypoint) hosts.push(doc.entrypoint.host.toLowerCase());
  return {
    hosts: [...new Set(hosts)],
    settings: {
      directoryUrl: acme.directory_url ?? LETS_ENCRYPT_DIRECTORY,
      eab: acme.eab ? { kid: acme.eab.kid, hmacKey: acme.eab.hmac_key } : null,
      email: acme.email ?? null,
    },
  };
}

/** Each service needing a certificate (`https`, with ACME set) → its host: what a delta is checked against. */
export function certificateHosts(doc: ConfigDocument | null): Map<string, string> {
  const out = new Map<string, string>();
  if (!doc?.acme) return out;
  for (const s of doc.services) if (s.https) out.set(s.name, s.host.toLowerCase());
  return out;
}

/**
 * Whether `delta` changes which hosts need a certificate (`hosts`: `certificateHosts` of the document
 * it applies on): a service with one added, removed, or moved, or the head (ACME settings,
 * entrypoint) changed. O(changed): a delta that does not is nothing for the certificates.
 */
export function deltaChangesCertificates(
  delta: ConfigDelta,
  hosts: ReadonlyMap<string, string>,
  acme: boolean,
): boolean {
  if (delta.head) return true;
  if (!acme) return false;
  if (delta.removed.some((name) => hosts.has(name))) return true;
  return delta.services.some((s) => (s.https ? s.host.toLowerCase() : undefined) !== hosts.get(s.name));
}

interface HostSlot {
  cert: StoredCertificate | null;
  record: HostRecord;
  window: RenewalWindow | null;
  ariNextCheckAt: number;
  draw: number;
  /** The proxy serves a certificate of this host (set once `setCertificates` resolved with one). */
  served: boolean;
}

const iso = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? null : new Date(ms).toISOString());
const FRESH: HostRecord = { attempts: 0, nextAttemptAt: 0, lastError: null, lastErrorAt: null };

export class CertificateManager {
  readonly #o: CertificateManagerOptions;
  readonly #store: CertificateStore;
  readonly #now: () => number;
  readonly #hosts = new Map<string, HostSlot>();
  #records: Record<string, HostRecord> = {};
  #settings: AcmeSettings | null = null;
  #issuer: Issuer | null = null;
  #challenges: Record<string, string> = {};
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> = Promise.resolve();
  #again = false;
  #busy = false;
  #stopped = false;
  #lastReport = "";
  /** `certificateHosts` of the last document configured. */
  #serviceHosts = new Map<string, string>();

  constructor(options: CertificateManagerOptions) {
    this.#o = options;
    this.#store = new CertificateStore(options.stateDir);
    this.#now = options.now ?? Date.now;
  }

  async start(): Promise<void> {
    await this.#store.init();
    this.#records = await this.#store.readRecords();
  }

  /**
   * Follows a delta applied on top of the last document configured (`doc`: the merged whole): as
   * `configure` when it changes which hosts need a certificate, else nothing (no walk of the
   * document, no certificates handed to the proxy again: the periodic check still serves and renews).
   */
  async configureDelta(delta: ConfigDelta, doc: ConfigDocument): Promise<void> {
    if (deltaChangesCertificates(delta, this.#serviceHosts, this.#settings !== null)) await this.configure(doc);
  }

  /** Follows a newly applied document: new hosts load from disk (or queue for issuance), dropped ones stop being served. */
  async configure(doc: ConfigDocument | null): Promise<void> {
    this.#serviceHosts = certificateHosts(doc);
    const plan = certificatePlan(doc);
    if (JSON.stringify(plan.settings) !== JSON.stringify(this.#settings)) {
      this.#issuer?.close();
      this.#issuer = plan.settings ? this.#makeIssuer(plan.settings) : null;
      this.#settings = plan.settings;
    }
    const wanted = new Set(plan.hosts);
    const dropped = [...this.#hosts.keys()].filter((host) => !wanted.has(host));
    for (const host of dropped) this.#hosts.delete(host);
    for (const host of plan.hosts) {
      if (this.#hosts.has(host)) continue;
      this.#hosts.set(host, {
        cert: await this.#store.readCertificate(host),
        record: this.#records[host] ?? { ...FRESH },
        window: null,
        ariNextCheckAt: 0,
        draw: (this.#o.random ?? Math.random)(),
        served: false,
      });
    }
    await this.#serve();
    await this.#forget(dropped);
    this.#report();
    this.kick();
  }

  /** Deletes what is stored for hosts that left the document (after the proxy stopped serving them). */
  async #forget(hosts: string[]): Promise<void> {
    if (hosts.length === 0) return;
    for (const host of hosts) {
      await this.#store.removeCertificate(host);
      this.#o.log.info(`certificate for ${host} removed: the host left the configuration`);
    }
    const records = { ...this.#records };
    for (const host of hosts) delete records[host];
    this.#records = records;
    await this.#store.writeRecords(records);
  }

  #makeIssuer(settings: AcmeSettings): Issuer {
    const board: AcmeIssuerBoard = {
      add: async (token, answer) => {
        this.#challenges = { ...this.#challenges, [token]: answer };
        await this.#o.proxy.setChallenges(this.#challenges);
      },
      remove: async (token) => {
        const { [token]: _gone, ...rest } = this.#challenges;
        this.#challenges = rest;
        await this.#o.proxy.setChallenges(rest);
      },
    };
    if (this.#o.issuerFor) return this.#o.issuerFor(settings, board);
    return new AcmeIssuer({
      store: this.#store,
      settings,
      board,
      log: (line) => this.#o.log.info(line),
      ...(this.#o.directoryCa ? { directoryCa: this.#o.directoryCa } : {}),
      ...(this.#o.statusPolling ? { statusPolling: this.#o.statusPolling } : {}),
    });
  }

  /** Runs a check now (after the one in progress, if any). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#busy) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#busy = true;
    this.#running = this.#check()
      .catch((error: unknown) => this.#o.log.error(`certificate check failed: ${(error as Error).message}`))
      .finally(() => {
        this.#busy = false;
        if (this.#stopped) return;
        if (this.#again) {
          this.#again = false;
          this.kick();
        } else {
          this.#timer = setTimeout(() => this.kick(), this.#o.checkIntervalMs ?? RENEWAL_CHECK_INTERVAL_MS);
        }
      });
  }

  /** Resolves once the check in progress (if any) is over. */
  idle(): Promise<void> {
    return this.#running;
  }

  async #check(): Promise<void> {
    for (const [host, slot] of this.#hosts) {
      if (this.#stopped || !this.#issuer) return;
      if (this.#hosts.get(host) !== slot) continue;
      const now = this.#now();
      if (slot.cert && now < slot.cert.notAfter) {
        if (now >= slot.ariNextCheckAt) {
          const info = await this.#issuer.renewalInfo(slot.cert.cert, now);
          slot.window = info?.window ?? null;
          slot.ariNextCheckAt = info?.nextCheckAt ?? now + 6 * 3_600_000;
        }
        if (now < renewalAt(slot.cert, slot.window, slot.draw)) continue;
      }
      if (now < slot.record.nextAttemptAt) continue;
      await this.#issue(host, slot);
    }
    // An expired certificate stops being served (plain HTTP works again) even while renewal fails.
    await this.#serve();
    this.#report();
  }

  async #issue(host: string, slot: HostSlot): Promise<void> {
    const renewing = slot.cert !== null;
    this.#o.log.info(`${renewing ? "renewing" : "obtaining"} the certificate for ${host}`);
    try {
      const { cert, key } = await this.#issuer!.issue(host);
      // Dropped while the CA was working: nothing of it may be written back.
      if (this.#hosts.get(host) !== slot) return;
      const stored = describeCertificate(host, cert, key, this.#now());
      await this.#store.writeCertificate(stored);
      slot.cert = stored;
      slot.window = null;
      slot.ariNextCheckAt = 0;
      slot.record = { ...FRESH };
      await this.#saveRecord(host, slot.record);
      await this.#serve();
      const message = `certificate for ${host} issued (serial ${stored.serial}, expires ${iso(stored.notAfter)})`;
      this.#o.log.info(message);
      this.#o.onEvent?.({ type: "certificate.issued", host, message });
    } catch (error) {
      const reason =
        error instanceof AcmeIssueError ? error.message : `certificate for ${host} failed: ${(error as Error).message}`;
      if (this.#hosts.get(host) !== slot) return;
      const now = this.#now();
      const delay = failureDelay(slot.record.attempts, error instanceof AcmeIssueError ? error.retryAfterMs : null);
      slot.record = {
        attempts: slot.record.attempts + 1,
        nextAttemptAt: now + delay,
        lastError: reason,
        lastErrorAt: now,
      };
      await this.#saveRecord(host, slot.record).catch((e: Error) =>
        this.#o.log.error(`cannot persist certificate state: ${e.message}`),
      );
      this.#o.log.warn(`${reason}; next attempt in ${Math.round(delay / 1000)}s`);
      this.#o.onEvent?.({ type: "certificate.failed", host, message: reason });
    }
    this.#report();
  }

  async #saveRecord(host: string, record: HostRecord): Promise<void> {
    this.#records = { ...this.#records, [host]: record };
    await this.#store.writeRecords(this.#records);
  }

  async #serve(): Promise<void> {
    const now = this.#now();
    const valid = [...this.#hosts.values()].flatMap((s) =>
      s.cert && now < s.cert.notAfter ? [{ host: s.cert.host, cert: s.cert.cert, key: s.cert.key }] : [],
    );
    await this.#o.proxy.setCertificates(valid);
    // Only now is a certificate "issued" for the API: every proxy process answers with it.
    const hosts = new Set(valid.map((c) => c.host));
    for (const [host, slot] of this.#hosts) slot.served = hosts.has(host);
  }

  states(): CertificateState[] {
    const now = this.#now();
    return [...this.#hosts].map(([host, s]) => {
      const valid = s.cert !== null && now < s.cert.notAfter && s.served;
      return {
        host,
        status: valid ? "issued" : s.record.lastError ? "failed" : "pending",
        not_after: iso(s.cert?.notAfter ?? null),
        issued_at: iso(s.cert?.issuedAt ?? null),
        renew_at: s.cert ? iso(renewalAt(s.cert, s.window, s.draw)) : null,
        last_error: s.record.lastError?.slice(0, MAX_REPORT_TEXT) ?? null,
        last_error_at: iso(s.record.lastErrorAt),
        next_attempt_at: s.record.lastError ? iso(s.record.nextAttemptAt) : null,
      };
    });
  }

  /** The certificate served for `host` (tests, diagnostics). */
  certificate(host: string): StoredCertificate | null {
    return this.#hosts.get(host)?.cert ?? null;
  }

  #report(): void {
    const states = this.states();
    const text = JSON.stringify(states);
    if (text === this.#lastReport) return;
    this.#lastReport = text;
    this.#o.onChange?.(states);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
    this.#issuer?.close();
  }
}
