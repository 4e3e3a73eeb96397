/**
 * A fake Kubernetes API server for tests, with the semantics the backend relies on: bearer-token
 * authentication (401 Unauthorized Status otherwise), namespaces, and create/get/list/delete of
 * Secrets, Deployments (apps/v1) and Services, with uids, a cluster-wide resourceVersion,
 * 409 AlreadyExists / 404 NotFound / 422 Invalid `metav1.Status` bodies, DNS-1123 name checks and
 * the Deployment selector-matches-template check. LoadBalancer Services get
 * `status.loadBalancer.ingress` after a few reads (an IP, a DNS name, or never, by `lb_mode`);
 * Deployments become available on their second read. `POST /__control` injects faults,
 * `GET /__state` lists every object.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";

export interface KubeFaults {
  throttle: number;
  fail: number;
  delay_calls: number;
  delay_ms: number;
  /** How LoadBalancer Services get their address: `ip`, `hostname` (a DNS name), or `none` (never). */
  lb_mode: "ip" | "hostname" | "none";
  /** Reads of a Service before its address appears. */
  lb_reads: number;
}

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  status?: any;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  type?: string;
  reads?: number;
};

export interface FakeKube {
  url: string;
  token: string;
  faults: KubeFaults;
  objects(kind?: string): Obj[];
  stop(): Promise<void>;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

const KINDS: Record<string, { group: string; kind: string; apiVersion: string; nameRule: RegExp }> = {
  secrets: { group: "/api/v1", kind: "Secret", apiVersion: "v1", nameRule: DNS1123_SUBDOMAIN },
  services: { group: "/api/v1", kind: "Service", apiVersion: "v1", nameRule: DNS1123_LABEL },
  deployments: { group: "/apis/apps/v1", kind: "Deployment", apiVersion: "apps/v1", nameRule: DNS1123_SUBDOMAIN },
};

/** `tls`: serve https with this key and certificate (a private CA, as most clusters have). */
export async function startFakeKube(
  options: { port?: number; namespaces?: string[]; tls?: { key: string; cert: string } } = {},
): Promise<FakeKube> {
  const token = `fake-sa-token-${randomBytes(16).toString("hex")}`;
  const namespaces = new Set(["default", "kube-system", ...(options.namespaces ?? [])]);
  const store = new Map<string, Obj>();
  let resourceVersion = 1000;
  let lbCounter = 0;
  const faults: KubeFaults = { throttle: 0, fail: 0, delay_calls: 0, delay_ms: 0, lb_mode: "ip", lb_reads: 1 };

  const send = (res: ServerResponse, code: number, body: unknown) =>
    res.writeHead(code, { "content-type": "application/json" }).end(JSON.stringify(body));
  const status = (res: ServerResponse, code: number, reason: string, message: string, details?: unknown) =>
    send(res, code, {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message,
      reason,
      ...(details ? { details } : {}),
      code,
    });
  const view = ({ reads: _r, stringData: _s, ...o }: Obj) => o;

  function read(o: Obj): Obj {
    o.reads = (o.reads ?? 0) + 1;
    if (o.kind === "Deployment" && o.reads >= 2 && !o.status?.availableReplicas) {
      o.status = { replicas: 1, readyReplicas: 1, availableReplicas: 1, observedGeneration: 1 };
      o.metadata.resourceVersion = String(++resourceVersion);
    }
    if (
      o.kind === "Service" &&
      o.spec?.type === "LoadBalancer" &&
      faults.lb_mode !== "none" &&
      o.reads >= faults.lb_reads
    ) {
      if (!o.status?.loadBalancer?.ingress) {
        lbCounter++;
        const ingress =
          faults.lb_mode === "ip"
            ? { ip: `203.0.113.${lbCounter}`, ipMode: "VIP" }
            : { hostname: `a${randomBytes(8).toString("hex")}-${lbCounter}.eu-west-1.elb.amazonaws.com` };
        o.status = { loadBalancer: { ingress: [ingress] } };
        o.metadata.resourceVersion = String(++resourceVersion);
      }
    }
    return o;
  }

  function validate(kind: string, o: Obj): string | null {
    if (kind === "deployments") {
      const sel = o.spec?.selector?.matchLabels ?? {};
      const tmpl = o.spec?.template?.metadata?.labels ?? {};
      if (Object.keys(sel).length === 0) return "spec.selector: Required value";
      if (!Object.entries(sel).every(([k, v]) => tmpl[k] === v)) {
        return "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`";
      }
      if (!o.spec?.template?.spec?.containers?.length) return "spec.template.spec.containers: Required value";
    }
    if (kind === "services") {
      const ports = o.spec?.ports ?? [];
      if (ports.length === 0) return "spec.ports: Required value";
      if (ports.some((p: { port?: number }) => !Number.isInteger(p.port) || p.port! < 1 || p.port! > 65535)) {
        return "spec.ports[0].port: Invalid value: must be between 1 and 65535, inclusive";
      }
    }
    for (const [k, v] of Object.entries(o.metadata.labels ?? {})) {
      if (!/^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(k))
        return `metadata.labels: Invalid value: "${k}"`;
      if (typeof v !== "string" || !/^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/.test(v)) {
        return `metadata.labels: Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`;
      }
    }
    return null;
  }

  async function handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Obj | null) {
    if (req.headers.authorization !== `Bearer ${token}`) return status(res, 401, "Unauthorized", "Unauthorized");
    if (faults.delay_calls > 0) {
      faults.delay_calls--;
      await new Promise((r) => setTimeout(r, faults.delay_ms));
    }
    if (faults.throttle > 0) {
      faults.throttle--;
      res.setHeader("retry-after", "1");
      return status(res, 429, "TooManyRequests", "Too many requests, please try again later.");
    }
    if (faults.fail > 0) {
      faults.fail--;
      return status(res, 500, "InternalError", "Internal error occurred: etcdserver: request timed out");
    }
    const m = /^(\/api\/v1|\/apis\/apps\/v1)\/namespaces\/([^/]+)(?:\/([a-z]+)(?:\/([^/]+))?)?$/.exec(url.pathname);
    if (!m) return status(res, 404, "NotFound", "the server could not find the requested resource");
    const [, group, ns, plural, name] = m;
    if (!plural) {
      if (req.method !== "GET" || group !== "/api/v1") return status(res, 405, "MethodNotAllowed", "not allowed");
      if (!namespaces.has(ns!))
        return status(res, 404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
      return send(res, 200, {
        apiVersion: "v1",
        kind: "Namespace",
        metadata: { name: ns },
        status: { phase: "Active" },
      });
    }
    const kind = KINDS[plural];
    if (!kind || kind.group !== group)
      return status(res, 404, "NotFound", "the server could not find the requested resource");
    if (!namespaces.has(ns!))
      return status(res, 404, "NotFound", `namespaces "${ns}" not found`, { name: ns, kind: "namespaces" });
    const key = (n: string) => `${plural}/${ns}/${n}`;
    const group0 = plural === "deployments" ? "apps" : "";

    if (req.method === "POST" && !name) {
      if (!body?.metadata?.name)
        return status(
          res,
          422,
          "Invalid",
          `${kind.kind} "" is invalid: metadata.name: Required value: name or generateName is required`,
        );
      const n = body.metadata.name;
      if (!kind.nameRule.test(n))
        return status(
          res,
          422,
          "Invalid",
          `${kind.kind} "${n}" is invalid: metadata.name: Invalid value: "${n}": a lowercase RFC 1123 name`,
        );
      if (body.kind && body.kind !== kind.kind)
        return status(
          res,
          400,
          "BadRequest",
          `the API version in the data (${body.apiVersion}) does not match the expected API version (${kind.apiVersion})`,
        );
      const problem = validate(plural, body);
      if (problem) return status(res, 422, "Invalid", `${kind.kind} "${n}" is invalid: ${problem}`);
      if (store.has(key(n))) {
        return status(res, 409, "AlreadyExists", `${plural}${group0 ? `.${group0}` : ""} "${n}" already exists`, {
          name: n,
          group: group0,
          kind: plural,
        });
      }
      const obj: Obj = {
        ...body,
        apiVersion: kind.apiVersion,
        kind: kind.kind,
        metadata: {
          ...body.metadata,
          namespace: ns,
          uid: randomUUID(),
          resourceVersion: String(++resourceVersion),
          generation: 1,
          creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
      };
      if (plural === "secrets" && body.stringData) {
        obj.data = {
          ...(body.data ?? {}),
          ...Object.fromEntries(
            Object.entries(body.stringData).map(([k, v]) => [k, Buffer.from(v).toString("base64")]),
          ),
        };
        delete obj.stringData;
      }
      if (plural === "services") {
        obj.spec = {
          ...obj.spec,
          clusterIP: `10.96.0.${(resourceVersion % 250) + 2}`,
          ports: obj.spec.ports.map((p: object, i: number) => ({
            nodePort: 30000 + ((resourceVersion + i) % 2000),
            ...p,
          })),
        };
        obj.status = { loadBalancer: {} };
      }
      store.set(key(n), obj);
      return send(res, 201, view(obj));
    }
    if (req.method === "GET" && !name) {
      const selector = url.searchParams.get("labelSelector");
      const wanted = selector ? selector.split(",").map((p) => p.split("=")) : [];
      const items = [...store.entries()]
        .filter(([k]) => k.startsWith(`${plural}/${ns}/`))
        .map(([, o]) => o)
        .filter((o) => wanted.every(([k, v]) => o.metadata.labels?.[k!] === v))
        .map((o) => view(read(o)));
      return send(res, 200, {
        apiVersion: kind.apiVersion,
        kind: `${kind.kind}List`,
        metadata: { resourceVersion: String(resourceVersion) },
        items,
      });
    }
    const obj = name ? store.get(key(name)) : undefined;
    if (!obj) {
      return status(res, 404, "NotFound", `${plural}${group0 ? `.${group0}` : ""} "${name}" not found`, {
        name,
        group: group0,
        kind: plural,
      });
    }
    if (req.method === "GET") return send(res, 200, view(read(obj)));
    if (req.method === "DELETE") {
      store.delete(key(name!));
      return send(res, 200, {
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Success",
        details: { name, group: group0, kind: plural, uid: obj.metadata.uid },
      });
    }
    return status(res, 405, "MethodNotAllowed", `the server does not allow this method on the requested resource`);
  }

  const handler: RequestListener = (req, res) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://fake");
      if (url.pathname === "/__control") {
        if (req.method === "POST") Object.assign(faults, JSON.parse(raw || "{}"));
        return send(res, 200, faults);
      }
      if (url.pathname === "/__state") return send(res, 200, { token, objects: [...store.values()].map(view) });
      let body: Obj | null = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return status(res, 400, "BadRequest", "the body of the request was in an unknown format");
      }
      handle(req, res, url, body).catch((e) => status(res, 500, "InternalError", String(e)));
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    url: `${options.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token,
    faults,
    objects: (kind) => [...store.values()].filter((o) => !kind || o.kind === kind).map(view),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
