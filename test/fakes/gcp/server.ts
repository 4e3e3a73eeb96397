/**
 * A fake Compute Engine v1 + Google OAuth2 token endpoint for tests. It checks what Google checks:
 * the JWT-bearer assertion's RS256 signature against the service account's public key (with
 * node:crypto, independently of the jose code that signs it), its issuer, audience, scope and
 * lifetime; then the bearer token it issued on every Compute call. It keeps firewalls, instances
 * and operations as state, honours `requestId` like Compute (same id → same operation), answers
 * 409 alreadyExists / 404 notFound in Google's error envelope, and injects faults on request
 * through `POST /__control`. `GET /__state` shows everything for "no duplicate, no orphan" checks;
 * `GET /__key` hands tests the service-account key file.
 */
import { createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, verify } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface GcpFaults {
  /** Next N Compute calls answer 429 rateLimitExceeded. */
  throttle: number;
  /** Next N Compute calls answer 503. */
  fail: number;
  /** Next N Compute calls are held `delay_ms` before being handled (past the client's timeout). */
  delay_calls: number;
  delay_ms: number;
  /** Next N instance inserts (replays of a request id too) are carried out but their answer is lost. */
  drop_inserts: number;
  /** How many polls an operation stays RUNNING before DONE. */
  operation_polls: number;
  /** The next instance insert operation ends with this error code (e.g. QUOTA_EXCEEDED). */
  fail_insert_with: string;
}

interface FakeOperation {
  kind: "compute#operation";
  id: string;
  name: string;
  operationType: string;
  targetLink: string;
  status: "PENDING" | "RUNNING" | "DONE";
  zone?: string;
  selfLink: string;
  error?: { errors: { code: string; message: string }[] };
  polls: number;
}

export interface FakeInstance {
  kind: "compute#instance";
  id: string;
  name: string;
  zone: string;
  machineType: string;
  status: string;
  labels: Record<string, string>;
  tags: { items: string[] };
  metadata: { items: { key: string; value: string }[] };
  networkInterfaces: {
    network: string;
    networkIP: string;
    accessConfigs?: { type: string; name: string; natIP: string }[];
  }[];
  disks: unknown[];
  creationTimestamp: string;
  selfLink: string;
}

export interface FakeGcp {
  url: string;
  tokenUri: string;
  projectId: string;
  /** A service-account key file, as the console downloads it. */
  serviceAccountKey: Record<string, string>;
  state(): { instances: FakeInstance[]; firewalls: Record<string, unknown>[]; inserts: number; deletes: string[] };
  faults: GcpFaults;
  /** Invalidates every access token issued so far. */
  revokeTokens(): void;
  stop(): Promise<void>;
}

const REGIONS: Record<string, string[]> = {
  "us-central1": ["us-central1-c", "us-central1-a", "us-central1-b", "us-central1-f"],
  "europe-west4": ["europe-west4-a", "europe-west4-b", "europe-west4-c"],
};
const MACHINE_TYPES = new Set(["e2-micro", "e2-small", "e2-medium", "e2-standard-2", "n2-standard-2"]);
const IMAGE = /^projects\/ubuntu-os-cloud\/global\/images\/(family\/)?ubuntu-[a-z0-9-]+$/;
const NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_KEY = /^[a-z][a-z0-9_-]{0,62}$/;
const LABEL_VALUE = /^[a-z0-9_-]{0,63}$/;
const SCOPE = "https://www.googleapis.com/auth/compute";

const b64url = (s: string) => Buffer.from(s, "base64url");

