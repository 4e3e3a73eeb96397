/**
 * @module
 * The env file `wrangler dev --env-file` reads: the stack's secrets and URLs as the Worker's bindings.
 */
import { writeFileAtomic } from "../lib/atomic-file.ts";

/**
 * Values are single-quoted so dotenv keeps JSON (the signing key) verbatim. wrangler also expands
 * `$NAME` even inside quotes, and a quote or newline would end the value: such values are refused.
 */
export function renderDevVars(vars: Record<string, string>): string {
  const lines = Object.entries(vars).map(([name, value]) => {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`invalid variable name ${name}`);
    if (/['\n\r$\\]/.test(value)) throw new Error(`${name}: value cannot be written to an env file`);
    return `${name}='${value}'`;
  });
  return `# Written by \`npm start\` on every start; edit secrets.json instead.\n${lines.join("\n")}\n`;
}

export async function writeDevVars(file: string, vars: Record<string, string>): Promise<void> {
  await writeFileAtomic(file, renderDevVars(vars), 0o600);
}
