import { describe, expect, it } from "vitest";
import { configDocument } from "../test/support/config-builder.ts";
import { DEFAULT_HEALTH_POLICY } from "./balancer.ts";
import { type RequestHead, readRequestHead } from "./headers.ts";
import {
  isBareAddress,
  type RequestLine,
  type Routed,
  type RoutingView,
  routeByHost,
  routeRequest,
} from "./route-request.ts";
import { buildRoutingTable, EMPTY_TABLE } from "./routes.ts";
import { StatsRegistry } from "./stats.ts";

const doc = configDocument(1, [
  { name: "echo", replicas: ["http://127.0.0.1:9001"] },
  { name: "llm", replicas: ["http://127.0.0.1:9002"], project: "other" },
]);
const table = buildRoutingTable(doc, EMPTY_TABLE, {
  stats: new StatsRegistry(),
  health: DEFAULT_HEALTH_POLICY,
  log: () => {},
});

/** What a request routes to, in one comparable line. */
function decide(host: string, path: string): string {
  const routed = routeByHost(table, host, path);
  if (!routed) return "404";
  if (routed.kind === "metrics") return `metrics ${routed.host} ${routed.path}`;
  return routed.kind === "entrypoint"
    ? `entrypoint ${routed.host} ${routed.path}`
    : `${routed.route.project}/${routed.route.name} ${routed.host} ${routed.path}`;
}

describe("isBareAddress", () => {
  it("is an IP literal or localhost, never a name under it", () => {
    for (const host of ["127.0.0.1", "10.1.2.3", "localhost", "[::1]", "[2001:db8::1]"]) {
      expect(isBareAddress(host), host).toBe(true);
    }
    for (const host of ["", "echo.localhost", "example.test", "::1", "[nope]", "127.0.0.1.nip.io", "1.2.3"]) {
      expect(isBareAddress(host), host).toBe(false);
    }
  });
});

describe("routeByHost", () => {
  it("routes service hosts and gateway.<domain> as before, path untouched", () => {
    expect(decide("echo.example.test", "/a?b=1")).toBe("main/echo echo.example.test /a?b=1");
    expect(decide("gateway.example.test", "/v1/models")).toBe("entrypoint gateway.example.test /v1/models");
    expect(decide("gateway.example.test", "/anything")).toBe("entrypoint gateway.example.test /anything");
    expect(decide("nope.example.test", "/v1/models")).toBe("404");
    expect(decide("", "/v1/models")).toBe("404");
  });

  it("serves the entrypoint under /v1 on the bare address, as gateway.<domain>", () => {
    for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
      expect(decide(host, "/v1/chat/completions")).toBe("entrypoint gateway.example.test /v1/chat/completions");
      expect(decide(host, "/v1")).toBe("entrypoint gateway.example.test /v1");
      expect(decide(host, "/v1?x=1")).toBe("entrypoint gateway.example.test /v1?x=1");
    }
    expect(decide("127.0.0.1", "/v10/models")).toBe("404");
    expect(decide("127.0.0.1", "/")).toBe("404");
    expect(decide("127.0.0.1", "/V1/models")).toBe("404");
  });

  it("serves every service under /proxy/services/<project>/<service>/ on the bare address, prefix stripped", () => {
    expect(decide("127.0.0.1", "/proxy/services/main/echo/")).toBe("main/echo echo.example.test /");
    expect(decide("127.0.0.1", "/proxy/services/main/echo")).toBe("main/echo echo.example.test /");
    expect(decide("localhost", "/proxy/services/main/echo/a/b?c=/d")).toBe("main/echo echo.example.test /a/b?c=/d");
    expect(decide("127.0.0.1", "/proxy/services/main/echo?q=1")).toBe("main/echo echo.example.test /?q=1");
    expect(decide("[::1]", "/proxy/services/other/llm/v1/models")).toBe("other/llm llm.example.test /v1/models");
  });

  it("answers 404 for anything else on the bare address", () => {
    expect(decide("127.0.0.1", "/proxy/services/other/echo/")).toBe("404");
    expect(decide("127.0.0.1", "/proxy/services/main/nope/")).toBe("404");
    expect(decide("127.0.0.1", "/proxy/services/main/")).toBe("404");
    expect(decide("127.0.0.1", "/proxy/services/main")).toBe("404");
    expect(decide("127.0.0.1", "/proxy/services//echo/")).toBe("404");
    expect(decide("127.0.0.1", "/proxy/services/main/echo#x")).toBe("404");
    // Only the bare address has these paths: a service's own host forwards them untouched.
    expect(decide("echo.example.test", "/proxy/services/other/llm/")).toBe(
      "main/echo echo.example.test /proxy/services/other/llm/",
    );
    expect(decide("elsewhere.example", "/proxy/services/main/echo/")).toBe("404");
  });
});

