import { describe, expect, it } from "vitest";
import { configDocument, service } from "../test/support/config-builder.ts";
import { isolateServices } from "./isolate-services.ts";

const good = (version: number) => configDocument(version, [{ name: "a", replicas: ["http://10.0.0.1:80"] }]);

describe("isolateServices", () => {
  it("keeps a refused service's last good state, leaves a new one out, and names the field", () => {
    const previous = good(1);
    const next = configDocument(2, [
      { name: "a", replicas: ["http://10.0.0.2:80"], client_max_body_size: 1e20 },
      { name: "b", replicas: [], read_timeout_ms: -1 },
      { name: "c", replicas: ["http://10.0.0.3:80"] },
    ]);
    const result = isolateServices(next, previous);
    if (!result.ok) throw new Error(result.error);
    expect(result.document.version).toBe(2);
    expect(result.document.services.map((s) => [s.name, s.replicas[0]?.url])).toEqual([
      ["c", "http://10.0.0.3:80"],
      ["a", "http://10.0.0.1:80"],
    ]);
    expect(result.rejected).toEqual([
      { service: "a", error: expect.stringMatching(/^services\[0\]\.client_max_body_size: /), kept: true },
      { service: "b", error: expect.stringMatching(/^services\[1\]\.read_timeout_ms: /), kept: false },
    ]);
  });

  it("refuses the second of two services on one host, and a service without a usable name", () => {
    const doc = configDocument(1, [{ name: "a", replicas: [] }]) as { services: unknown[] };
    doc.services.push({ ...service({ name: "copy", replicas: [] }), host: "a.example.test" });
    doc.services.push({ name: 42 });
    const result = isolateServices(doc, null);
    if (!result.ok) throw new Error(result.error);
    expect(result.document.services.map((s) => s.name)).toEqual(["a"]);
    expect(result.rejected.map((r) => [r.service, r.kept])).toEqual([
      ["copy", false],
      ["(unnamed)", false],
    ]);
    expect(result.rejected[0]!.error).toContain("host: a.example.test is already another service's host");
  });

  it("does not keep a last good state that now clashes with an accepted service", () => {
    const previous = good(1);
    const next = configDocument(2, [
      { name: "b", replicas: [], host: "a.example.test" },
      { name: "a", replicas: [], client_max_body_size: -5 },
    ]);
    const result = isolateServices(next, previous);
    if (!result.ok) throw new Error(result.error);
    expect(result.document.services.map((s) => s.name)).toEqual(["b"]);
    expect(result.rejected).toEqual([{ service: "a", error: expect.any(String), kept: false }]);
  });

  it("refuses the whole document when its envelope is wrong", () => {
    expect(isolateServices({ ...good(2), entrypoint: { host: "not a host" } }, good(1))).toEqual({
      ok: false,
      error: expect.stringContaining("entrypoint.host: expected a host name"),
    });
    expect(isolateServices({ ...good(2), version: "2" }, null)).toMatchObject({ ok: false });
  });
});
