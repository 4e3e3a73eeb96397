/**
 * Checks a request's SigV4 signature the way AWS does, with an independent implementation
 * (`@smithy/signature-v4`, the official SDK's signer): same canonical request from the headers the
 * client says it signed, same scope, keys the fake knows, a clock skew of at most 15 minutes.
 */
import { timingSafeEqual } from "node:crypto";
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import type { FakeKey } from "./sts.ts";
import { AwsFault } from "./wire.ts";

export interface SignedRequest {
  method: string;
  host: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface Verified {
  accessKeyId: string;
  key: FakeKey;
  region: string;
  service: string;
}

const MAX_SKEW_MS = 15 * 60_000;
const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/;

/** Errors as each protocol reports them: EC2 says AuthFailure; ELBv2 and STS name the problem. */
function authError(service: string, kind: "unknown" | "mismatch" | "expired" | "missing", detail = ""): AwsFault {
  if (service === "ec2") {
    if (kind === "expired") return new AwsFault(400, "RequestExpired", `Request has expired. ${detail}`.trim());
    if (kind === "missing")
      return new AwsFault(
        401,
        "AuthFailure",
        "AWS was not able to authenticate the request: access credentials are missing",
      );
    return new AwsFault(401, "AuthFailure", "AWS was not able to validate the provided access credentials");
  }
  if (kind === "unknown")
    return new AwsFault(403, "InvalidClientTokenId", "The security token included in the request is invalid.");
  if (kind === "missing")
    return new AwsFault(403, "MissingAuthenticationToken", "Request is missing Authentication Token");
  if (kind === "expired") return new AwsFault(403, "SignatureDoesNotMatch", `Signature expired: ${detail}`);
  return new AwsFault(
    403,
    "SignatureDoesNotMatch",
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
  );
}

/** The service a request is for, from its credential scope (before the signature is checked). */
export function scopeOf(authorization: string | undefined): { service: string; region: string } | null {
  const m = AUTH.exec(authorization ?? "");
  return m ? { region: m[3]!, service: m[4]! } : null;
}

export async function verifySigV4(req: SignedRequest, keys: Map<string, FakeKey>, now = Date.now()): Promise<Verified> {
  const authorization = String(req.headers.authorization ?? "");
  const m = AUTH.exec(authorization);
  const service = scopeOf(authorization)?.service ?? "ec2";
  if (!m) throw authError(service, "missing");
  const [, accessKeyId, day, region, , signedList, signature] = m as unknown as string[];
  const amzDate = String(req.headers["x-amz-date"] ?? "");
  const dm = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!dm || amzDate.slice(0, 8) !== day) throw authError(service, "mismatch");
  const signingDate = new Date(Date.UTC(+dm[1]!, +dm[2]! - 1, +dm[3]!, +dm[4]!, +dm[5]!, +dm[6]!));
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) {
    throw authError(service, "expired", `${amzDate} is not within 15 minutes of ${new Date(now).toISOString()}`);
  }
  const key = keys.get(accessKeyId!);
  if (!key) throw authError(service, "unknown");
  if (key.expiresAt !== undefined && key.expiresAt < now) {
    throw new AwsFault(
      service === "ec2" ? 401 : 403,
      service === "ec2" ? "AuthFailure" : "ExpiredToken",
      "The security token included in the request is expired",
    );
  }
  const signed = signedList!.split(";");
  if (!signed.includes("host") || !signed.includes("x-amz-date")) throw authError(service, "mismatch");
  if (key.sessionToken && req.headers["x-amz-security-token"] !== key.sessionToken) throw authError(service, "unknown");
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = req.headers[name];
    if (v === undefined) throw authError(service, "mismatch");
    headers[name] = Array.isArray(v) ? v.join(",") : v;
  }
  const query: Record<string, string | string[]> = {};
  for (const k of new Set(req.query.keys())) {
    const all = req.query.getAll(k);
    query[k] = all.length === 1 ? all[0]! : all;
  }
  const signer = new SignatureV4({
    credentials: { accessKeyId: accessKeyId!, secretAccessKey: key.secretAccessKey, sessionToken: key.sessionToken },
    region: region!,
    service,
    sha256: Sha256,
    applyChecksum: false,
  });
  const [hostname, port] = req.host.split(":");
  const expected = await signer.sign(
    {
      method: req.method,
      protocol: "http:",
      hostname: hostname!,
      port: port ? Number(port) : undefined,
      path: req.path,
      query,
      headers,
      body: req.body,
    },
    { signingDate, signingRegion: region, signingService: service, signableHeaders: new Set(signed) },
  );
  const ours = /Signature=([0-9a-f]{64})/.exec(String(expected.headers.authorization))?.[1] ?? "";
  const oursSigned = /SignedHeaders=([^,]+)/.exec(String(expected.headers.authorization))?.[1] ?? "";
  if (
    oursSigned !== signedList ||
    ours.length !== signature!.length ||
    !timingSafeEqual(Buffer.from(ours), Buffer.from(signature!))
  ) {
    throw authError(service, "mismatch");
  }
  return { accessKeyId: accessKeyId!, key, region: region!, service };
}
