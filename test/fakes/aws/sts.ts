/**
 * STS `AssumeRole` of the fake: allowed roles only, temporary keys (`ASIA…` + session token) that
 * the fake then accepts for signatures until they expire.
 */
import { randomBytes } from "node:crypto";
import { ACCOUNT, hex } from "./state.ts";
import { AwsFault, el, leaf, type Params, queryResponse, required, STS_NS } from "./wire.ts";

export interface FakeKey {
  secretAccessKey: string;
  sessionToken?: string;
  expiresAt?: number;
  /** For AssumeRole's "User: … is not authorized" message. */
  principal: string;
}

export function handleSts(
  keys: Map<string, FakeKey>,
  roles: Set<string>,
  caller: FakeKey,
  action: string,
  params: Params,
  sessionSeconds: number,
): string {
  if (action !== "AssumeRole") throw new AwsFault(400, "InvalidAction", `Could not find operation ${action}`);
  const roleArn = required(params, "RoleArn");
  const sessionName = required(params, "RoleSessionName");
  if (!roles.has(roleArn)) {
    throw new AwsFault(
      403,
      "AccessDenied",
      `User: ${caller.principal} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`,
    );
  }
  const duration = Math.min(Number(params.get("DurationSeconds") ?? 3600), sessionSeconds);
  const accessKeyId = `ASIA${hex(16).toUpperCase()}`;
  const key: FakeKey = {
    secretAccessKey: randomBytes(30).toString("base64"),
    sessionToken: randomBytes(96).toString("base64"),
    expiresAt: Date.now() + duration * 1000,
    principal: `arn:aws:sts::${ACCOUNT}:assumed-role/${roleArn.split("/").pop()}/${sessionName}`,
  };
  keys.set(accessKeyId, key);
  return queryResponse(
    STS_NS,
    action,
    el(
      "Credentials",
      leaf("AccessKeyId", accessKeyId),
      leaf("SecretAccessKey", key.secretAccessKey),
      leaf("SessionToken", key.sessionToken),
      leaf("Expiration", new Date(key.expiresAt!).toISOString()),
    ) +
      el(
        "AssumedRoleUser",
        leaf("AssumedRoleId", `AROA${hex(16).toUpperCase()}:${sessionName}`),
        leaf("Arn", key.principal),
      ),
  );
}
