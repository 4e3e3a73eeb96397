import { describe, expect, it } from "vitest";
import type { ConfigDelta } from "../../schema/config-delta.ts";
import { fakeDocument, fakeService } from "../../test/fakes/config-documents.ts";
import { certificateHosts, deltaChangesCertificates } from "./manager.ts";

describe("a delta and the certificates", () => {
  const https = (name: string, host?: string) => ({ ...fakeService(name, host ? { host } : {}), https: true });
  const doc = { ...fakeDocument(3), acme: { email: null, directory_url: null, eab: null } } as ReturnType<
    typeof fakeDocument
  >;
  const withHttps = { ...doc, services: [https("s00000"), ...doc.services.slice(1)] };
  const hosts = certificateHosts(withHttps);
  const delta = (services: ConfigDelta["services"], removed: string[] = []): ConfigDelta => ({
    base_version: 1,
    version: 2,
    services,
    removed,
  });

  it("are left alone by a delta that keeps every host needing one (a replica registered)", () => {
    expect(hosts).toEqual(new Map([["s00000", "s00000.gw.example.com"]]));
    expect(deltaChangesCertificates(delta([https("s00000")]), hosts, true)).toBe(false);
    expect(deltaChangesCertificates(delta([fakeService("s00001", { replicas: 3 })]), hosts, true)).toBe(false);
    expect(deltaChangesCertificates(delta([], ["s00002"]), hosts, true)).toBe(false);
  });

  it("follow a delta that adds, moves or removes a host needing one, or changes the head", () => {
    expect(deltaChangesCertificates(delta([https("s00001")]), hosts, true)).toBe(true);
    expect(deltaChangesCertificates(delta([https("s00000", "moved.gw.example.com")]), hosts, true)).toBe(true);
    expect(deltaChangesCertificates(delta([fakeService("s00000")]), hosts, true)).toBe(true);
    expect(deltaChangesCertificates(delta([], ["s00000"]), hosts, true)).toBe(true);
    const { version: _v, services: _s, ...head } = withHttps;
    expect(deltaChangesCertificates({ ...delta([]), head }, hosts, true)).toBe(true);
  });

  it("without ACME, only a head can change anything", () => {
    expect(certificateHosts({ ...withHttps, acme: null })).toEqual(new Map());
    expect(deltaChangesCertificates(delta([https("s00001")]), new Map(), false)).toBe(false);
  });
});