export async function startFakeGcp(options: { port?: number; projectId?: string } = {}): Promise<FakeGcp> {
  const projectId = options.projectId ?? "gateplane-test";
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const clientEmail = `gateplane@${projectId}.iam.gserviceaccount.com`;
  const keyId = randomBytes(20).toString("hex");
  const accounts = new Map<string, KeyObject>([
    [clientEmail, createPublicKey(publicKey.export({ format: "pem", type: "spki" }))],
  ]);
  const tokens = new Map<string, number>();
  const firewalls = new Map<string, Record<string, unknown>>();
  const instances = new Map<string, FakeInstance>();
  const operations = new Map<string, FakeOperation>();
  const requestIds = new Map<string, FakeOperation>();
  const deletes: string[] = [];
  let inserts = 0;
  /** Calls being held by `delay_calls` right now: 0 again once a late call has been carried out. */
  let held = 0;
  let counter = 0;
  const faults: GcpFaults = {
    throttle: 0,
    fail: 0,
    delay_calls: 0,
    delay_ms: 0,
    drop_inserts: 0,
    operation_polls: 1,
    fail_insert_with: "",
  };
  let base = "";

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8" }).end(JSON.stringify(body));
  };
  const googleError = (res: ServerResponse, code: number, status: string, reason: string, message: string) =>
    send(res, code, { error: { code, message, errors: [{ message, domain: "global", reason }], status } });

  /** Google accepts its canonical token URL as audience, and the key's own token_uri (here, this fake's). */
  function verifyAssertion(assertion: string): string | null {
    const parts = assertion.split(".");
    if (parts.length !== 3) return "Invalid JWT: Token must be a short-lived token and in a reasonable timeframe";
    let header: { alg?: string };
    let claims: { iss?: string; aud?: string; scope?: string; iat?: number; exp?: number };
    try {
      header = JSON.parse(b64url(parts[0]!).toString());
      claims = JSON.parse(b64url(parts[1]!).toString());
    } catch {
      return "Invalid JWT: malformed";
    }
    if (header.alg !== "RS256") return "Invalid JWT: alg must be RS256";
    const key = claims.iss ? accounts.get(claims.iss) : undefined;
    if (!key) return "Invalid JWT Signature.";
    const ok = verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), key, b64url(parts[2]!));
    if (!ok) return "Invalid JWT Signature.";
    if (claims.aud !== `${base}/token` && claims.aud !== "https://oauth2.googleapis.com/token") {
      return "Invalid JWT: audience is not a Google token endpoint";
    }
    const now = Math.floor(Date.now() / 1000);
    if (!claims.iat || !claims.exp || claims.exp - claims.iat > 3600 || claims.exp < now || claims.iat > now + 300) {
      return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.";
    }
    if (!claims.scope?.split(" ").includes(SCOPE)) return "Invalid JWT: missing the compute scope";
    return null;
  }

  function newOperation(type: string, target: string, zone?: string, requestId?: string | null): FakeOperation {
    const name = `operation-${Date.now()}-${(counter++).toString(16)}`;
    const where = zone ? `zones/${zone}` : "global";
    const op: FakeOperation = {
      kind: "compute#operation",
      id: String(1e15 + counter),
      name,
      operationType: type,
      targetLink: target,
      status: "RUNNING",
      ...(zone ? { zone: `${base}/compute/v1/projects/${projectId}/zones/${zone}` } : {}),
      selfLink: `${base}/compute/v1/projects/${projectId}/${where}/operations/${name}`,
      polls: 0,
    };
    operations.set(name, op);
    if (requestId) requestIds.set(requestId, op);
    return op;
  }
  const view = ({ polls: _p, ...op }: FakeOperation) => op;

  async function compute(req: IncomingMessage, res: ServerResponse, url: URL, body: unknown) {
    const auth = req.headers.authorization ?? "";
    const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
    const exp = tokens.get(token);
    if (!exp || exp < Date.now()) {
      return googleError(
        res,
        401,
        "UNAUTHENTICATED",
        "authError",
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
      );
    }
    if (faults.delay_calls > 0) {
      faults.delay_calls--;
      held++;
      await new Promise((r) => setTimeout(r, faults.delay_ms));
      held--;
    }
    if (faults.throttle > 0) {
      faults.throttle--;
      return googleError(
        res,
        429,
        "RESOURCE_EXHAUSTED",
        "rateLimitExceeded",
        "Quota exceeded for quota metric 'Queries'.",
      );
    }
    if (faults.fail > 0) {
      faults.fail--;
      return googleError(res, 503, "UNAVAILABLE", "backendError", "The service is currently unavailable.");
    }
    const prefix = `/compute/v1/projects/${projectId}/`;
    if (!url.pathname.startsWith(prefix)) {
      return googleError(
        res,
        403,
        "PERMISSION_DENIED",
        "forbidden",
        `Required 'compute.projects.get' permission for '${url.pathname}'`,
      );
    }
    const path = url.pathname.slice(prefix.length).split("/");
    const requestId = url.searchParams.get("requestId");
    const m = req.method;
    const self = (p: string) => `${base}${prefix}${p}`;

    if (m === "GET" && path[0] === "regions" && path.length === 2) {
      const zones = REGIONS[path[1]!];
      if (!zones)
        return googleError(
          res,
          404,
          "NOT_FOUND",
          "notFound",
          `The resource 'projects/${projectId}/regions/${path[1]}' was not found`,
        );
      return send(res, 200, {
        kind: "compute#region",
        name: path[1],
        status: "UP",
        zones: zones.map((z) => self(`zones/${z}`)),
      });
    }
    if (path[0] === "global" && path[1] === "firewalls") {
      if (m === "GET" && path.length === 3) {
        const fw = firewalls.get(path[2]!);
        return fw
          ? send(res, 200, fw)
          : googleError(
              res,
              404,
              "NOT_FOUND",
              "notFound",
              `The resource 'projects/${projectId}/global/firewalls/${path[2]}' was not found`,
            );
      }
      if (m === "POST" && path.length === 2) {
        if (requestId && requestIds.has(requestId)) return send(res, 200, view(requestIds.get(requestId)!));
        const fw = body as { name?: string; allowed?: unknown; network?: string };
        if (!fw?.name || !NAME.test(fw.name))
          return googleError(res, 400, "INVALID_ARGUMENT", "invalid", "Invalid value for field 'resource.name'");
        if (!fw.network || !fw.allowed)
          return googleError(
            res,
            400,
            "INVALID_ARGUMENT",
            "required",
            "Required field 'resource.allowed' not specified",
          );
        if (firewalls.has(fw.name))
          return googleError(
            res,
            409,
            "ALREADY_EXISTS",
            "alreadyExists",
            `The resource 'projects/${projectId}/global/firewalls/${fw.name}' already exists`,
          );
        firewalls.set(fw.name, { kind: "compute#firewall", ...fw, selfLink: self(`global/firewalls/${fw.name}`) });
        return send(res, 200, view(newOperation("insert", self(`global/firewalls/${fw.name}`), undefined, requestId)));
      }
    }
    if (m === "GET" && (path[0] === "global" || path[0] === "zones") && path.at(-2) === "operations") {
      const op = operations.get(path.at(-1)!);
      if (!op)
        return googleError(res, 404, "NOT_FOUND", "notFound", `The resource 'operations/${path.at(-1)}' was not found`);
      op.polls++;
      if (op.status !== "DONE" && op.polls >= faults.operation_polls) op.status = "DONE";
      return send(res, 200, view(op));
    }
    if (path[0] === "zones" && path[2] === "instances") {
      const zone = path[1]!;
      if (!Object.values(REGIONS).some((z) => z.includes(zone))) {
        return googleError(
          res,
          404,
          "NOT_FOUND",
          "notFound",
          `The resource 'projects/${projectId}/zones/${zone}' was not found`,
        );
      }
      const key = (name: string) => `${zone}/${name}`;
      if (m === "GET" && path.length === 4) {
        const inst = instances.get(key(path[3]!));
        if (!inst)
          return googleError(
            res,
            404,
            "NOT_FOUND",
            "notFound",
            `The resource 'projects/${projectId}/zones/${zone}/instances/${path[3]}' was not found`,
          );
        // Boots on the next look once its insert is done.
        if (inst.status === "STAGING") inst.status = "RUNNING";
        if (inst.status === "PROVISIONING") inst.status = "STAGING";
        return send(res, 200, inst);
      }
      if (m === "GET" && path.length === 3) {
        return send(res, 200, {
          kind: "compute#instanceList",
          items: [...instances.values()].filter((i) => i.zone.endsWith(`/${zone}`)),
        });
      }
      if (m === "DELETE" && path.length === 4) {
        if (requestId && requestIds.has(requestId)) return send(res, 200, view(requestIds.get(requestId)!));
        const inst = instances.get(key(path[3]!));
        if (!inst)
          return googleError(
            res,
            404,
            "NOT_FOUND",
            "notFound",
            `The resource 'projects/${projectId}/zones/${zone}/instances/${path[3]}' was not found`,
          );
        instances.delete(key(path[3]!));
        deletes.push(key(path[3]!));
        return send(res, 200, view(newOperation("delete", inst.selfLink, zone, requestId)));
      }
      if (m === "POST" && path.length === 3) {
        const answer = (op: FakeOperation) => {
          if (faults.drop_inserts > 0) {
            faults.drop_inserts--;
            req.socket.destroy();
            return;
          }
          send(res, 200, view(op));
        };
        if (requestId && requestIds.has(requestId)) return answer(requestIds.get(requestId)!);
        const spec = body as Omit<Partial<FakeInstance>, "disks" | "networkInterfaces"> & {
          disks?: { boot?: boolean; initializeParams?: { sourceImage?: string } }[] | undefined;
          networkInterfaces?: { network?: string; accessConfigs?: { type?: string; name?: string }[] }[];
        };
        const bad = (field: string, why: string) =>
          googleError(res, 400, "INVALID_ARGUMENT", "invalid", `Invalid value for field 'resource.${field}': ${why}`);
        if (!spec?.name || !NAME.test(spec.name))
          return bad("name", `'${spec?.name}'. Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'`);
        const mt = /^zones\/([a-z0-9-]+)\/machineTypes\/([a-z0-9-]+)$/.exec(spec.machineType ?? "");
        if (!mt || mt[1] !== zone || !MACHINE_TYPES.has(mt[2]!))
          return bad("machineType", `'${spec.machineType}'. Machine type does not exist in zone ${zone}.`);
        const image = spec.disks?.find((d) => d.boot)?.initializeParams?.sourceImage ?? "";
        if (!IMAGE.test(image))
          return bad(
            "disks[0].initializeParams.sourceImage",
            `'${image}'. The referenced image resource cannot be found.`,
          );
        for (const [k, val] of Object.entries(spec.labels ?? {})) {
          if (!LABEL_KEY.test(k) || !LABEL_VALUE.test(val))
            return bad("labels", `Label key/value '${k}'='${val}' violates format constraints.`);
        }
        if (Object.keys(spec.labels ?? {}).length > 64) return bad("labels", "At most 64 labels.");
        const nics = spec.networkInterfaces ?? [];
        if (nics.length !== 1 || !nics[0]!.network)
          return bad("networkInterfaces", "exactly one interface with a network");
        const userData = spec.metadata?.items?.find((i) => i.key === "user-data")?.value ?? "";
        if (userData.length > 256 * 1024) return bad("metadata", "Metadata value for key 'user-data' exceeds 256 KB.");
        if (instances.has(key(spec.name))) {
          return googleError(
            res,
            409,
            "ALREADY_EXISTS",
            "alreadyExists",
            `The resource 'projects/${projectId}/zones/${zone}/instances/${spec.name}' already exists`,
          );
        }
        inserts++;
        const n = instances.size + deletes.length + 2;
        const inst: FakeInstance = {
          kind: "compute#instance",
          id: String(7e15 + counter),
          name: spec.name,
          zone: self(`zones/${zone}`),
          machineType: self(spec.machineType!),
          status: "PROVISIONING",
          labels: spec.labels ?? {},
          tags: spec.tags ?? { items: [] },
          metadata: spec.metadata ?? { items: [] },
          networkInterfaces: [
            {
              network: self(nics[0]!.network!),
              networkIP: `10.128.0.${n}`,
              ...(nics[0]!.accessConfigs?.length
                ? { accessConfigs: [{ type: "ONE_TO_ONE_NAT", name: "External NAT", natIP: `34.70.0.${n}` }] }
                : {}),
            },
          ],
          disks: spec.disks ?? [],
          creationTimestamp: new Date().toISOString(),
          selfLink: self(`zones/${zone}/instances/${spec.name}`),
        };
        const op = newOperation("insert", inst.selfLink, zone, requestId);
        if (faults.fail_insert_with) {
          op.error = { errors: [{ code: faults.fail_insert_with, message: `injected: ${faults.fail_insert_with}` }] };
          op.status = "DONE";
          faults.fail_insert_with = "";
        } else {
          instances.set(key(spec.name), inst);
        }
        return answer(op);
      }
    }
    return googleError(
      res,
      404,
      "NOT_FOUND",
      "notFound",
      `The requested URL ${url.pathname} was not found on this server.`,
    );
  }

  const server: Server = createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", base);
      if (url.pathname === "/__control") {
        const { revoke_tokens, ...rest } = JSON.parse(raw || "{}") as Partial<GcpFaults> & { revoke_tokens?: boolean };
        // Revokes every issued access token, as a key rotation or an admin would.
        if (revoke_tokens) tokens.clear();
        if (req.method === "POST") Object.assign(faults, rest);
        return send(res, 200, faults);
      }
      if (url.pathname === "/__key") return send(res, 200, serviceAccountKey);
      if (url.pathname === "/__state") {
        return send(res, 200, {
          instances: [...instances.values()],
          firewalls: [...firewalls.values()],
          inserts,
          deletes,
          held,
        });
      }
      if (url.pathname === "/token" && req.method === "POST") {
        const form = new URLSearchParams(raw);
        if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") {
          return send(res, 400, { error: "unsupported_grant_type", error_description: "Invalid grant_type" });
        }
        const problem = verifyAssertion(form.get("assertion") ?? "");
        if (problem) return send(res, 400, { error: "invalid_grant", error_description: problem });
        const token = `ya29.fake-${randomBytes(24).toString("base64url")}`;
        tokens.set(token, Date.now() + 3600_000);
        return send(res, 200, { access_token: token, expires_in: 3599, token_type: "Bearer" });
      }
      let body: unknown = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return googleError(res, 400, "INVALID_ARGUMENT", "parseError", "Invalid JSON payload received.");
      }
      compute(req, res, url, body).catch((e) => googleError(res, 500, "INTERNAL", "backendError", String(e)));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const serviceAccountKey = {
    type: "service_account",
    project_id: projectId,
    private_key_id: keyId,
    private_key: privateKey.export({ format: "pem", type: "pkcs8" }) as string,
    client_email: clientEmail,
    client_id: "100000000000000000001",
    token_uri: `${base}/token`,
  };
  return {
    url: base,
    tokenUri: `${base}/token`,
    projectId,
    serviceAccountKey,
    state: () => ({ instances: [...instances.values()], firewalls: [...firewalls.values()], inserts, deletes }),
    faults,
    revokeTokens: () => tokens.clear(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
