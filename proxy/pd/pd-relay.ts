/**
 * @module
 * Decode's answer to the client (`pd-exchange.ts`), relayed as a co-located exchange relays a
 * replica's (`exchange-io.ts`): its head (end-to-end headers, CORS, `Connection: close` while the
 * proxy closes), then its body through the same meters — an event stream's `SseMeter` (TTFT, ITL,
 * tokens; the usage-only event withheld under `usage: include`) or `[DONE]` scanner, a JSON
 * answer's usage — with backpressure from the client.
 */
import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import type { Dispatcher } from "undici";
import type { ProxyContext } from "../context.ts";
import { endResponse, relayHead } from "../exchange-io.ts";
import type { Observation } from "../observe/observation.ts";
import { replyJson } from "../replies.ts";
import type { ServiceRoute } from "../routes.ts";
import { rawHeaders } from "./pd-legs.ts";

export interface RelayOptions {
  observed: Observation | undefined;
  /** The gateway asked for the stream's usage: its usage-only event is withheld. */
  withhold: boolean;
  /** Decode's work is over (`data: [DONE]` passed, or the answer ended): its load may go back. */
  done: () => void;
}

/**
 * Relays `response`: "ok" when it reached the client whole, "gone" when the client left, else the
 * error that made it unusable (a header Node refuses: answered 502) or cut it (the client's
 * connection is destroyed: its bytes cannot be taken back).
 */
export async function relayDecode(
  ctx: ProxyContext,
  res: ServerResponse,
  route: ServiceRoute,
  requestId: string,
  response: Dispatcher.ResponseData,
  options: RelayOptions,
): Promise<"ok" | "gone" | Error> {
  const { observed, done } = options;
  const meters = relayHead(
    res,
    route,
    ctx.closing,
    requestId,
    response.statusCode,
    "",
    rawHeaders(response.headers),
    observed,
    options.withhold,
  );
  if (meters === null) {
    await response.body.dump().catch(() => {});
    replyJson(res, 502, "decode replica sent an invalid response header", { cors: route.model !== null });
    return new Error("invalid response header");
  }
  const { meter } = meters;
  let scanner = meters.scanner;
  try {
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (res.destroyed) break;
      let out = chunk;
      if (observed) {
        if (observed.firstByteAt < 0) observed.firstByteAt = performance.now();
        observed.json?.feed(chunk);
      }
      if (meter) {
        const wasDone = meter.done;
        out = meter.feed(chunk, performance.now());
        // `data: [DONE]`: the decode replica's work is over (its load goes back before the stream ends).
        if (!wasDone && meter.done) done();
        if (out.length === 0) continue;
      } else if (scanner?.feed(chunk)) {
        scanner = null;
        done();
      }
      if (observed) observed.bytesOut += out.length;
      if (!res.write(out)) await new Promise<void>((resolve) => res.once("drain", resolve).once("close", resolve));
    }
    if (res.destroyed) {
      await response.body.dump().catch(() => {});
      return "gone";
    }
    endResponse(res, meter, observed);
    return "ok";
  } catch (error) {
    res.destroy();
    return error as Error;
  }
}
