/**
 * @module
 * What a client gets when Node's parser refuses its bytes (malformed request, head too large,
 * too slow): Node's own answer (400, 431, 413 or 408, then close), except that answers still owed
 * to earlier requests on the connection go first. Node parses pipelined requests ahead of their
 * answers, and its default answer writes the 400 at once and destroys the socket, so a valid
 * request followed by a malformed one lost its answer. The client matches answers to requests in
 * order: it gets the valid request's answer, then the refusal, then the close.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";

const LAST_RESPONSE = Symbol("lastResponse");
const REFUSED = Symbol("refused");

interface ClientSocket extends Duplex {
  /** The answer to the latest request read from this connection (answers leave in order). */
  [LAST_RESPONSE]?: ServerResponse;
  [REFUSED]?: true;
  /** Node's response being written on the socket now (what its default handler checks too). */
  _httpMessage?: ServerResponse | null;
}

const REFUSALS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Payload Too Large",
  ERR_HTTP_REQUEST_TIMEOUT: "408 Request Timeout",
};

/**
 * Remembers `res` as its connection's latest answer until it is sent: an idle keep-alive
 * connection must not keep a finished exchange (and its buffered body) alive.
 */
export function trackResponse(req: IncomingMessage, res: ServerResponse): void {
  (req.socket as ClientSocket)[LAST_RESPONSE] = res;
  // One shared listener, no closure per request.
  res.on("finish", forget);
}

function forget(this: ServerResponse): void {
  const socket = this.req.socket as ClientSocket;
  if (socket[LAST_RESPONSE] === this) socket[LAST_RESPONSE] = undefined;
}

/** The server's `clientError` listener. */
export function onClientError(err: Error & { code?: string }, duplex: Duplex): void {
  const socket = duplex as ClientSocket;
  // The parser reports again on every later read: the first report decides.
  if (socket[REFUSED]) return;
  socket[REFUSED] = true;
  const last = socket[LAST_RESPONSE];
  if (last && !last.writableFinished && !last.destroyed && last.req.complete && socket.writable) {
    // The refused bytes come after a request read whole whose answer is still owed: answer it
    // first. (A request still being read is the one at fault: its answer cannot come.)
    let once = false;
    const after = () => {
      if (once) return;
      once = true;
      refuse(socket, err, true);
    };
    last.once("finish", after);
    last.once("close", after);
    return;
  }
  refuse(socket, err, false);
}

function refuse(socket: ClientSocket, err: Error & { code?: string }, answered: boolean): void {
  if (socket.destroyed) return;
  const current = socket._httpMessage;
  // As Node does: never write into an answer already under way.
  if (!socket.writable || (!answered && current && current.headersSent)) {
    socket.destroy();
    return;
  }
  const status = REFUSALS[err.code ?? ""] ?? "400 Bad Request";
  // `end`, not write + destroy: what is still buffered (the earlier answers) must leave first.
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`, () => socket.destroy());
}
