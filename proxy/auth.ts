/**
 * @module
 * Service auth on the gateway, without asking the control plane per request: a request to a
 * service with `auth` needs `Authorization: Bearer gps_<id>_<secret>`, a service token of the
 * service's project (`schema/tokens.ts`). The document carries each token's id and SHA-256 of its
 * secret; the secret presented is hashed and compared in constant time. Revocation arrives as a new
 * document. API tokens (`gpt_…`) are refused with a message saying so: they open the control plane,
 * and a replica must never be handed one.
 *
 * A credential the gateway consumed is not forwarded: once a request to an `auth` service is
 * admitted, every `Authorization` header is removed from what the replica receives.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { API_TOKEN_PATTERN, SERVICE_TOKEN_PATTERN } from "../schema/tokens.ts";
import { dropForwardedHeader, type RequestHead } from "./headers.ts";

export type AuthVerdict = "ok" | "missing" | "api_token" | "invalid";

const ABSENT = Buffer.alloc(32);

export class TokenSet {
  private readonly byId: Map<string, Buffer>;

  constructor(tokens: readonly { id: string; secret_sha256: string }[]) {
    this.byId = new Map(tokens.map((t) => [t.id, Buffer.from(t.secret_sha256, "hex")]));
  }

  get size(): number {
    return this.byId.size;
  }

  /**
   * `missing`: no credentials (401); `api_token`: an API token, which never opens services (403);
   * `invalid`: credentials that open nothing here (403).
   */
  check(authorization: string | undefined): AuthVerdict {
    if (!authorization) return "missing";
    const scheme = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!scheme) return /^Bearer\s*$/i.test(authorization) ? "missing" : "invalid";
    const token = scheme[1]!;
    if (API_TOKEN_PATTERN.test(token)) return "api_token";
    const match = SERVICE_TOKEN_PATTERN.exec(token);
    if (!match) return "invalid";
    const expected = this.byId.get(match[1]!);
    // Hash and compare even for an unknown id, so a miss costs what a wrong secret costs.
    const presented = createHash("sha256").update(match[2]!).digest();
    const same = timingSafeEqual(presented, expected?.length === 32 ? expected : ABSENT);
    return expected && same ? "ok" : "invalid";
  }
}

export interface AuthDenial {
  status: 401 | 403;
  message: string;
  challenge?: true;
}

/** The refusal for a request to `route`, or null when it may pass. */
export function authDenial(
  route: { auth: boolean; name: string; project: string },
  table: { tokens: TokenSet },
  authorization: string | undefined,
): AuthDenial | null {
  if (!route.auth) return null;
  const verdict = table.tokens.check(authorization);
  if (verdict === "ok") return null;
  if (verdict === "missing") {
    return {
      status: 401,
      message: `service ${route.name} needs a service token (gps_…) of project ${route.project}`,
      challenge: true,
    };
  }
  if (verdict === "api_token") {
    return {
      status: 403,
      message: `an API token (gpt_…) does not open services: use a service token (gps_…) of project ${route.project} (gateplane service-token create)`,
    };
  }
  return {
    status: 403,
    message: `this token does not open service ${route.name}: it takes a valid service token (gps_…) of project ${route.project}`,
  };
}

/**
 * {@link authDenial} for a request about to be forwarded: when it passes a service with `auth`, the
 * credential it presented is removed from `head.forward`, so the replica never receives it.
 */
export function admit(
  route: { auth: boolean; name: string; project: string },
  table: { tokens: TokenSet },
  head: RequestHead,
  authorization: string | undefined,
): AuthDenial | null {
  const denied = authDenial(route, table, authorization);
  if (!denied) dropCredential(route, head);
  return denied;
}

/** For a request admitted to `route`: the credential it presented never reaches the replica. */
export function dropCredential(route: { auth: boolean }, head: RequestHead): void {
  if (route.auth) dropForwardedHeader(head, "authorization");
}
