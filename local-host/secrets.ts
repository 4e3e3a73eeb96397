/**
 * @module
 * The control plane's secrets for a local stack, generated on first run and kept in
 * `<dir>/secrets.json` (0600) so tokens, encrypted credentials and agent tokens survive restarts.
 */
import { generateKeyPairSync, randomBytes, randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { calculateJwkThumbprint } from "jose";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { StackError } from "./errors.ts";

export interface StackSecrets {
  ADMIN_TOKEN: string;
  CREDENTIALS_KEY: string;
  /** Private EC P-256 JWK as a JSON string, with `kid` and `alg: "ES256"`. */
  AGENT_SIGNING_KEY: string;
  LOCAL_HOST_DAEMON_TOKEN: string;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

export function randomBase62(length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += BASE62[randomInt(BASE62.length)];
  return out;
}

export const ADMIN_TOKEN_PATTERN = /^gpa_[0-9A-Za-z]{40}$/;

export const generateAdminToken = () => `gpa_${randomBase62(40)}`;

export const generateCredentialsKey = () => randomBytes(32).toString("base64");

export async function generateAgentSigningKey(): Promise<string> {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = privateKey.export({ format: "jwk" });
  const kid = await calculateJwkThumbprint({ kty: jwk.kty!, crv: jwk.crv!, x: jwk.x!, y: jwk.y! });
  return JSON.stringify({ ...jwk, kid, alg: "ES256" });
}

function isSigningKey(value: string): boolean {
  try {
    const jwk = JSON.parse(value) as Record<string, unknown>;
    return jwk.kty === "EC" && jwk.crv === "P-256" && typeof jwk.d === "string" && typeof jwk.kid === "string";
  } catch {
    return false;
  }
}

const VALIDATORS: Record<keyof StackSecrets, (value: string) => boolean> = {
  ADMIN_TOKEN: (s) => ADMIN_TOKEN_PATTERN.test(s),
  CREDENTIALS_KEY: (s) => Buffer.from(s, "base64").length === 32,
  AGENT_SIGNING_KEY: isSigningKey,
  LOCAL_HOST_DAEMON_TOKEN: (s) => s.length >= 32 && /^[0-9A-Za-z_-]+$/.test(s),
};

/**
 * Reads `<dir>/secrets.json`, generating whatever is missing (all of it on first run). A secret that
 * is present but malformed is an error, never silently replaced: replacing CREDENTIALS_KEY would make
 * every stored credential unreadable.
 */
export async function loadOrCreateSecrets(dir: string): Promise<StackSecrets> {
  const file = path.join(dir, "secrets.json");
  let stored: Partial<Record<string, unknown>> = {};
  try {
    stored = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new StackError("secrets", `${file} is unreadable: ${(error as Error).message}`);
    }
  }
  const generators: Record<keyof StackSecrets, () => string | Promise<string>> = {
    ADMIN_TOKEN: generateAdminToken,
    CREDENTIALS_KEY: generateCredentialsKey,
    AGENT_SIGNING_KEY: generateAgentSigningKey,
    LOCAL_HOST_DAEMON_TOKEN: () => randomBytes(32).toString("base64url"),
  };
  const secrets = {} as StackSecrets;
  let changed = false;
  for (const name of Object.keys(generators) as (keyof StackSecrets)[]) {
    const value = stored[name];
    if (value === undefined) {
      secrets[name] = await generators[name]();
      changed = true;
    } else if (typeof value === "string" && VALIDATORS[name](value)) {
      secrets[name] = value;
    } else {
      throw new StackError(
        "secrets",
        `${file}: ${name} is malformed; fix or remove it (removing it generates a new one)`,
      );
    }
  }
  if (changed) await writeFileAtomic(file, `${JSON.stringify(secrets, null, 2)}\n`, 0o600);
  return secrets;
}
