import { describe, expect, it } from "vitest";
import type { Gateway, GatewayReplica } from "../schema/api.ts";
import { parseGatewayConfiguration } from "../schema/gateway.ts";
import { formatAge } from "./age.ts";
import { gatewaysTable } from "./gateways-table.ts";
import { plainStyle, styleFor } from "./style.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

function replica(num: number, overrides: Partial<GatewayReplica> = {}): GatewayReplica {
  return {
    replica_num: num,
    hostname: `34.0.0.${num + 1}`,
    backend: "aws",
    region: "eu-west-1",
    instance_id: `i-${num}`,
    created_at: ago(120),
    status: "running",
    status_message: null,
    config: { desired_version: 1, applied_version: 1, error: null },
    agent: null,
    ...overrides,
  };
}

function gateway(overrides: Partial<Gateway> = {}, replicas = 1): Gateway {
  const configuration = parseGatewayConfiguration({
    type: "gateway",
    name: "example-gateway",
    backend: "aws",
    region: "eu-west-1",
    domain: "example.com",
    certificate: replicas > 1 ? null : undefined,
    replicas,
  });
  return {
    id: "gw-1",
    name: "example-gateway",
    project_name: "main",
    configuration,
    created_at: ago(5),
    status: "running",
    status_message: null,
    hostname: null,
    wildcard_domain: "example.com",
    dns_records: [],
    default: true,
    to_be_deleted: false,
    backend: "aws",
    region: "eu-west-1",
    replicas: Array.from({ length: replicas }, (_, i) => replica(i)),
    ...overrides,
  };
}

const render = (gateways: Gateway[], options: { verbose?: boolean; includeCreated?: boolean } = {}) =>
  gatewaysTable(gateways, { ...options, now: NOW }, plainStyle);

describe("gatewaysTable", () => {
  it("shows a one-replica gateway as a single row with the replica's hostname and status", () => {
    const g = gateway();
    g.replicas[0]!.status = "provisioning";
    expect(render([g])).toEqual([
      "BACKEND  REGION     NAME             HOSTNAME  DOMAIN       DEFAULT  STATUS",
      "aws      eu-west-1  example-gateway  34.0.0.1  example.com  ✓        provisioning",
    ]);
  });

  it("shows a gateway with several replicas as its own row plus one row per replica", () => {
    const g = gateway({ default: false }, 2);
    g.replicas[1]!.status = "provisioning";
    g.replicas[1]!.hostname = null;
    expect(render([g])).toEqual([
      "BACKEND  REGION     NAME             HOSTNAME  DOMAIN       DEFAULT  STATUS",
      "aws      eu-west-1  example-gateway            example.com           running",
      "aws      eu-west-1     replica=0     34.0.0.1                        running",
      "aws      eu-west-1     replica=1                                     provisioning",
    ]);
  });

  it("orders replica rows by replica number", () => {
    const g = gateway({}, 3);
    g.replicas.reverse();
    const names = render([g])
      .slice(2)
      .map((line) => /replica=\d/.exec(line)?.[0]);
    expect(names).toEqual(["replica=0", "replica=1", "replica=2"]);
  });

  it("builds the row from the configuration when there is no replica yet", () => {
    const g = gateway({ status: "submitted", replicas: [], default: false, wildcard_domain: null });
    g.configuration.domain = null;
    expect(render([g])).toEqual([
      "BACKEND  REGION     NAME             HOSTNAME  DOMAIN  DEFAULT  STATUS",
      "aws      eu-west-1  example-gateway                             submitted",
    ]);
  });

  it("adds CREATED and ERROR when verbose, joining gateway and replica errors", () => {
    const g = gateway({ status: "failed", status_message: "Failed to provision gateway replica" });
    g.replicas[0] = replica(0, {
      status: "terminated",
      status_message: "InsufficientInstanceCapacity",
      hostname: null,
    });
    const lines = render([g], { verbose: true });
    expect(lines[0]).toBe(
      "BACKEND  REGION     NAME             HOSTNAME  DOMAIN       DEFAULT  STATUS      CREATED    ERROR",
    );
    expect(lines[1]).toBe(
      "aws      eu-west-1  example-gateway            example.com  ✓        terminated  5 sec ago  " +
        "Failed to provision gateway replica. InsufficientInstanceCapacity",
    );
  });

  it("adds only CREATED for the provisioning display", () => {
    const lines = render([gateway()], { includeCreated: true });
    expect(lines[0]!.split(/\s{2,}/)).toEqual([
      "BACKEND",
      "REGION",
      "NAME",
      "HOSTNAME",
      "DOMAIN",
      "DEFAULT",
      "STATUS",
      "CREATED",
    ]);
    expect(lines[1]).toMatch(/running {2}5 sec ago$/);
  });

  it("gives replicas their own rows in verbose mode when a load balancer fronts them", () => {
    const g = gateway({ hostname: "gw-lb.elb.amazonaws.com" });
    expect(render([g])[1]).toContain("gw-lb.elb.amazonaws.com");
    const verbose = render([g], { verbose: true });
    expect(verbose).toHaveLength(3);
    expect(verbose[1]).toContain("gw-lb.elb.amazonaws.com");
    expect(verbose[2]).toMatch(/^aws {2,}eu-west-1 {2,} {3}replica=0 +34\.0\.0\.1 /);
  });

  it("says deleting for a gateway marked for deletion", () => {
    expect(render([gateway({ to_be_deleted: true })])[1]).toMatch(/deleting$/);
  });

  it("prints only the header for no gateways", () => {
    expect(render([])).toEqual(["BACKEND  REGION  NAME  HOSTNAME  DOMAIN  DEFAULT  STATUS"]);
  });

  it("bolds the header and dims replica rows on a colour terminal only", () => {
    const g = gateway({}, 2);
    const tty = { stdout: { isTTY: true, write: () => true }, env: {} };
    const colored = gatewaysTable([g], { now: NOW }, styleFor(tty));
    expect(colored[0]?.startsWith("\x1b[1mBACKEND")).toBe(true);
    expect(colored[0]?.endsWith("STATUS\x1b[22m")).toBe(true);
    expect(colored[1]?.startsWith("aws")).toBe(true);
    expect(colored[2]?.startsWith("\x1b[2maws")).toBe(true);
    for (const env of [{ NO_COLOR: "1" }, { TERM: "dumb" }]) {
      expect(gatewaysTable([g], { now: NOW }, styleFor({ ...tty, env })).join("\n")).not.toContain("\x1b");
    }
    const piped = styleFor({ stdout: { isTTY: false, write: () => true }, env: {} });
    expect(gatewaysTable([g], { now: NOW }, piped).join("\n")).not.toContain("\x1b");
  });
});

describe("formatAge", () => {
  it.each([
    [0, "0 sec ago"],
    [59, "59 sec ago"],
    [60, "1 min ago"],
    [3599, "59 min ago"],
    [3600, "1 hour ago"],
    [3 * 3600 + 5, "3 hours ago"],
    [86400, "1 day ago"],
    [5 * 86400, "5 days ago"],
  ])("%i seconds → %s", (seconds, expected) => {
    expect(formatAge(ago(seconds), NOW)).toBe(expected);
  });

  it("shows a date past a month and clamps clock skew", () => {
    expect(formatAge("2025-12-01T08:00:00Z", NOW)).toBe("2025-12-01");
    expect(formatAge(new Date(NOW + 3000).toISOString(), NOW)).toBe("0 sec ago");
    expect(formatAge("not a date", NOW)).toBe("not a date");
  });
});
