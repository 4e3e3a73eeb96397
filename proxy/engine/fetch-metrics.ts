/**
 * @module
 * One `GET /metrics` to a replica over node:http(s), off the request path: a keep-alive agent per
 * scheme with one socket per replica (the scraper never has two requests in flight to one replica),
 * `Accept-Encoding: identity` (a body is parsed as it arrives, not inflated), the body decoded as
 * UTF-8 across chunk boundaries and cut off past `maxBytes`.
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

/** Names the gateway's scrapes in a replica's logs. */
export const ENGINE_SCRAPER_USER_AGENT = "gateplane-engine-scraper";

export interface FetchOptions {
  signal: AbortSignal;
  maxBytes: number;
  /** Each piece of a 200's body; a throw aborts the request and rejects with it. */
  onChunk(text: string): void;
}

/** Fetches `url`, resolves with the status once a 200's body ended (other statuses: at once, body unread). */
export type MetricsFetch = (url: string, options: FetchOptions) => Promise<number>;

/** The body passed `maxBytes`. */
export class MetricsTooLargeError extends Error {
  constructor(maxBytes: number) {
    super(`the exposition is larger than ${maxBytes} bytes`);
    this.name = "MetricsTooLargeError";
  }
}

const agents = {
  http: new HttpAgent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }),
  // A replica's TLS is verified as the forwarding path verifies it (Node's defaults).
  https: new HttpsAgent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 }),
};

export const fetchMetrics: MetricsFetch = (url, { signal, maxBytes, onChunk }) =>
  new Promise<number>((resolve, reject) => {
    const target = new URL(url);
    const https = target.protocol === "https:";
    const req = (https ? httpsRequest : httpRequest)(target, {
      method: "GET",
      agent: https ? agents.https : agents.http,
      headers: {
        accept: "text/plain;version=0.0.4;q=1,*/*;q=0.1",
        "accept-encoding": "identity",
        "user-agent": ENGINE_SCRAPER_USER_AGENT,
      },
      signal,
    });
    req.on("error", reject);
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        resolve(status);
        return;
      }
      let bytes = 0;
      res.setEncoding("utf8");
      res.on("data", (text: string) => {
        bytes += Buffer.byteLength(text);
        try {
          if (bytes > maxBytes) throw new MetricsTooLargeError(maxBytes);
          onChunk(text);
        } catch (err) {
          req.destroy();
          reject(err);
        }
      });
      res.on("end", () => resolve(status));
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("the replica closed the connection mid-body")));
    });
    req.end();
  });
