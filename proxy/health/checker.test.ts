import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { healthDocument } from "../../schema/health.ts";
import { FakeClock } from "../engine/fake-clock.ts";
import { doc, service } from "../engine/fake-documents.ts";
import { type ActiveVerdict, HealthChecker } from "./checker.ts";

const A = "http://10.0.0.1:8000";
const health = healthDocument(null, true);
const llm = (replicas: [string, string][]) => service("llm", replicas, { health });

/** Answers per replica URL, changeable mid-test; records every check. */
function setup(answers: Record<string, number | Error | "hang">) {
  const clock = new FakeClock();
  const calls: string[] = [];
  const verdicts: ActiveVerdict[] = [];
  const checker = new HealthChecker({
    clock,
    random: () => 0.5,
    onVerdict: (v) => verdicts.push(v),
    fetch: async (url, signal) => {
      calls.push(url);
      const answer = answers[url.replace(/\/health$/, "")] ?? new Error("connect ECONNREFUSED");
      if (answer instanceof Error) throw answer;
      if (answer === "hang")
        return await new Promise<number>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      return answer;
    },
  });
  return { clock, calls, verdicts, checker };
}

describe("health checker", () => {
  it("admits a new replica at its first pass, then checks every 5 s", async () => {
    const { clock, calls, verdicts, checker } = setup({ [A]: 200 });
    checker.retain(doc(llm([["a", A]])));
    await clock.advance(50);
    expect(calls).toEqual([`${A}/health`]);
    expect(verdicts.map((v) => [v.verdict, v.last])).toEqual([["healthy", "pass"]]);
    await clock.advance(4_000);
    expect(calls).toHaveLength(1);
    await clock.advance(1_000);
    expect(calls).toHaveLength(2);
    expect(verdicts).toHaveLength(1);
  });

  it("turns unhealthy after 3 failures (1 s apart once failing) and healthy after 2 passes", async () => {
    const answers: Record<string, number | Error | "hang"> = { [A]: 200 };
    const { clock, verdicts, checker } = setup(answers);
    checker.retain(doc(llm([["a", A]])));
    await clock.advance(50);
    answers[A] = 500;
    await clock.advance(5_000); // first failure
    expect(verdicts.at(-1)).toMatchObject({ verdict: "healthy", last: "fail" });
    await clock.advance(2_000); // two more, 1 s apart
    expect(verdicts.at(-1)).toMatchObject({
      verdict: "unhealthy",
      last: "fail",
      error: `GET ${A}/health answered 500`,
    });
    answers[A] = "hang";
    await clock.advance(3_000); // a timeout counts as a failure; 2 s timeout + 1 s
    expect(checker.replicas()[0]!.results.timeout).toBeGreaterThan(0);
    answers[A] = 200;
    await clock.advance(2_000);
    expect(verdicts.at(-1)).toMatchObject({ verdict: "unhealthy", last: "pass" });
    await clock.advance(1_100);
    expect(verdicts.at(-1)).toMatchObject({ verdict: "healthy", last: "pass" });
    expect(checker.replicas()[0]!.unhealthyTransitions).toBe(1);
  });

  it("a new replica that fails is unhealthy after the threshold; replicas gone stop", async () => {
    const { clock, calls, verdicts, checker } = setup({});
    checker.retain(doc(llm([["a", A]])));
    await clock.advance(2_100);
    expect(verdicts.map((v) => v.verdict)).toEqual(["unknown", "unhealthy"]);
    checker.retain(doc(llm([])));
    const n = calls.length;
    await clock.advance(10_000);
    expect(calls).toHaveLength(n);
    expect(clock.pending()).toEqual([]);
  });

  it("checks nothing for services without health.check", async () => {
    const { clock, calls, checker } = setup({ [A]: 200 });
    checker.retain(doc(service("web", [["a", A]], { model: null, health: healthDocument(null, false) })));
    await clock.advance(10_000);
    expect(calls).toEqual([]);
  });
});

describe("health checker and deltas", () => {
  it("follows a delta's services alone: kept replicas keep their checks, gone and removed ones stop", async () => {
    const { clock, calls, checker } = setup({ [A]: 200, "http://10.0.0.2:8000": 200 });
    const other = service("other", [["o", "http://10.0.0.2:8000"]], { health });
    checker.retain(doc(llm([["a", A]]), other));
    await clock.advance(200);
    const [a, o] = checker.replicas();
    expect(a!.verdict).toBe("healthy");
    checker.retainChanged(
      [
        llm([
          ["a", A],
          ["b", "http://10.0.0.3:8000"],
        ]),
      ],
      [],
    );
    expect(checker.get("llm", "a", A)).toBe(a);
    expect(checker.get("other", "o", "http://10.0.0.2:8000")).toBe(o);
    expect(checker.replicas().map((c) => c.id)).toEqual(["a", "b", "o"]);
    // Checks turned off for llm, other removed: nothing is checked any more.
    checker.retainChanged([service("llm", [["a", A]], { health: healthDocument({ check: false }, true) })], ["other"]);
    expect(checker.replicas()).toEqual([]);
    expect(a!.closed && o!.closed).toBe(true);
    const n = calls.length;
    await clock.advance(10_000);
    expect(calls).toHaveLength(n);
  });
});

describe("health checker against a real server", () => {
  const servers: ReturnType<typeof createServer>[] = [];
  afterEach(() => {
    for (const s of servers) s.close();
  });

  it("passes on 200 from /health and fails on 503 (real clock, short intervals)", async () => {
    let status = 200;
    const paths: string[] = [];
    const server = createServer((req, res) => {
      paths.push(req.url ?? "");
      res.writeHead(status).end("ok");
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
    const verdicts: ActiveVerdict[] = [];
    const checker = new HealthChecker({ onVerdict: (v) => verdicts.push(v) });
    const check = { ...health.check!, interval_ms: 20, unhealthy_interval_ms: 10, timeout_ms: 500 };
    checker.retain(doc(service("llm", [["a", url]], { health: { ...health, check } })));
    const until = async (f: () => boolean) => {
      for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
    };
    await until(() => verdicts.some((v) => v.verdict === "healthy"));
    expect(paths[0]).toBe("/prefix/health");
    status = 503;
    await until(() => verdicts.some((v) => v.verdict === "unhealthy"));
    expect(verdicts.at(-1)).toMatchObject({ verdict: "unhealthy", last: "fail" });
    checker.close();
  });
});
