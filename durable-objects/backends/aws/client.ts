/**
 * @module
 * Signed calls to the AWS Query APIs (EC2 `2016-11-15`, ELBv2 `2015-12-01`, STS `2011-06-15`):
 * form-encoded POSTs signed with SigV4 by aws4fetch, XML answers, errors as {@link BackendError}.
 * Throttling, 5xx and network failures are retried here with jittered exponential back-off before
 * the reconciler's own (minutes-long) retry schedule takes over.
 */
import { AwsClient } from "aws4fetch";
import { BackendError } from "../types.ts";
import { awsError, networkError, parseErrorBody } from "./errors.ts";
import { child, parseXml, text, type XmlNode } from "./xml.ts";

const VERSIONS = { ec2: "2016-11-15", elasticloadbalancing: "2015-12-01", sts: "2011-06-15" } as const;
export type AwsService = keyof typeof VERSIONS;
export type QueryParams = Record<string, string | number | boolean | undefined>;

export interface AwsAccess {
  access_key_id: string;
  secret_access_key: string;
  session_token?: string;
  role_arn?: string;
  /** One URL answering every service (LocalStack, a proxy, the tests' fake); AWS's regional endpoints otherwise. */
  endpoint_url?: string;
}

export interface AwsApiOptions {
  access: AwsAccess;
  region: string;
  /** Per attempt, covering the answer's body. */
  timeoutMs: number;
  /** Extra attempts for retryable failures within one call. */
  retries: number;
  retryBaseMs: number;
}

interface Session {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** ms since the epoch; `Infinity` for long-term keys. */
  expiresAt: number;
}

/** Assumed-role sessions per isolate, reused until 5 minutes before they expire. */
const sessions = new Map<string, Session>();
const SESSION_MARGIN_MS = 5 * 60_000;
const SESSION_SECONDS = 3600;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class AwsApi {
  constructor(private readonly options: AwsApiOptions) {}

  get region(): string {
    return this.options.region;
  }

  ec2(action: string, params: QueryParams = {}): Promise<XmlNode> {
    return this.call("ec2", action, params);
  }

  /** ELBv2 answers wrap their payload in `<…Result>`; this returns that element. */
  async elb(action: string, params: QueryParams = {}): Promise<XmlNode> {
    const response = await this.call("elasticloadbalancing", action, params);
    return child(response, `${action}Result`) ?? {};
  }

  endpoint(service: AwsService): string {
    const custom = this.options.access.endpoint_url;
    if (custom) return custom.endsWith("/") ? custom : `${custom}/`;
    return `https://${service}.${this.options.region}.amazonaws.com/`;
  }

  /** Calls `action`, retrying throttling, 5xx, timeouts and unreachable endpoints. */
  async call(service: AwsService, action: string, params: QueryParams): Promise<XmlNode> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once(service, action, params);
      } catch (e) {
        if (!(e instanceof BackendError) || !e.retryable || attempt >= this.options.retries) throw e;
        const cap = Math.min(this.options.retryBaseMs * 2 ** attempt, 5_000);
        await sleep(cap / 2 + (Math.random() * cap) / 2);
      }
    }
  }

  private async once(service: AwsService, action: string, params: QueryParams): Promise<XmlNode> {
    const session = service === "sts" ? this.baseSession() : await this.session();
    const body = new URLSearchParams({ Action: action, Version: VERSIONS[service] });
    for (const [k, v] of Object.entries(params)) if (v !== undefined) body.append(k, String(v));
    const client = new AwsClient({ ...session, service, region: this.options.region, retries: 0 });
    const url = this.endpoint(service);
    const request = await client.sign(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      body: body.toString(),
    });
    let status: number;
    let answer: string;
    try {
      const res = await fetch(request, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      status = res.status;
      answer = await res.text();
    } catch (cause) {
      throw networkError(`${action} at ${new URL(url).host}`, cause);
    }
    if (status < 200 || status >= 300) throw parseErrorBody(status, answer);
    const doc = parseXml(answer);
    const response = child(doc, `${action}Response`);
    if (!response) throw awsError("InvalidResponse", `${action} answered without <${action}Response>`, 502);
    return response;
  }

  private baseSession(): Session {
    const a = this.options.access;
    return {
      accessKeyId: a.access_key_id,
      secretAccessKey: a.secret_access_key,
      ...(a.session_token ? { sessionToken: a.session_token } : {}),
      expiresAt: Number.POSITIVE_INFINITY,
    };
  }

  /** The keys to sign with: the configured ones, or a cached `AssumeRole` session of `role_arn`. */
  private async session(): Promise<Session> {
    const a = this.options.access;
    if (!a.role_arn) return this.baseSession();
    const key = `${this.endpoint("sts")}|${a.access_key_id}|${a.role_arn}`;
    const cached = sessions.get(key);
    if (cached && cached.expiresAt - Date.now() > SESSION_MARGIN_MS) return cached;
    const response = await this.call("sts", "AssumeRole", {
      RoleArn: a.role_arn,
      RoleSessionName: "gateplane",
      DurationSeconds: SESSION_SECONDS,
    });
    const creds = child(child(response, "AssumeRoleResult"), "Credentials");
    const accessKeyId = text(creds, "AccessKeyId");
    const secretAccessKey = text(creds, "SecretAccessKey");
    const expiration = Date.parse(text(creds, "Expiration") ?? "");
    if (!accessKeyId || !secretAccessKey || Number.isNaN(expiration)) {
      throw awsError("InvalidResponse", "AssumeRole answered without credentials", 502);
    }
    const session: Session = {
      accessKeyId,
      secretAccessKey,
      sessionToken: text(creds, "SessionToken") ?? undefined,
      expiresAt: expiration,
    };
    sessions.set(key, session);
    return session;
  }
}

/** `Prefix.1=a&Prefix.2=b` (EC2 uses `Name.N`, ELBv2 `Name.member.N`). */
export function listParams(prefix: string, values: readonly (string | number)[]): QueryParams {
  return Object.fromEntries(values.map((v, i) => [`${prefix}.${i + 1}`, v]));
}

/** EC2 `Filter.N.Name` / `Filter.N.Value.M`. */
export function filterParams(filters: Record<string, readonly string[]>): QueryParams {
  const params: QueryParams = {};
  Object.entries(filters).forEach(([name, values], i) => {
    params[`Filter.${i + 1}.Name`] = name;
    values.forEach((v, j) => {
      params[`Filter.${i + 1}.Value.${j + 1}`] = v;
    });
  });
  return params;
}
