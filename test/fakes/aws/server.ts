/**
 * A fake of the AWS endpoints Gateplane calls (EC2, ELBv2, STS on one URL, like LocalStack): SigV4
 * checked on every call, resources kept as state, answers in the real XML, and faults on demand.
 *
 * Control endpoints (unsigned, under `/__fake/`): `GET state`, `POST faults` (append
 * `{faults: [{kind, action?, count}]}`; kinds `throttle`, `error500`, `hang` (never answers, does
 * nothing), `drop` (does the action, then cuts the connection)), `POST config`
 * `{describes_to_running}`, `POST vpcs` `{region, subnets: [{az, public}]}`, `POST certificates`
 * `{arn}`, `POST keys` `{access_key_id, secret_access_key}`, `POST roles` `{arn}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { handleEc2 } from "./ec2.ts";
import { handleElb } from "./elb.ts";
import { scopeOf, verifySigV4 } from "./sigv4.ts";
import { FakeAwsState } from "./state.ts";
import { type FakeKey, handleSts } from "./sts.ts";
import { AwsFault, EC2_NS, ELB_NS, errorBody, STS_NS } from "./wire.ts";

export interface FaultRule {
  kind: "throttle" | "error500" | "hang" | "drop";
  /** Only this action (any when absent). */
  action?: string;
  count: number;
}

export interface CallRecord {
  service: string;
  action: string;
  region: string;
  status: number | "hung" | "dropped";
  at: number;
}

export interface FakeAwsOptions {
  keys?: Record<string, string>;
  roles?: string[];
  describesToRunning?: number;
  port?: number;
}

const SERVICES: Record<string, { version: string; protocol: "ec2" | "query"; ns: string }> = {
  ec2: { version: "2016-11-15", protocol: "ec2", ns: EC2_NS },
  elasticloadbalancing: { version: "2015-12-01", protocol: "query", ns: ELB_NS },
  sts: { version: "2011-06-15", protocol: "query", ns: STS_NS },
};

export interface FakeAws {
  url: string;
  state: FakeAwsState;
  faults: FaultRule[];
  calls: CallRecord[];
  keys: Map<string, FakeKey>;
  roles: Set<string>;
  options: { describesToRunning: number };
  close(): Promise<void>;
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });

export async function startFakeAws(options: FakeAwsOptions = {}): Promise<FakeAws> {
  const state = new FakeAwsState();
  const keys = new Map<string, FakeKey>(
    Object.entries(options.keys ?? {}).map(([id, secret]) => [
      id,
      { secretAccessKey: secret, principal: `arn:aws:iam::123456789012:user/${id}` },
    ]),
  );
  const roles = new Set(options.roles ?? []);
  const faults: FaultRule[] = [];
  const calls: CallRecord[] = [];
  const settings = { describesToRunning: options.describesToRunning ?? 2 };
  const sockets = new Set<Socket>();

  const send = (res: ServerResponse, status: number, body: string, type = "text/xml") => {
    res.writeHead(status, { "content-type": type, "x-amzn-requestid": crypto.randomUUID() });
    res.end(body);
  };

  async function control(req: IncomingMessage, res: ServerResponse, path: string) {
    const body = req.method === "POST" ? JSON.parse((await readBody(req)) || "{}") : {};
    const json = (value: unknown) => send(res, 200, JSON.stringify(value), "application/json");
    switch (`${req.method} ${path}`) {
      case "GET /__fake/state":
        return json({ ...state.snapshot(), calls, faults });
      case "POST /__fake/faults":
        faults.push(...((body.faults ?? []) as FaultRule[]));
        return json({ faults });
      case "DELETE /__fake/faults":
        faults.length = 0;
        return json({ faults });
      case "POST /__fake/config":
        if (typeof body.describes_to_running === "number") settings.describesToRunning = body.describes_to_running;
        return json(settings);
      case "POST /__fake/vpcs": {
        const { vpc, subnets } = state.addVpc(body.region, false, body.subnets ?? []);
        return json({ vpc_id: vpc.id, subnets });
      }
      case "POST /__fake/certificates":
        state.certificates.add(body.arn);
        return json({ ok: true });
      case "POST /__fake/keys":
        keys.set(body.access_key_id, {
          secretAccessKey: body.secret_access_key,
          principal: `arn:aws:iam::123456789012:user/${body.access_key_id}`,
        });
        return json({ ok: true });
      case "POST /__fake/roles":
        roles.add(body.arn);
        return json({ ok: true });
      default:
        return send(
          res,
          404,
          JSON.stringify({ error: `no control endpoint ${req.method} ${path}` }),
          "application/json",
        );
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? "/", "http://fake");
    if (url.pathname.startsWith("/__fake/")) return control(req, res, url.pathname);
    const raw = await readBody(req);
    const scope = scopeOf(req.headers.authorization);
    const service = SERVICES[scope?.service ?? "ec2"] ? (scope?.service ?? "ec2") : "ec2";
    const meta = SERVICES[service]!;
    const form = new URLSearchParams(req.method === "POST" ? raw : url.search);
    const params = new Map(form.entries());
    const action = params.get("Action") ?? "";
    const record = (status: CallRecord["status"]) =>
      calls.push({ service, action, region: scope?.region ?? "", status, at: Date.now() });
    const fail = (fault: AwsFault) => {
      record(fault.status);
      send(res, fault.status, errorBody(meta.protocol, meta.ns, fault));
    };
    let verified: Awaited<ReturnType<typeof verifySigV4>>;
    try {
      verified = await verifySigV4(
        {
          method: req.method ?? "GET",
          host: req.headers.host ?? "",
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body: raw,
        },
        keys,
      );
      if (params.get("Version") !== meta.version) {
        throw new AwsFault(
          400,
          "InvalidParameterValue",
          `Version ${params.get("Version")} is not supported by ${service}`,
        );
      }
    } catch (e) {
      if (e instanceof AwsFault) return fail(e);
      throw e;
    }
    const rule = faults.find((f) => f.count > 0 && (!f.action || f.action === action));
    if (rule) rule.count--;
    if (rule?.kind === "throttle") {
      return fail(
        service === "ec2"
          ? new AwsFault(503, "RequestLimitExceeded", "Request limit exceeded.")
          : new AwsFault(400, "Throttling", "Rate exceeded"),
      );
    }
    if (rule?.kind === "error500") {
      return fail(
        new AwsFault(500, service === "ec2" ? "InternalError" : "InternalFailure", "An internal error has occurred"),
      );
    }
    if (rule?.kind === "hang") {
      record("hung");
      // Never answered; the socket goes when the client gives up or the fake closes.
      return;
    }
    let answer: string;
    try {
      if (service === "ec2") answer = handleEc2(state, verified.region, action, params, settings);
      else if (service === "elasticloadbalancing") answer = handleElb(state, verified.region, action, params);
      else answer = handleSts(keys, roles, verified.key, action, params, 3600);
    } catch (e) {
      if (e instanceof AwsFault) return fail(e);
      return fail(new AwsFault(500, "InternalError", `fake: ${String(e)}`));
    }
    if (rule?.kind === "drop") {
      record("dropped");
      req.socket.destroy();
      return;
    }
    record(200);
    send(res, 200, answer);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) send(res, 500, String(e), "text/plain");
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    faults,
    calls,
    keys,
    roles,
    options: settings,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
