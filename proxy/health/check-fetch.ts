/**
 * @module
 * One active health check: `GET <replica url><path>` over node:http(s), its own keep-alive agents
 * (never queued behind an engine scrape of the same replica), the status as the outcome, the body
 * read and dropped. 2xx passes (SMG, Envoy); anything else, an error or the timeout fails.
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export const HEALTH_CHECK_USER_AGENT = "gateplane-health-check";

/** Resolves with the response's status; rejects on a network error or when `signal` aborts. */
export type CheckFetch = (url: string, signal: AbortSignal) => Promise<number>;

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }),
  https: new HttpsAgent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }),
};

export const fetchHealth: CheckFetch = (url, signal) =>
  new Promise<number>((resolve, reject) => {
    const target = new URL(url);
    const https = target.protocol === "https:";
    const req = (https ? httpsRequest : httpRequest)(
      target,
      {
        method: "GET",
        agent: https ? agents.https : agents.http,
        headers: { "user-agent": HEALTH_CHECK_USER_AGENT, accept: "*/*" },
        signal,
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.resume();
        res.on("error", () => {});
      },
    );
    req.on("error", reject);
    req.end();
  });

/** `<replica url><path>`: the replica's own path prefix kept. */
export const checkUrl = (replicaUrl: string, path: string): string => replicaUrl.replace(/\/+$/, "") + path;
