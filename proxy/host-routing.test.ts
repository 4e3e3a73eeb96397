import { describe, expect, it } from "vitest";
import { configDocument } from "../test/support/config-builder.ts";
import { DEFAULT_HEALTH_POLICY } from "./balancer.ts";
import { isBareAddress, routeByHost } from "./host-routing.ts";
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