describe("routeRequest", () => {
  const services = configDocument(2, [
    { name: "echo", replicas: ["http://127.0.0.1:9001"] },
    { name: "small", replicas: ["http://127.0.0.1:9002"], client_max_body_size: 10 },
    { name: "llm", replicas: ["http://127.0.0.1:9003"], model: { name: "m", format: "openai", prefix: "/v1" } },
    { name: "locked", replicas: ["http://127.0.0.1:9004"], auth: true },
    { name: "smg", replicas: ["http://127.0.0.1:9005"], router: { type: "sglang", policy: "round_robin" } },
    { name: "empty", replicas: [] },
    { name: "idle", replicas: [], hold: { timeout_ms: 5_000 } },
    { name: "tls", replicas: ["http://127.0.0.1:9006"] },
  ]);
  const routed = buildRoutingTable(services, EMPTY_TABLE, {
    stats: new StatsRegistry(),
    health: DEFAULT_HEALTH_POLICY,
    log: () => {},
  });
  const view = (httpsPort: number | null = null): RoutingView => ({
    table: routed,
    maxHeadersCount: 4,
    httpsPort,
    hasCertificate: (host) => host === "tls.example.test",
  });

  /** The decision for a request given as its target and raw headers. */
  function route(
    url: string,
    raw: string[],
    options: { method?: string; secure?: boolean; httpsPort?: number | null } = {},
  ): { routed: Routed; head: RequestHead } {
    const headers: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) headers[raw[i]!.toLowerCase()] = raw[i + 1]!;
    const line: RequestLine = { url, method: options.method ?? "GET", rawHeaders: raw, headers };
    const secure = options.secure ?? false;
    const head = readRequestHead(raw, "203.0.113.9", secure ? "https" : "http");
    const before = JSON.stringify(head);
    const decision = routeRequest(line, head, secure, view(options.httpsPort ?? null));
    // Pure: the head is what the caller rewrites (dispatch.ts), never routeRequest.
    expect(JSON.stringify(head)).toBe(before);
    return { routed: decision, head };
  }

  /** One comparable line per decision. */
  function summary(decision: Routed): string {
    if ("redirect" in decision) return `redirect ${decision.redirect}`;
    if ("route" in decision) return `route ${decision.route.name} ${decision.path} authority=${decision.authority}`;
    if ("hold" in decision) return `hold ${decision.hold.name} cors=${decision.cors}`;
    if ("special" in decision) {
      const authority = decision.special === "entrypoint" ? ` authority=${decision.authority}` : "";
      return `${decision.special} ${decision.path}${authority}`;
    }
    const flags = `${decision.json ? "json" : "text"}${decision.cors ? " cors" : ""}${decision.challenge ? " challenge" : ""}`;
    return `${decision.status} ${decision.message} (${flags})`;
  }
  const decide = (url: string, raw: string[], options?: Parameters<typeof route>[2]) =>
    summary(route(url, raw, options).routed);

  it("routes origin-form requests by their Host, normalized (case, port, trailing dot)", () => {
    expect(decide("/a?b=1", ["Host", "echo.example.test"])).toBe("route echo /a?b=1 authority=null");
    expect(decide("/", ["Host", "ECHO.Example.Test:8080"])).toBe("route echo / authority=null");
    expect(decide("/", ["Host", "echo.example.test."])).toBe("route echo / authority=null");
    expect(decide("/v1/models", ["Host", "gateway.example.test"])).toBe("entrypoint /v1/models authority=null");
  });

  it("takes an absolute-form target's authority over the Host header, and says so to the caller", () => {
    expect(decide("http://ECHO.example.test:81/x?y", ["Host", "small.example.test"])).toBe(
      "route echo /x?y authority=echo.example.test:81",
    );
    expect(decide("HTTP://gateway.example.test/v1/models", [])).toBe(
      "entrypoint /v1/models authority=gateway.example.test",
    );
    expect(decide("http://nope.example.test/", ["Host", "echo.example.test"])).toBe(
      "404 no service for host nope.example.test (text)",
    );
  });

  it("refuses what cannot be routed, before looking at services", () => {
    expect(decide("/", ["Host", "echo.example.test", "Host", "small.example.test"])).toBe(
      "400 bad request: more than one Host header (text)",
    );
    expect(decide("/", ["Host", "echo.example.test", "A", "1", "B", "2", "C", "3", "D", "4"])).toBe(
      "431 too many header fields (text)",
    );
    expect(decide("*", ["Host", "echo.example.test"])).toBe("400 bad request target (text)");
    expect(decide("ftp://echo.example.test/", ["Host", "echo.example.test"])).toBe("400 bad request target (text)");
    expect(decide("http://[nope/", ["Host", "echo.example.test"])).toBe("400 bad request target (text)");
    expect(decide("/", [])).toBe("404 no service for host (none) (text)");
  });

  it("redirects plain HTTP to HTTPS for hosts with a certificate, on the bare address too", () => {
    const plain = { httpsPort: 8443 };
    expect(decide("/a?b", ["Host", "tls.example.test"], plain)).toBe("redirect https://tls.example.test:8443/a?b");
    expect(decide("/a", ["Host", "tls.example.test"], { httpsPort: 443 })).toBe("redirect https://tls.example.test/a");
    expect(decide("/proxy/services/main/tls/a", ["Host", "127.0.0.1"], plain)).toBe(
      "redirect https://tls.example.test:8443/a",
    );
    // Over TLS, without an HTTPS listener, or for a host without a certificate: no redirect.
    expect(decide("/a", ["Host", "tls.example.test"], { ...plain, secure: true })).toBe("route tls /a authority=null");
    expect(decide("/a", ["Host", "tls.example.test"])).toBe("route tls /a authority=null");
    expect(decide("/a", ["Host", "echo.example.test"], plain)).toBe("route echo /a authority=null");
  });

  it("keeps router services to SGLang's paths", () => {
    expect(decide("/v1/chat/completions", ["Host", "smg.example.test"])).toBe(
      "route smg /v1/chat/completions authority=null",
    );
    expect(decide("/flush_cache", ["Host", "smg.example.test"])).toBe(
      "403 path not served by service smg's router (json)",
    );
  });

  it("answers CORS preflights to model services, and only to them", () => {
    const preflight = ["Host", "llm.example.test", "Access-Control-Request-Method", "POST"];
    expect(decide("/v1/chat/completions", preflight, { method: "OPTIONS" })).toBe("preflight /v1/chat/completions");
    expect(
      decide("/", ["Host", "echo.example.test", "Access-Control-Request-Method", "POST"], { method: "OPTIONS" }),
    ).toBe("route echo / authority=null");
  });

  it("refuses requests without a service token to services with auth", () => {
    expect(decide("/", ["Host", "locked.example.test"])).toBe(
      "401 service locked needs a service token (gps_…) of project main (json challenge)",
    );
    expect(decide("/", ["Host", "locked.example.test", "Authorization", "Bearer nope"])).toBe(
      "403 this token does not open service locked: it takes a valid service token (gps_…) of project main (json)",
    );
  });

  it("answers 503 for a service without replicas, or holds the request when it scales to zero", () => {
    expect(decide("/", ["Host", "empty.example.test"])).toBe("503 service empty has no replicas (json)");
    expect(decide("/", ["Host", "idle.example.test"])).toBe("hold idle cors=false");
  });

  it("refuses a declared body over client_max_body_size before reading it", () => {
    expect(decide("/", ["Host", "small.example.test", "Content-Length", "11"])).toBe(
      "413 request body larger than client_max_body_size (10 bytes) (json)",
    );
    expect(decide("/", ["Host", "small.example.test", "Content-Length", "10"])).toBe("route small / authority=null");
  });
});
