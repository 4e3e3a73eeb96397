/**
 * @module
 * ACME HTTP-01 answers (RFC 8555 §8.3): `GET /.well-known/acme-challenge/<token>` on the HTTP
 * listener returns the token's key authorization, for any Host, before routing and before the
 * HTTPS redirect (the CA always validates over plain HTTP on port 80). The agent fills the map.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { replyText } from "./replies.ts";

export const CHALLENGE_PREFIX = "/.well-known/acme-challenge/";

/** token → key authorization. */
export type ChallengeTokens = Readonly<Record<string, string>>;

const TOKEN = /^[A-Za-z0-9_-]{1,256}$/;

/** Checks a map from the agent; throws naming the bad entry. */
export function checkChallenges(tokens: unknown): ChallengeTokens {
  if (typeof tokens !== "object" || tokens === null || Array.isArray(tokens)) {
    throw new Error("challenges: expected a mapping of tokens to key authorizations");
  }
  for (const [token, answer] of Object.entries(tokens)) {
    if (!TOKEN.test(token)) throw new Error(`challenges: ${JSON.stringify(token.slice(0, 40))} is not an ACME token`);
    if (typeof answer !== "string" || !answer.startsWith(`${token}.`)) {
      throw new Error(`challenges.${token}: expected the key authorization "<token>.<thumbprint>"`);
    }
  }
  return { ...(tokens as Record<string, string>) };
}

/** Answers the request if it is a challenge (true), whether or not the token is known. */
export function answerChallenge(req: IncomingMessage, res: ServerResponse, tokens: ChallengeTokens): boolean {
  const url = req.url ?? "";
  if (!url.startsWith(CHALLENGE_PREFIX) || (req.method !== "GET" && req.method !== "HEAD")) return false;
  const token = url.slice(CHALLENGE_PREFIX.length).split("?")[0]!;
  const answer = Object.hasOwn(tokens, token) ? tokens[token] : undefined;
  if (answer === undefined) {
    replyText(res, 404, "no such ACME challenge");
    return true;
  }
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": String(Buffer.byteLength(answer)),
    "cache-control": "no-store",
  });
  res.end(req.method === "HEAD" ? undefined : answer);
  return true;
}
