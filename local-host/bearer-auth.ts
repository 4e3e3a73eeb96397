/**
 * @module
 * Bearer-token check in constant time. Both sides are hashed first so the comparison neither leaks
 * the token's length nor throws on a length mismatch.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (value: string) => createHash("sha256").update(value).digest();

/** Returns a checker for `Authorization` header values against the expected token. */
export function bearerChecker(token: string): (authorization: string | undefined) => boolean {
  if (token.length === 0) throw new Error("the daemon token must not be empty");
  const expected = digest(token);
  return (authorization) => {
    const match = /^Bearer +(\S+)\s*$/i.exec(authorization ?? "");
    const presented = match?.[1];
    if (presented === undefined) return false;
    return timingSafeEqual(digest(presented), expected);
  };
}
