/**
 * @module
 * GCP naming rules. Resource names: `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`. Labels: at most 64, keys
 * and values lower-case letters, digits, `_` and `-`, at most 63 characters, keys starting with a
 * letter. Gateway tags are free text, so they are folded into that alphabet rather than refused.
 */
import { sha256Hex } from "../clouds/rest.ts";

export const GATEWAY_NETWORK_TAG = "gateplane-gateway";
const MAX = 63;

const fold = (text: string) => text.toLowerCase().replace(/[^a-z0-9_-]/g, "_");

export function labels(tags: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(tags)) {
    let key = fold(k);
    if (!/^[a-z]/.test(key)) key = `t_${key}`;
    key = key.slice(0, MAX);
    if (Object.keys(out).length >= 64 && !(key in out)) break;
    out[key] = fold(value).slice(0, MAX);
  }
  return out;
}

/** A valid resource name from free text (`-` for anything else, trimmed to `max`). */
export function resourceName(text: string, max = MAX): string {
  let name = text
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, "-")
    .replace(/-+/g, "-");
  if (!/^[a-z]/.test(name)) name = `gp-${name}`;
  return name.slice(0, max).replace(/-+$/, "");
}

/**
 * The instance name of a replica: its deterministic name plus 8 hex characters of its client
 * token. A replacement replica (new token) never collides with a predecessor still being deleted,
 * and a retried create of the same replica finds its own instance by name.
 */
export async function instanceName(specName: string, clientToken: string): Promise<string> {
  return `${resourceName(specName, MAX - 9)}-${(await sha256Hex(clientToken)).slice(0, 8)}`;
}

export const firewallName = (network: string) => resourceName(`gateplane-gateway-in-${network}`);
