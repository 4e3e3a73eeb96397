/**
 * @module
 * The certificates the HTTPS listener serves, chosen by SNI. A set of certificates is swapped as a
 * whole: a handshake picks its context from the set in force when it starts, and a connection keeps
 * the context it was handshaken with, so replacing a certificate never touches open connections.
 */
import { createSecureContext, type SecureContext } from "node:tls";
import { normalizeHost } from "./routes.ts";

/** One host's certificate as the agent hands it over: PEM chain (leaf first) and PEM private key. */
export interface TlsCertificate {
  host: string;
  cert: string;
  key: string;
}

export class CertificateSet {
  #contexts: ReadonlyMap<string, SecureContext> = new Map();

  /**
   * Builds every context first, then swaps: a bad pair throws (naming its host) and leaves the
   * certificates in force untouched.
   */
  replace(certificates: readonly TlsCertificate[]): void {
    const next = new Map<string, SecureContext>();
    for (const [i, c] of certificates.entries()) {
      const host = normalizeHost(c.host);
      try {
        next.set(host, createSecureContext({ cert: c.cert, key: c.key }));
      } catch (error) {
        throw new Error(`certificates[${i}] (${host}): ${(error as Error).message}`);
      }
    }
    this.#contexts = next;
  }

  has(host: string): boolean {
    return this.#contexts.has(host);
  }

  get hosts(): string[] {
    return [...this.#contexts.keys()];
  }

  /** `SNICallback`: the host's context, or none (the handshake then fails: we have nothing to show). */
  readonly sni = (servername: string, callback: (error: Error | null, context?: SecureContext) => void): void => {
    const context = this.#contexts.get(normalizeHost(servername));
    if (context) callback(null, context);
    else callback(new Error(`no certificate for ${servername.slice(0, 253)}`));
  };
}
