/**
 * @module
 * The console's session: the API token the user signed in with, in a cookie the page's scripts
 * cannot read (`HttpOnly`), sent only to `/console` on same-site requests (`SameSite=Strict`), and
 * only over HTTPS (`Secure`). Every request checks the token again, exactly as the API does (the
 * console reads through the API itself, `routes.ts`): a revoked token or a removed membership takes
 * effect at once, and there is no second credential to leak or revoke. The one exception to
 * `Secure`: plain HTTP on a loopback address, which is what `npm start` serves (browsers accept
 * such cookies there, and nothing leaves the machine); sign-in over plain HTTP elsewhere is refused.
 * State-changing requests (sign-in, sign-out) are POSTs whose `Origin` must be the console's own.
 */
import type { Context } from "hono";
import type { AppEnv } from "../auth.ts";

export const SESSION_COOKIE = "gp_console";
/** Twelve hours; the token itself may be revoked sooner. */
export const SESSION_SECONDS = 12 * 3600;

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|\[::1\])$/;

/** Whether a session may be set up over this request: HTTPS, or plain HTTP on a loopback address. */
export function transportAllowed(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.test(url.hostname));
}

export function sessionCookie(url: URL, token: string | null): string {
  const attributes = [
    `${SESSION_COOKIE}=${token ?? ""}`,
    "Path=/console",
    "HttpOnly",
    "SameSite=Strict",
    `Max-Age=${token === null ? 0 : SESSION_SECONDS}`,
  ];
  if (url.protocol === "https:") attributes.push("Secure");
  return attributes.join("; ");
}

/** The session's token, or null. Tokens are `[A-Za-z0-9_]`: anything else is not one of ours. */
export function sessionToken(c: Context): string | null {
  const header = c.req.header("cookie") ?? "";
  for (const part of header.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name !== SESSION_COOKIE) continue;
    const value = rest.join("=");
    return /^[A-Za-z0-9_]{8,200}$/.test(value) ? value : null;
  }
  return null;
}

/**
 * Where browsers reach the console: `PUBLIC_URL` when set (the control plane's public address;
 * `wrangler dev` rewrites the URL a Worker sees), else the request's own URL.
 */
export function consoleUrl(c: Context<AppEnv>): URL {
  const configured = c.env.PUBLIC_URL;
  if (configured) {
    try {
      return new URL(configured);
    } catch {
      // A malformed variable: fall back to what the request says.
    }
  }
  return new URL(c.req.url);
}

/** A POST from the console's own pages: `Origin` present and the console's own origin. */
export function sameOrigin(c: Context<AppEnv>): boolean {
  const origin = c.req.header("origin");
  return origin !== undefined && (origin === consoleUrl(c).origin || origin === new URL(c.req.url).origin);
}
