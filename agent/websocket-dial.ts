/**
 * @module
 * Opening the agent's WebSocket with undici (Node 20 has no global WebSocket; undici's accepts
 * `headers`, which the bearer token needs). undici's WebSocket hides two things the agent needs, so an
 * interceptor on its dispatcher catches them: the HTTP status of a refused upgrade (a 401 means "get a
 * new token", anything else means "retry later"), and the TCP socket, to drop a connection whose peer
 * went silent (a closing handshake with a dead peer would wait for the OS to give up, minutes later).
 */
import type { Duplex } from "node:stream";
import { type Dispatcher, WebSocket } from "undici";

export interface DialedSocket {
  readonly ws: WebSocket;
  /** Status of the upgrade response once it arrived (101 when upgraded), null before or when none came. */
  readonly upgradeStatus: number | null;
  /** Why the handshake request failed (ECONNREFUSED…), which undici's `error` event does not say. */
  readonly failure: Error | null;
  /** Drops the connection now, without a closing handshake; `ws` then fires `close` (1006). */
  destroy(): void;
}

/** `http(s)://host[/base]` → `ws(s)://host[/base]<route>`. */
export function webSocketUrl(controlPlaneUrl: string, route: string): string {
  const url = new URL(controlPlaneUrl.replace(/\/+$/, "") + route);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

export function dialWebSocket(url: string, headers: Record<string, string>, dispatcher: Dispatcher): DialedSocket {
  let upgradeStatus: number | null = null;
  let socket: Duplex | null = null;
  let failure: Error | null = null;
  const observed = dispatcher.compose(
    (dispatch) => (opts, handler) =>
      dispatch(opts, {
        onRequestStart: (controller, context) => handler.onRequestStart?.(controller, context),
        onRequestUpgrade: (controller, statusCode, responseHeaders, upgraded) => {
          upgradeStatus = statusCode;
          socket = upgraded;
          handler.onRequestUpgrade?.(controller, statusCode, responseHeaders, upgraded);
        },
        onResponseStart: (controller, statusCode, responseHeaders, statusMessage) => {
          upgradeStatus = statusCode;
          handler.onResponseStart?.(controller, statusCode, responseHeaders, statusMessage);
        },
        onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
        onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
        onResponseError: (controller, error) => {
          failure = error;
          handler.onResponseError?.(controller, error);
        },
      }),
  );
  const ws = new WebSocket(url, { headers, dispatcher: observed });
  return {
    ws,
    get upgradeStatus() {
      return upgradeStatus;
    },
    get failure() {
      return failure;
    },
    destroy() {
      if (socket) (socket as Duplex).destroy();
      // Still connecting: closing aborts the handshake.
      else ws.close();
    },
  };
}
