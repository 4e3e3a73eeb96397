/**
 * Free loopback ports for servers a test starts in another process or a moment later. Taken below
 * the kernel's ephemeral range (32768 and up here): a port the kernel picks (`listen(0)`) is an
 * ephemeral one, which the thousands of outgoing connections of a run (two runs on one machine, a
 * loaded one) can take between the check and the server's bind ("address already in use"). A
 * server the test binds itself at once listens on port 0 instead.
 */
import { isPortInUse } from "../../local-host/ports.ts";

const FROM = 20_000;
const SPAN = 12_000;

/** `count` distinct ports in 20000–31999 that nothing listens on now. */
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
