/**
 * A fake Cloudflare v4 API for DNS automation tests: one zone, API-token auth (the token must be
 * the one issued, with DNS edit on that zone), DNS records listed with `type`/`name`/`content`
 * filters, created with Cloudflare's checks (names inside the zone, A/AAAA content must be an
 * address, identical record → 81058, CNAME beside other records of the name → 81053) and deleted,
 * all in Cloudflare's `{success, errors, messages, result}` envelope. `POST /__control` injects
 * faults; `GET /__state` lists the records.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { isIP } from "node:net";

export interface FakeCloudflare {
  url: string;
  token: string;
  zoneId: string;
  zoneName: string;
  faults: { fail: number; throttle: number };
  records(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export async function startFakeCloudflare(options: { port?: number; zoneName?: string } = {}): Promise<FakeCloudflare> {
  const token = randomBytes(20).toString("base64url");
  const zoneId = randomBytes(16).toString("hex");
  const zoneName = options.zoneName ?? "example.com";
  const records = new Map<
    string,
    {
      id: string;
      type: string;
      name: string;
      content: string;
      ttl: number;
      proxied: boolean;
      comment: string | null;
      zone_id: string;
      zone_name: string;
      created_on: string;
    }
  >();
  const faults = { fail: 0, throttle: 0 };

  const send = (res: ServerResponse, code: number, result: unknown, errors: { code: number; message: string }[] = []) =>
    res
      .writeHead(code, { "content-type": "application/json" })
      .end(
        JSON.stringify({ success: errors.length === 0, errors, messages: [], result: errors.length ? null : result }),
      );
  const fail = (res: ServerResponse, code: number, errCode: number, message: string) =>
    send(res, code, null, [{ code: errCode, message }]);

  const server: Server = createServer((req, res) => {
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
      if (url.pathname === "/__state")
        return send(res, 200, { token, zone_id: zoneId, zone_name: zoneName, records: [...records.values()] });
      if (req.headers.authorization !== `Bearer ${token}`) return fail(res, 403, 10000, "Authentication error");
      if (faults.throttle > 0) {
        faults.throttle--;
        return fail(res, 429, 10013, "Rate limited. Please wait and consider throttling your request speed");
      }
      if (faults.fail > 0) {
        faults.fail--;
        return fail(res, 500, 10002, "An unknown error has occurred");
      }
      const m = /^\/client\/v4\/zones\/([^/]+)\/dns_records(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m)
        return fail(
          res,
          404,
          7003,
          "Could not route to " + url.pathname + ", perhaps your object identifier is invalid?",
        );
      if (m[1] !== zoneId)
        return fail(
          res,
          404,
          7003,
          "Could not route to /zones/" + m[1] + ", perhaps your object identifier is invalid?",
        );
      const id = m[2];
      if (req.method === "GET" && !id) {
        const f = (k: string) => url.searchParams.get(k);
        const list = [...records.values()].filter(
          (r) =>
            (!f("type") || r.type === f("type")) &&
            (!f("name") || r.name === f("name")) &&
            (!f("content") || r.content === f("content")),
        );
        return send(res, 200, list);
      }
      if (req.method === "POST" && !id) {
        let body: { type?: string; name?: string; content?: string; ttl?: number; proxied?: boolean; comment?: string };
        try {
          body = JSON.parse(raw);
        } catch {
          return fail(res, 400, 9207, "Request body is invalid.");
        }
        const { type, name, content } = body;
        if (!type || !["A", "AAAA", "CNAME"].includes(type)) return fail(res, 400, 9004, "DNS record type is invalid.");
        if (!name || !(name === zoneName || name.endsWith(`.${zoneName}`))) {
          return fail(
            res,
            400,
            9005,
            `Content for ${type} record is invalid. Name must be within the zone ${zoneName}.`,
          );
        }
        if ((type === "A" && isIP(content ?? "") !== 4) || (type === "AAAA" && isIP(content ?? "") !== 6) || !content) {
          return fail(
            res,
            400,
            9005,
            `Content for ${type} record is invalid. Must be a valid IP${type === "AAAA" ? "v6" : "v4"} address.`,
          );
        }
        const same = [...records.values()].filter((r) => r.name === name);
        if (same.some((r) => r.type === type && r.content === content))
          return fail(res, 400, 81058, "An identical record already exists.");
        if ((type === "CNAME" && same.length > 0) || same.some((r) => r.type === "CNAME")) {
          return fail(res, 400, 81053, "An A, AAAA, or CNAME record with that host already exists.");
        }
        const record = {
          id: randomBytes(16).toString("hex"),
          type,
          name,
          content,
          ttl: body.ttl ?? 1,
          proxied: body.proxied ?? false,
          comment: body.comment ?? null,
          zone_id: zoneId,
          zone_name: zoneName,
          created_on: new Date().toISOString(),
        };
        records.set(record.id, record);
        return send(res, 200, record);
      }
      if (req.method === "DELETE" && id) {
        if (!records.delete(id)) return fail(res, 404, 81044, "Record does not exist.");
        return send(res, 200, { id });
      }
      return fail(res, 405, 10405, "Method not allowed");
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`,
    token,
    zoneId,
    zoneName,
    faults,
    records: () => [...records.values()],
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
