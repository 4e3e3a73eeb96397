/**
 * @module
 * Free loopback ports for new hosts. The kernel picks them (listen on port 0); ports already promised
 * to another host are skipped because that host's agent may be down (restarting) and not holding them.
 */
import { createServer, type Server } from "node:net";

const MAX_ATTEMPTS = 50;

function listenOnAnyPort(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Returns `count` distinct free ports on 127.0.0.1, none of them in `taken`. */
export async function allocatePorts(count: number, taken: ReadonlySet<number>): Promise<number[]> {
  // All candidates stay bound until the end so the kernel cannot hand out the same port twice.
  const held: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt >= MAX_ATTEMPTS) throw new Error(`no free port found after ${MAX_ATTEMPTS} attempts`);
      const server = await listenOnAnyPort();
      held.push(server);
      const address = server.address();
      if (address && typeof address === "object" && !taken.has(address.port)) ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(held.map(close));
  }
}

/** Whether something already listens on `127.0.0.1:port` (so a server we start there would fail). */
export function isPortInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      error.code === "EADDRINUSE" ? resolve(true) : reject(error),
    );
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** One free port on 127.0.0.1 (for servers started right after; tests and benchmarks). */
export async function freePort(): Promise<number> {
  const [port] = await allocatePorts(1, new Set());
  return port!;
}
