/**
 * @module
 * One ACME HTTP-01 issuance with acme-client: account (key created once, persisted before first
 * use, External Account Binding when configured), order, challenge answered through the proxy,
 * ECDSA P-256 key and CSR, certificate chain. acme-client's own in-process retries are turned off:
 * it would sleep through a `Retry-After` of hours inside one call, where the manager's back-off
 * (which honours that header) is the one place that decides when to ask the CA again.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { Agent as HttpsAgent } from "node:https";
import type * as Acme from "acme-client";
import { Agent, fetch as undiciFetch } from "undici";
import { fetchRenewalInfo, type RenewalInfo } from "./ari.ts";
import { parseRetryAfter } from "./schedule.ts";
import type { CertificateStore } from "./store.ts";

export const LETS_ENCRYPT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory";

export interface AcmeSettings {
  directoryUrl: string;
  /** External Account Binding (ZeroSSL and other CAs that need one); the HMAC key is base64url. */
  eab: { kid: string; hmacKey: string } | null;
  /** Contact address registered with a new account. */
  email?: string | null;
}

/**
 * How long an issuance waits for the CA to finish validating a challenge, and an order: it asks at
 * once, then again after `initialMs`, doubling up to `maxMs`, `attempts` times in all.
 */
export interface StatusPolling {
  initialMs: number;
  maxMs: number;
  attempts: number;
}

/** acme-client's own defaults (a CA such as Let's Encrypt takes seconds to validate). */
export const DEFAULT_STATUS_POLLING: StatusPolling = { initialMs: 5_000, maxMs: 30_000, attempts: 10 };

/** Where HTTP-01 answers go: the proxy's challenge map (every proxy process). */
export interface ChallengeBoard {
  add(token: string, keyAuthorization: string): Promise<void>;
  remove(token: string): Promise<void>;
}

/** An issuance failed; `reason` is for people (the control plane shows it), `retryAfterMs` from the CA. */
export class AcmeIssueError extends Error {
  readonly retryAfterMs: number | null;
  constructor(message: string, retryAfterMs: number | null, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AcmeIssueError";
    this.retryAfterMs = retryAfterMs;
  }
}

/** Retry-After seen on a 429/503 during the current issuance (acme-client drops response headers). */
const seen = new AsyncLocalStorage<{ retryAfterMs: number | null }>();

/**
 * acme-client, loaded at the first issuance: it and what it brings (node-forge, axios, mime-db, the
 * x509/asn1 packages) are half the agent's code, ~1.9 of 3.7 MB that every agent start read,
 * compiled and ran, while most hosts never issue a certificate or issue one a quarter. It stays a
 * package import in the agent's bundle (`lib/entry-bundle.mjs` keeps it external), so loading it
 * is one `import()` from node_modules. Configured once, when loaded.
 */
let loaded: Promise<typeof Acme> | null = null;
function loadAcme(): Promise<typeof Acme> {
  loaded ??= import("acme-client").then((module) => {
    // Its CommonJS exports arrive as the namespace or as its default, depending on the loader.
    const acme = ((module as { default?: typeof Acme }).default ?? module) as typeof Acme;
    configureAcmeClient(acme);
    return acme;
  });
  return loaded;
}

function configureAcmeClient(acme: typeof Acme): void {
  const defaults = acme.axios.defaults as unknown as { acmeSettings: Record<string, unknown> };
  defaults.acmeSettings = { ...defaults.acmeSettings, retryMaxAttempts: 0 };
  acme.axios.interceptors.response.use(
    null,
    (error: { response?: { status: number; headers: Record<string, string> } }) => {
      const response = error.response;
      const record = seen.getStore();
      if (record && response && (response.status === 429 || response.status === 503)) {
        record.retryAfterMs = parseRetryAfter(response.headers["retry-after"], Date.now());
      }
      return Promise.reject(error);
    },
  );
}

/** The CA's words, with what a person should check first when validation could not reach us. */
export function explainFailure(host: string, detail: string): string {
  const text = detail.replace(/\s+/g, " ").trim().slice(0, 800) || "unknown error";
  if (
    /NXDOMAIN|no such host|no valid A records|DNS problem|connection refused|timeout|connect:|dial tcp|lookup/i.test(
      text,
    )
  ) {
    return `DNS for ${host} does not point at this gateway, or port 80 is not reachable (${text})`;
  }
  if (/externalAccountBinding|external account/i.test(text)) {
    return `External Account Binding refused by the CA for ${host}: check the project's ACME settings (EAB kid and HMAC key) (${text})`;
  }
  return `certificate for ${host} failed: ${text}`;
}

export interface AcmeIssuerOptions {
  store: CertificateStore;
  settings: AcmeSettings;
  board: ChallengeBoard;
  /** Extra PEM roots trusted for the directory's HTTPS (a private or test CA, e.g. Pebble's). */
  directoryCa?: string;
  /** Default {@link DEFAULT_STATUS_POLLING}; tests against a local CA that validates at once ask sooner. */
  statusPolling?: StatusPolling;
  log: (line: string) => void;
}

