import { describe, expect, it } from "vitest";
import { dnsRecords } from "./dns.ts";
import { isIPv6 } from "./net-address.ts";

describe("dnsRecords", () => {
  it("points the wildcard at IPs with A/AAAA records and at DNS names with a CNAME", () => {
    expect(dnsRecords("example.com", ["34.1.2.3"])).toEqual([{ name: "*.example.com", type: "A", value: "34.1.2.3" }]);
    expect(dnsRecords("example.com", ["2001:db8::1"])).toEqual([
      { name: "*.example.com", type: "AAAA", value: "2001:db8::1" },
    ]);
    expect(dnsRecords("gw.example.com", ["a1b2-3.eu-west-1.elb.amazonaws.com"])).toEqual([
      { name: "*.gw.example.com", type: "CNAME", value: "a1b2-3.eu-west-1.elb.amazonaws.com" },
    ]);
  });

  it("drops ports of local hosts, repeats and unknown addresses; one A record per distinct IP", () => {
    expect(dnsRecords("example.com", ["127.0.0.1:45531", "127.0.0.1:45532", null, "10.0.0.2"])).toEqual([
      { name: "*.example.com", type: "A", value: "127.0.0.1" },
      { name: "*.example.com", type: "A", value: "10.0.0.2" },
    ]);
    expect(dnsRecords("example.com", ["[::1]:8080"])).toEqual([{ name: "*.example.com", type: "AAAA", value: "::1" }]);
  });

  it("asks for nothing without a domain or an address, or for localhost domains", () => {
    expect(dnsRecords(null, ["34.1.2.3"])).toEqual([]);
    expect(dnsRecords("example.com", [null])).toEqual([]);
    expect(dnsRecords("localhost", ["127.0.0.1:45531"])).toEqual([]);
    expect(dnsRecords("gw.localhost", ["127.0.0.1:45531"])).toEqual([]);
  });

  it("tells IPv6 addresses from names", () => {
    for (const ok of ["::", "::1", "fe80::1:2", "2001:db8:0:0:0:0:2:1", "::ffff:192.0.2.1"])
      expect(isIPv6(ok)).toBe(true);
    for (const bad of ["1::2::3", "2001:db8", "example.com", "12345::", "::ffff:999.0.0.1"])
      expect(isIPv6(bad)).toBe(false);
  });
});
