/**
 * @module
 * Certificates, their keys and the ACME account key on the agent's state disk, under
 * `<state-dir>/certificates/` (0700): every file 0600 and replaced atomically, so a restart reuses
 * what was issued (no re-issuance) and a crash mid-write leaves the previous file. The per-host
 * failure bookkeeping lives here too, so a crash-looping agent still respects its back-off.
 */
import { createHash, X509Certificate } from "node:crypto";
import { chmod, mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../../lib/atomic-file.ts";

export interface StoredCertificate {
  host: string;
  /** PEM chain, leaf first. */
  cert: string;
  /** PEM private key (ECDSA P-256). */
  key: string;
  notBefore: number;
  notAfter: number;
  serial: string;
  issuedAt: number;
}

/** What the manager must remember about a host across restarts besides its certificate. */
export interface HostRecord {
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  lastErrorAt: number | null;
}

export interface StoredAccount {
  directoryUrl: string;
  key: string;
  url: string | null;
}

/** Reads facts off a PEM chain's leaf. */
export function describeCertificate(host: string, cert: string, key: string, issuedAt: number): StoredCertificate {
  const leaf = new X509Certificate(cert);
  return {
    host,
    cert,
    key,
    notBefore: Date.parse(leaf.validFrom),
    notAfter: Date.parse(leaf.validTo),
    serial: leaf.serialNumber,
    issuedAt,
  };
}

const HOST_FILE = /^[a-z0-9._-]+$/;

export class CertificateStore {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "certificates");
  }

  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700);
  }

  #hostFile(host: string): string {
    if (!HOST_FILE.test(host)) throw new Error(`not a host name: ${JSON.stringify(host)}`);
    return path.join(this.dir, `${host}.json`);
  }

  async #readJson<T>(file: string): Promise<T | null> {
    try {
      return JSON.parse(await readFile(file, "utf8")) as T;
    } catch {
      // Missing or damaged: treated as absent (a damaged certificate is issued again).
      return null;
    }
  }

  async readCertificate(host: string): Promise<StoredCertificate | null> {
    const stored = await this.#readJson<{ host: string; cert: string; key: string; issuedAt: number }>(
      this.#hostFile(host),
    );
    if (!stored || stored.host !== host || typeof stored.cert !== "string" || typeof stored.key !== "string") {
      return null;
    }
    try {
      return describeCertificate(host, stored.cert, stored.key, stored.issuedAt);
    } catch {
      return null;
    }
  }

  async writeCertificate(c: StoredCertificate): Promise<void> {
    await writeFileAtomic(
      this.#hostFile(c.host),
      JSON.stringify({ host: c.host, cert: c.cert, key: c.key, issuedAt: c.issuedAt }),
      0o600,
    );
  }

  /** Forgets a host that left the document: its key must not outlive its use. */
  async removeCertificate(host: string): Promise<void> {
    await rm(this.#hostFile(host), { force: true });
  }

  get #recordsFile(): string {
    return path.join(this.dir, "state.json");
  }

  async readRecords(): Promise<Record<string, HostRecord>> {
    return (await this.#readJson<Record<string, HostRecord>>(this.#recordsFile)) ?? {};
  }

  async writeRecords(records: Record<string, HostRecord>): Promise<void> {
    await writeFileAtomic(this.#recordsFile, JSON.stringify(records), 0o600);
  }

  /** One account per directory: switching CA (or back) never reuses a key the other CA knows. */
  #accountFile(directoryUrl: string): string {
    const digest = createHash("sha256").update(directoryUrl).digest("hex").slice(0, 16);
    return path.join(this.dir, `account-${digest}.json`);
  }

  async readAccount(directoryUrl: string): Promise<StoredAccount | null> {
    const account = await this.#readJson<StoredAccount>(this.#accountFile(directoryUrl));
    return account && account.directoryUrl === directoryUrl && typeof account.key === "string" ? account : null;
  }

  async writeAccount(account: StoredAccount): Promise<void> {
    await writeFileAtomic(this.#accountFile(account.directoryUrl), JSON.stringify(account), 0o600);
  }
}
