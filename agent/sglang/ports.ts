/**
 * @module
 * Loopback ports for the routers the agent launches: each takes two (its HTTP port and its
 * Prometheus port) from a fixed range (default 20000–24999, dstack's), so a firewall rule or an
 * operator can tell them apart. A port counts as free when nothing is bound to 127.0.0.1 there and
 * no other router of this agent holds it; the search starts after the last port handed out and
 * wraps, so a router restarted after a crash does not race its predecessor's socket for the same port.
 */
import { createServer } from "node:net";

/** Whether something listens on 127.0.0.1:`port` (a router started there would fail to bind). */
function isPortInUse(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (error: NodeJS.ErrnoException) =>
      error.code === "EADDRINUSE" || error.code === "EACCES" ? resolve(true) : reject(error),
    );
    server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

export interface PortRange {
  from: number;
  to: number;
}

export const DEFAULT_PORT_RANGE: PortRange = { from: 20000, to: 24999 };

/** Parses `from-to` (the agent's `--sglang-router-ports`); null when malformed. */
export function parsePortRange(text: string): PortRange | null {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text);
  if (!match) return null;
  const from = Number(match[1]);
  const to = Number(match[2]);
  if (from < 1 || to > 65535 || to - from < 1) return null;
  return { from, to };
}

export class PortAllocator {
  readonly #range: PortRange;
  readonly #held = new Set<number>();
  #cursor: number;

  constructor(range: PortRange) {
    this.#range = range;
    this.#cursor = range.from;
  }

  /** Two free ports, held until {@link release}; throws when the range has none left. */
  async take(): Promise<[number, number]> {
    const found: number[] = [];
    const size = this.#range.to - this.#range.from + 1;
    for (let step = 0; step < size && found.length < 2; step++) {
      const port = this.#cursor;
      this.#cursor = port >= this.#range.to ? this.#range.from : port + 1;
      if (this.#held.has(port) || (await isPortInUse(port))) continue;
      this.#held.add(port);
      found.push(port);
    }
    if (found.length < 2) {
      this.release(found);
      throw new Error(`no free ports left in ${this.#range.from}-${this.#range.to}`);
    }
    return [found[0]!, found[1]!];
  }

  release(ports: readonly number[]): void {
    for (const port of ports) this.#held.delete(port);
  }
}