export class AcmeIssuer {
  readonly #options: AcmeIssuerOptions;
  readonly #dispatcher: Agent | undefined;
  /** For acme-client's axios when there is an extra root: one per issuer, so its kept-alive sockets are reused. */
  readonly #httpsAgent: HttpsAgent | undefined;
  #renewalInfoUrl: Promise<string | undefined> | null = null;

  constructor(options: AcmeIssuerOptions) {
    this.#options = options;
    if (options.directoryCa) {
      this.#dispatcher = new Agent({ connect: { ca: options.directoryCa } });
      this.#httpsAgent = new HttpsAgent({ ca: options.directoryCa, keepAlive: true });
    }
  }

  /** acme-client, trusting the extra root when there is one. */
  async #acme(): Promise<typeof Acme> {
    const acme = await loadAcme();
    // acme-client talks through its one axios instance: trust the extra root for it as a whole.
    if (this.#httpsAgent) acme.axios.defaults.httpsAgent = this.#httpsAgent;
    return acme;
  }

  get settings(): AcmeSettings {
    return this.#options.settings;
  }

  #fetch: typeof fetch = (input, init) =>
    undiciFetch(input as string, { ...(init as object), dispatcher: this.#dispatcher }) as unknown as Promise<Response>;

  async #client(acme: typeof Acme): Promise<Acme.Client> {
    const { store, settings } = this.#options;
    const polling = this.#options.statusPolling ?? DEFAULT_STATUS_POLLING;
    let account = await store.readAccount(settings.directoryUrl);
    if (!account) {
      // Persisted before first use: a crash after registering must not leave an account we cannot use again.
      const key = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
      account = { directoryUrl: settings.directoryUrl, key, url: null };
      await store.writeAccount(account);
    }
    return new acme.Client({
      directoryUrl: settings.directoryUrl,
      accountKey: account.key,
      backoffMin: polling.initialMs,
      backoffMax: polling.maxMs,
      backoffAttempts: polling.attempts,
      ...(account.url ? { accountUrl: account.url } : {}),
      ...(settings.eab ? { externalAccountBinding: { kid: settings.eab.kid, hmacKey: settings.eab.hmacKey } } : {}),
    });
  }

  /** Runs one order for `host`; resolves with the PEM chain and key, or rejects with {@link AcmeIssueError}. */
  async issue(host: string): Promise<{ cert: string; key: string }> {
    const record = { retryAfterMs: null as number | null };
    return seen.run(record, async () => {
      const { board, store, settings } = this.#options;
      const tokens = new Set<string>();
      try {
        const acme = await this.#acme();
        const client = await this.#client(acme);
        const [key, csr] = await acme.crypto.createCsr(
          { commonName: host, altNames: [host] },
          await acme.crypto.createPrivateEcdsaKey("P-256"),
        );
        const cert = await client.auto({
          csr,
          termsOfServiceAgreed: true,
          ...(settings.email ? { email: settings.email } : {}),
          challengePriority: ["http-01"],
          // acme-client would fetch the challenge itself over public DNS first; the CA's answer is the one that counts.
          skipChallengeVerification: true,
          challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
            if (challenge.type !== "http-01") throw new Error(`unexpected challenge type ${challenge.type}`);
            tokens.add(challenge.token);
            await board.add(challenge.token, keyAuthorization);
          },
          challengeRemoveFn: async (_authz, challenge) => {
            tokens.delete(challenge.token);
            await board.remove(challenge.token);
          },
        });
        const url = client.getAccountUrl();
        const account = await store.readAccount(settings.directoryUrl);
        if (account && account.url !== url) await store.writeAccount({ ...account, url });
        return { cert, key: key.toString() };
      } catch (error) {
        throw new AcmeIssueError(explainFailure(host, (error as Error).message ?? String(error)), record.retryAfterMs, {
          cause: error,
        });
      } finally {
        for (const token of tokens) await board.remove(token).catch(() => {});
      }
    });
  }

  /** The CA's renewal window for a certificate (ARI), or null when it offers none. */
  async renewalInfo(pem: string, now: number): Promise<RenewalInfo | null> {
    this.#renewalInfoUrl ??= this.#fetch(this.#options.settings.directoryUrl)
      .then(async (res) => ((await res.json()) as { renewalInfo?: string }).renewalInfo)
      .catch(() => {
        this.#renewalInfoUrl = null;
        return undefined;
      });
    try {
      return await fetchRenewalInfo(await this.#renewalInfoUrl, pem, this.#fetch, now);
    } catch {
      return null;
    }
  }

  close(): void {
    this.#dispatcher?.close().catch(() => {});
    this.#httpsAgent?.destroy();
  }
}
