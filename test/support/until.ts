/**
 * Polling for tests: waits until a check (sync or async) returns something truthy and returns it.
 * A check that throws counts as "not yet"; its last error is in the timeout's message.
 */
type NotYet = null | undefined | false | 0 | "";
/** A condition: its value when met, something falsy (or a throw) while not. */
export type Check<T> = () => T | NotYet | Promise<T | NotYet>;

export async function until<T>(what: string, check: Check<T>, timeoutMs = 20_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(
    `timed out waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ""}`,
  );
}
