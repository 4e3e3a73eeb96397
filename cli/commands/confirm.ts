/**
 * @module
 * dstack's confirmation: `-y` skips the question; "no" prints `Exiting...` and changes nothing.
 */
import type { Context } from "../context.ts";

export async function confirmed(ctx: Context, yes: boolean, question: string): Promise<boolean> {
  if (yes || (await ctx.confirm(question))) return true;
  ctx.print();
  ctx.print("Exiting...");
  return false;
}
