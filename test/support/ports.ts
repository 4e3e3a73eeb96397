/**
 * Free loopback ports for servers a test starts in another process or a moment later. Taken below
 * the kernel's ephemeral range (32768 and up here): a port the kernel picks (`listen(0)`) is an
 * ephemeral one, which the thousands of outgoing connections of a run (two runs on one machine, a
 * loaded one) can take between the check and the server's bind ("address already in use"). And
 * above the agents' SGLang router ports (20000–24999 by default, `agent/sglang/ports.ts`), which
 * the agents of other tests take from the bottom up meanwhile. A server that binds port 0 itself
 * (a proxy whose port a test reads after it started) needs none of this.
 */
import { isPortInUse } from "../../local-host/ports.ts";

const FROM = 25_000;
const SPAN = 7_000;

/** `count` distinct ports in 25000–31999 that nothing listens on now. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count; attempt++) {
    if (attempt >= 200 * count) throw new Error(`no ${count} free ports in ${FROM}-${FROM + SPAN - 1}`);
    const port = FROM + Math.floor(Math.random() * SPAN);
    if (!ports.has(port) && !(await isPortInUse(port))) ports.add(port);
  }
  return [...ports];
}

/** One port of {@link freePorts}. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * A block of 100 ports for the SGLang routers of an agent a test starts (`sglang.ports`): one of the
 * blocks 20100–24999 of the agents' default range, apart from {@link freePorts}' range. Not the
 * first block: agents started on the default range (the `npm start` stacks') take ports from 20000
 * up. Agents probe a port before a router takes it, so a block two tests share only moves a router
 * to the next free port; a test of the allocator itself needs its few ports free.
 */
export function routerPorts(): { from: number; to: number } {
  const from = 20_100 + Math.floor(Math.random() * 49) * 100;
  return { from, to: from + 99 };
}
