/**
 * @module
 * The host's bootstrap document: the user-data JSON the control plane wrote at provisioning time.
 */
import { readFile } from "node:fs/promises";
import * as v from "valibot";
import { AgentBootstrap } from "../schema/agent.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";

/** The user-data is missing or not a bootstrap document; the agent cannot do anything useful. */
export class BootstrapError extends Error {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`user-data ${file}: ${message}`, options);
    this.name = "BootstrapError";
    this.file = file;
  }
}

export async function readBootstrap(file: string): Promise<AgentBootstrap> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new BootstrapError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`, {
      cause: error,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new BootstrapError(file, "is not valid JSON", { cause: error });
  }
  const result = v.safeParse(AgentBootstrap, json);
  if (!result.success) {
    throw new BootstrapError(file, fromValibot(result.issues).map(formatIssue).join("; "));
  }
  return result.output;
}
