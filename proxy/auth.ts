/**
 * @module
 * Service auth on the gateway, without asking the control plane per request: a request to a
 * service with `auth` needs `Authorization: Bearer gpt_<id>_<secret>` of one of its project's
 * members. The document carries each token's id and SHA-256 of its secret; the secret presented
 * is hashed and compared in constant time. Revocation arrives as a new document.
 */
import { createHash, timingSafeEqual } from "node:crypto";

export type AuthVerdict = "ok" | "missing" | "invalid";

const TOKEN = /^Bearer\s+gpt_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})\s*$/i;
const ABSENT = Buffer.alloc(32);

export class TokenSet {
  private readonly byId: Map<string, Buffer>;

  constructor(tokens: readonly { id: string; secret_sha256: string }[]) {
    this.byId = new Map(tokens.map((t) => [t.id, Buffer.from(t.secret_sha256, "hex")]));
  }

  get size(): number {
    return this.byId.size;
  }

  /** `missing`: no credentials (401); `invalid`: credentials that open nothing here (403). */
  check(authorization: string | undefined): AuthVerdict {
    if (!authorization) return "missing";
    const match = TOKEN.exec(authorization);
    if (!match) return /^Bearer\s*$/i.test(authorization) ? "missing" : "invalid";
    const expected = this.byId.get(match[1]!);
    // Hash and compare even for an unknown id, so a miss costs what a wrong secret costs.
    const presented = createHash("sha256").update(match[2]!).digest();
    const same = timingSafeEqual(presented, expected?.length === 32 ? expected : ABSENT);
    return expected && same ? "ok" : "invalid";
  }
}

/** The refusal for a request to `route`, or null when it may pass. */
export function authDenial(
  route: { auth: boolean; name: string; project: string },
  table: { tokens: TokenSet },
  authorization: string | undefined,
): { status: 401 | 403; message: string; challenge?: true } | null {
  if (!route.auth) return null;
  const verdict = table.tokens.check(authorization);
  if (verdict === "ok") return null;
  if (verdict === "missing") {
    return {
      status: 401,
      message: `service ${route.name} needs a token of a member of project ${route.project}`,
      challenge: true,
    };
  }
  return { status: 403, message: `this token does not open service ${route.name} (project ${route.project})` };
}
