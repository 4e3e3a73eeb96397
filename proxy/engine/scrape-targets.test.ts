import { describe, expect, it } from "vitest";
import { doc, service } from "./fake-documents.ts";
import { metricsUrl, scrapedServices, scrapeTargets, targetKey } from "./scrape-targets.ts";

const A = "http://10.0.0.1:8000";

describe("scrape targets", () => {
  it("never scrapes engine: none, nor a service without model, router or engine", () => {
    const d = doc(
      service("off", [["a", A]], { engine: "none" }),
      service("plain", [["a", A]], { model: null }),
      service("explicit", [["a", A]], { model: null, engine: "sglang" }),
      service("auto", [["a", A]]),
      service("empty", []),
    );
    expect(scrapeTargets(d).map((t) => [t.service, t.expected])).toEqual([
      ["explicit", "sglang"],
      ["auto", null],
    ]);
    // A scraped service without replicas still counts (its queue ring is kept).
    expect([...scrapedServices(d)]).toEqual(["explicit", "auto", "empty"]);
    expect(scrapeTargets(null)).toEqual([]);
  });

  it("asks <replica url>/metrics, the replica's path prefix kept", () => {
    expect(metricsUrl("http://h:1/")).toBe("http://h:1/metrics");
    expect(metricsUrl("http://h:1/prefix//")).toBe("http://h:1/prefix/metrics");
    expect(metricsUrl("http://h:1")).toBe("http://h:1/metrics");
  });

  it("keys a replica by service, id and URL: a new URL is a new replica", () => {
    expect(targetKey("s", "a", A)).not.toBe(targetKey("s", "a", `${A}/v2`));
    expect(targetKey("s", "a", A)).not.toBe(targetKey("s2", "a", A));
  });
});
