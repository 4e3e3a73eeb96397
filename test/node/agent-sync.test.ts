import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type Agent, type AgentOptions, startAgent } from "../../agent/agent.ts";
import { type FakeControlPlane, startFakeControlPlane } from "../fakes/control-plane/agent-api.ts";
import {
  bootstrapFor,
  configDocument,
  FAST_SOCKET,
  get,
  memoryLog,
  type Replica,
  SECRET,
  startReplica,
} from "../support/agent-fixtures.ts";

/** Back-offs stretch on a loaded machine: wait generously, fail only on a real hang. */
const WAIT = { timeout: 10_000 };

import { type ProxyOptions, startProxy } from "../../proxy/index.ts";

// Config sync between the agent and an in-test control plane speaking the real protocol: WebSocket
// push with ACK/NACK, stats and health, reconnection, token refusal, the HTTP fallback, and a restart
// with the control plane down. Timings are shrunk; the behaviour is the production one.

let dir: string;
let cp: FakeControlPlane;
let replicas: Replica[];
const agents: Agent[] = [];
/** What each agent started its proxy with, in start order. */
let proxyOptions: ProxyOptions[];

async function start(overrides: Partial<AgentOptions> = {}): Promise<{ agent: Agent; proxy: () => ProxyOptions }> {
  const index = proxyOptions.length;
  const log = memoryLog();
  const agent = await startAgent({
    bootstrap: bootstrapFor(cp.url),
    stateDir: dir,
    httpPort: 0,
    processes: 0,
    adminPort: 0,
    startProxy: (options) => {
      proxyOptions.push(options);
      return startProxy(options);
    },
    heartbeatIntervalMs: 100,
    backoff: { initialMs: 20, maxMs: 100 },
    refusedRetryMs: 100,
    socket: FAST_SOCKET,
    poll: { fallbackAfterMs: 300, intervalMs: 100 },
    log,
    version: "9.9.9-test",
    ...overrides,
  });
  agents.push(agent);
  return { agent, proxy: () => proxyOptions[index]! };
}

const acks = () => cp.received("ack").map((m) => m.version);
const nacks = () => cp.received("nack");
const configFile = () => path.join(dir, "config.json");
const readPersisted = async () => JSON.parse(await readFile(configFile(), "utf8"));
const healthz = async (agent: Agent) => (await fetch(`http://127.0.0.1:${agent.adminPort}/healthz`)).json();

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "gp-agent-sync-"));
  cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  replicas = await Promise.all([startReplica("one"), startReplica("two")]);
  proxyOptions = [];
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await cp.close();
  await Promise.all(replicas.map((r) => r.close()));
  await rm(dir, { recursive: true, force: true });
});

describe("config over the WebSocket", () => {
  it("applies each new version, persists it as the last good config, and ACKs it", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    const { agent } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);

    expect(cp.sockets[0]!.authorization).toBe(`Bearer ${cp.issued[0]}`);
    expect(await readPersisted()).toEqual(configDocument(1, replicas[0]!.url));
    expect((await stat(configFile())).mode & 0o777).toBe(0o600);
    expect(await get(agent.httpPort, "llama.localhost", "/v1/models")).toEqual({
      status: 200,
      body: "one GET /v1/models",
    });

    cp.setConfig(configDocument(2, replicas[1]!.url));
    await vi.waitFor(() => expect(acks()).toEqual([1, 2]), WAIT);
    expect((await readPersisted()).version).toBe(2);
    expect(await get(agent.httpPort, "llama.localhost", "/v1/models")).toEqual({
      status: 200,
      body: "two GET /v1/models",
    });
    expect(agent.configVersion).toBe(2);
    expect(await healthz(agent)).toMatchObject({
      registered: true,
      config_version: 2,
      control_plane_connected: true,
      status: "healthy",
    });
    expect(cp.messages.filter((m) => !m.valid)).toEqual([]);
    // No temp files left behind by the atomic writes.
    expect(await readdir(dir)).not.toContainEqual(expect.stringMatching(/\.tmp$/));
  });

  // A refused *service* is isolated instead (test/node/agent-service-isolation.test.ts).
  it("NACKs a document whose envelope is invalid or refused by the proxy, and keeps serving the previous one", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    const { agent } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);

    const invalid = configDocument(2, replicas[1]!.url) as any;
    invalid.service_tokens = "nope";
    cp.setConfig(invalid);
    await vi.waitFor(() => expect(nacks()).toHaveLength(1), WAIT);
    expect(nacks()[0]).toMatchObject({ version: 2, error: expect.stringContaining("service_tokens") });

    // Valid for the schema, refused by the proxy: an entrypoint host that is no host name.
    const badHost = { ...configDocument(3, replicas[1]!.url), entrypoint: { host: "not a host" } };
    cp.setConfig(badHost);
    await vi.waitFor(() => expect(nacks()).toHaveLength(2), WAIT);
    expect(nacks()[1]).toMatchObject({
      version: 3,
      error: expect.stringContaining("entrypoint.host: expected a host name"),
    });

    expect(acks()).toEqual([1]);
    expect(agent.configVersion).toBe(1);
    expect((await readPersisted()).version).toBe(1);
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "one GET /" });

    // A later good version still goes through.
    cp.setConfig(configDocument(4, replicas[1]!.url));
    await vi.waitFor(() => expect(acks()).toEqual([1, 4]), WAIT);
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "two GET /" });
  });

  it("ignores versions older than the applied one and re-ACKs the applied one", async () => {
    cp.setConfig(configDocument(3, replicas[0]!.url));
    const { agent } = await start();
    await vi.waitFor(() => expect(acks()).toEqual([3]), WAIT);

    cp.push({ type: "config", document: configDocument(2, replicas[1]!.url) });
    cp.push({ type: "config", document: configDocument(3, replicas[1]!.url) });
    // Messages are handled in order: once 3 is re-ACKed, 2 has been looked at.
    await vi.waitFor(() => expect(acks()).toEqual([3, 3]), WAIT);
    expect(nacks()).toEqual([]);
    expect(agent.configVersion).toBe(3);
    // Both documents pointed at replica two: neither was applied.
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ body: "one GET /" });
  });
});

describe("stats, health and liveness", () => {
  it("reports stats every period and health at connect and every period, instead of HTTP heartbeats", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    // A grace period no busy machine outlasts before the socket is up (the fallback has its own tests).
    const { agent } = await start({ heartbeatIntervalMs: 200, poll: { fallbackAfterMs: 30_000, intervalMs: 100 } });
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    // Heartbeats go while the socket is down, its start included: one slower than a 200 ms period to
    // open (a loaded machine) rightly had one sent. Counted from the socket's ACK: any after it would
    // mean the reports went the wrong way (taken a stats period later, so one then in flight has landed).
    await vi.waitFor(() => expect(cp.received("stats").length).toBeGreaterThanOrEqual(1), WAIT);
    const beats = cp.routes("heartbeat").length;
    const beforeRequests = Date.now();
    for (let i = 0; i < 3; i++) await get(agent.httpPort, "llama.localhost");

    // Stats from the real proxy: every service, with the requests it forwarded in each window.
    const counted = () => cp.received("stats").filter((m) => m.services[0]?.windows["30"].requests === 3);
    await vi.waitFor(() => expect(counted().length).toBeGreaterThanOrEqual(2), WAIT);
    const stats = counted();
    // Each window with traffic also carries its distributions (a plain replica: durations only).
    const window = {
      requests: 3,
      request_time: expect.any(Number),
      llm: expect.objectContaining({ errors: 0, tokens: { input: 0, output: 0, estimated_output: 0 } }),
    };
    expect(stats.at(-1)!.services).toEqual([
      {
        service: "llama",
        windows: { "30": window, "60": window, "300": window },
        // Each replica's health as this host sees it (docs/health.md): the document carries no
        // `health:` (an older control plane's), so passive health only, no check yet.
        health: [{ replica: "replica-1", state: "healthy", circuit: "closed", error: null, last_check: null }],
      },
    ]);
    expect(stats.at(-1)!.services[0]!.windows["30"].llm!.duration.counts.reduce((a, b) => a + b)).toBe(3);
    // Not more often than the period (100 ms): each report goes out once its counters are read, a
    // read that can take a loaded machine most of a period, so two reports can arrive close together;
    // over their span, though, there is at most one per period (and one more for that jitter).
    const received = cp.received("stats").map((m) => m.receivedAt);
    expect(received.length - 1).toBeLessThanOrEqual(Math.floor((received.at(-1)! - received[0]!) / 100) + 1);
    // `at` is the agent's clock (ms since the epoch) when it read the counters, after the requests it
    // counts and before the message arrived: the same machine's clock here, so ordered without a bound.
    expect(stats.at(-1)!.at).toBeGreaterThanOrEqual(beforeRequests);
    expect(stats.at(-1)!.at).toBeLessThanOrEqual(stats.at(-1)!.receivedAt);
    await vi.waitFor(() => expect(cp.received("health").length).toBeGreaterThanOrEqual(3), WAIT);
    const health = cp.received("health");
    expect(health[0]).toMatchObject({ status: "healthy", message: null, version: "9.9.9-test" });
    // The first one is sent on connect, before the first stats period.
    expect(health[0]!.receivedAt).toBeLessThanOrEqual(cp.received("stats")[0]!.receivedAt);
    const gaps = health.slice(1).map((h, i) => h.receivedAt - health[i]!.receivedAt);
    for (const gap of gaps.slice(1)) expect(gap).toBeGreaterThanOrEqual(150);
    expect(cp.messages.filter((m) => !m.valid)).toEqual([]);
    expect(cp.routes("heartbeat")).toHaveLength(beats);
    expect(cp.sockets).toHaveLength(1);
  });

  it("pings; a peer that stops answering is given up after two missed pongs, then the agent reconnects", async () => {
    const log = memoryLog();
    await start({ log, socket: { ...FAST_SOCKET, pingIntervalMs: 100 } });
    await vi.waitFor(() => expect(cp.received("ping").length).toBeGreaterThanOrEqual(3), WAIT);
    // Answered pings keep the connection.
    expect(cp.sockets).toHaveLength(1);
    expect(cp.sockets[0]!.closedAt).toBeNull();

    cp.setPongs(false);
    const silentFrom = cp.received("ping").length;
    await vi.waitFor(() => expect(cp.sockets[0]!.closedAt).not.toBeNull(), WAIT);
    // Two pings went unanswered before the agent gave up (the third tick found them missing).
    expect(cp.received("ping").filter((p) => p.socket === 1).length - silentFrom).toBeGreaterThanOrEqual(2);
    expect(cp.sockets[0]!.closeCode).toBe(1006);
    expect(log.lines.some((l) => l.includes("2 pings unanswered"))).toBe(true);
    cp.setPongs(true);
    await vi.waitFor(() => expect(cp.openSockets()).toBe(1), WAIT);
    expect(cp.sockets).toHaveLength(2);
  });

  it("reports degraded health when the last good config cannot be persisted", async () => {
    // A directory where the file should be: reading it fails, and so does renaming over it.
    await mkdir(configFile());
    const log = memoryLog();
    cp.setConfig(configDocument(1, replicas[0]!.url));
    const { agent } = await start({ log });
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    await vi.waitFor(
      () =>
        expect(cp.received("health").at(-1)).toMatchObject({
          status: "degraded",
          message: expect.stringContaining("cannot persist the last good config"),
        }),
      WAIT,
    );
    expect(await healthz(agent)).toMatchObject({ status: "degraded", config_version: 1 });
    expect(log.lines.some((l) => l.startsWith("warn last good config") && l.includes("EISDIR"))).toBe(true);
    // Served anyway: persisting is for the next start.
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200 });
  });
});

describe("reconnection", () => {
  it("reconnects with exponential back-off after the server drops the socket", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    const log = memoryLog();
    const { agent } = await start({ log, socket: { ...FAST_SOCKET, backoff: { initialMs: 20, maxMs: 160 } } });
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);

    cp.refuseUpgrades(4, 503);
    const pauses = () => log.lines.flatMap((l) => /reconnecting in (\d+) ms/.exec(l)?.[1] ?? []).map(Number);
    const before = pauses().length;
    const droppedAt = Date.now();
    cp.dropSockets();
    // The server records the socket a moment before the agent sees it open.
    await vi.waitFor(() => {
      expect(cp.sockets).toHaveLength(2);
      expect(agent.connected).toBe(true);
    }, WAIT);
    const attempts = cp.upgrades.filter((u) => u.at >= droppedAt);
    expect(attempts.map((u) => u.status)).toEqual([503, 503, 503, 503, 101]);
    // Attempt k waits between ½ and 1 × min(20 ms · 2^k, 160 ms), as the agent says it chose, and
    // at least what it chose (so at least the lower half), always.
    const chosen = pauses().slice(before);
    expect(chosen).toHaveLength(5);
    chosen.forEach((pause, k) => {
      const ceiling = Math.min(20 * 2 ** k, 160);
      expect(pause).toBeGreaterThanOrEqual(ceiling / 2);
      expect(pause).toBeLessThanOrEqual(ceiling);
    });
    const gaps = [attempts[0]!.at - droppedAt, ...attempts.slice(1).map((u, i) => u.at - attempts[i]!.at)];
    gaps.forEach((gap, k) => {
      expect(gap).toBeGreaterThanOrEqual(chosen[k]! - 5);
    });
    // The new connection gets the current document and the agent confirms it runs it.
    await vi.waitFor(() => expect(cp.received("ack").filter((a) => a.socket === 2)).toHaveLength(1), WAIT);
    expect(cp.received("ack").at(-1)!.version).toBe(1);
  });

  it("keeps serving and retrying when the control plane goes away, saying why it cannot connect", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    const log = memoryLog();
    const { agent } = await start({ log });
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    await cp.close();
    await vi.waitFor(
      () =>
        expect(
          log.lines.filter((l) => l.includes("cannot reach the control-plane WebSocket (connect ECONNREFUSED")).length,
        ).toBeGreaterThanOrEqual(2),
      WAIT,
    );
    expect(agent.connected).toBe(false);
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "one GET /" });
  });

  it("starts the back-off over after a connection that lived long enough", async () => {
    cp.refuseUpgrades(5, 503);
    const log = memoryLog();
    const { agent } = await start({
      log,
      socket: { ...FAST_SOCKET, statsIntervalMs: 40, backoff: { initialMs: 10, maxMs: 5_000 }, stableAfterMs: 150 },
    });
    await vi.waitFor(() => expect(agent.connected).toBe(true), { timeout: 5_000 });
    // Stats go out every 40 ms from the agent's open: the fifth means the connection has lived
    // at least 200 ms by the agent's clock, past stableAfterMs, however slow the machine.
    await vi.waitFor(
      () => expect(cp.received("stats").filter((m) => m.socket === 1).length).toBeGreaterThanOrEqual(5),
      WAIT,
    );
    const waits = () => log.lines.filter((l) => l.includes("reconnecting in")).length;
    const before = waits();
    cp.dropSockets();
    await vi.waitFor(() => expect(cp.sockets).toHaveLength(2), WAIT);
    // The pause it chose, from its log: the first step (½–1 × 10 ms), where without the reset it
    // would be at least ½ × 10 ms · 2^5 = 160 ms.
    const delay = Number(
      /reconnecting in (\d+) ms/.exec(log.lines.filter((l) => l.includes("reconnecting in"))[before]!)![1],
    );
    expect(delay).toBeLessThanOrEqual(10);
  });

  it("refreshes its token when the socket is closed with 4001, then reconnects with the new token", async () => {
    const log = memoryLog();
    const { agent } = await start({ log });
    await vi.waitFor(() => expect(cp.openSockets()).toBe(1), WAIT);
    const [oldToken] = cp.issued;

    cp.dropSockets(4001, "token expired");
    await vi.waitFor(() => expect(cp.sockets).toHaveLength(2), WAIT);
    expect(cp.routes("token").map((r) => r.authorization)).toEqual([`Bearer ${oldToken}`]);
    expect(cp.issued).toHaveLength(2);
    expect(cp.sockets[1]!.authorization).toBe(`Bearer ${cp.issued[1]}`);
    expect(cp.routes("register")).toHaveLength(1);
    expect(agent.token).toBe(cp.issued[1]);
    expect(
      log.lines.some((l) => l.startsWith("warn control plane refused the agent token") && l.includes("4001")),
    ).toBe(true);
  });

  it("refreshes its token on an HTTP 401 to the upgrade", async () => {
    await start();
    await vi.waitFor(() => expect(cp.openSockets()).toBe(1), WAIT);
    const [oldToken] = cp.issued;
    cp.refuseUpgradesWith([oldToken!]);
    cp.dropSockets();
    await vi.waitFor(() => expect(cp.sockets).toHaveLength(2), WAIT);
    const refused = cp.upgrades.filter((u) => u.status === 401);
    // undici repeats a 401 handshake once by itself (fetch's authentication retry) before giving up.
    expect(refused.length).toBeGreaterThanOrEqual(1);
    for (const upgrade of refused) expect(upgrade.authorization).toBe(`Bearer ${oldToken}`);
    expect(cp.routes("token").map((r) => r.authorization)).toEqual([`Bearer ${oldToken}`]);
    expect(cp.sockets[1]!.authorization).toBe(`Bearer ${cp.issued[1]}`);
    expect(cp.routes("register")).toHaveLength(1);
  });

  it("registers again when the refresh after 4001 is refused too", async () => {
    const { agent } = await start();
    await vi.waitFor(() => expect(cp.openSockets()).toBe(1), WAIT);
    cp.revokeTokens();
    cp.rearmSecret();
    cp.dropSockets(4001, "token revoked");
    await vi.waitFor(() => expect(cp.sockets).toHaveLength(2), WAIT);
    expect(cp.routes("token").map((r) => r.status)).toEqual([401]);
    expect(cp.routes("register").map((r) => r.status)).toEqual([200, 200]);
    expect(cp.sockets[1]!.authorization).toBe(`Bearer ${cp.issued[1]}`);
    expect(agent.token).toBe(cp.issued[1]);
  });
});

describe("HTTP fallback", () => {
  it("fetches the config at boot and while the socket is unavailable, with If-None-Match, and ACKs over HTTP", async () => {
    await cp.close();
    cp = await startFakeControlPlane({ bootstrapSecret: SECRET, websocket: false });
    cp.setConfig(configDocument(1, replicas[0]!.url));
    // No socket ever: polls 100 ms after boot, then every 50 ms.
    const { agent } = await start({ poll: { fallbackAfterMs: 100, intervalMs: 50 } });
    await vi.waitFor(
      () => expect(cp.routes("ack").map((r) => r.body)).toEqual([{ version: 1, error: null, rejected: [] }]),
      WAIT,
    );
    expect(cp.routes("ack")[0]!.authorization).toBe(`Bearer ${cp.issued[0]}`);
    const first = cp.routes("config")[0]!;
    expect(first).toMatchObject({ method: "GET", status: 200, authorization: `Bearer ${cp.issued[0]}` });
    expect(first.headers["if-none-match"]).toBeUndefined();
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "one GET /" });
    expect((await readPersisted()).version).toBe(1);

    // Unchanged: conditional requests answered 304, nothing reported.
    await vi.waitFor(
      () => expect(cp.routes("config").filter((r) => r.status === 304).length).toBeGreaterThanOrEqual(2),
      WAIT,
    );
    for (const poll of cp.routes("config").slice(1)) expect(poll.headers["if-none-match"]).toBe('"1"');
    expect(cp.routes("ack")).toHaveLength(1);

    cp.setConfig(configDocument(2, replicas[1]!.url));
    await vi.waitFor(
      () => expect(cp.routes("ack").map((r) => r.body)).toContainEqual({ version: 2, error: null, rejected: [] }),
      WAIT,
    );
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ body: "two GET /" });

    const invalid = { ...configDocument(3, replicas[0]!.url), gateway: null };
    cp.setConfig(invalid);
    await vi.waitFor(
      () =>
        expect(cp.routes("ack").at(-1)!.body).toEqual({
          version: 3,
          error: expect.stringContaining("gateway"),
          rejected: [],
        }),
      WAIT,
    );
    expect(agent.configVersion).toBe(2);
    expect((await readPersisted()).version).toBe(2);
    // Heartbeats report health while there is no socket.
    expect(cp.routes("heartbeat").length).toBeGreaterThan(0);
  });

  it("polls only once the socket has been down for the grace period", async () => {
    cp.setConfig(configDocument(1, replicas[0]!.url));
    // Polls every 50 ms once the socket has been down 200 ms; stats every 50 ms; reconnects within 80 ms.
    // Pings every 5 s: liveness is not what this checks, and on a loaded machine a 100 ms ping's two
    // missed pongs would give the socket up and start the HTTP fallback this test watches for.
    await start({
      poll: { fallbackAfterMs: 200, intervalMs: 50 },
      socket: { ...FAST_SOCKET, statsIntervalMs: 50, pingIntervalMs: 5_000, backoff: { initialMs: 20, maxMs: 80 } },
    });
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    // Nothing over HTTP while the socket is up: watched for eight stats periods (50 ms each by the
    // agent's clock, twice the 200 ms grace period) rather than a fixed pause. Counted from the
    // socket's ACK: a socket that took longer than the grace to open at start (a loaded machine)
    // rightly had the agent poll and heartbeat meanwhile (two stats periods let a poll then in flight land).
    const up = cp.received("stats").length;
    await vi.waitFor(() => expect(cp.received("stats").length).toBeGreaterThanOrEqual(up + 2), WAIT);
    const sent = cp.received("stats").length;
    const polled = cp.routes("config").length;
    const beats = cp.routes("heartbeat").length;
    expect(polled).toBeGreaterThanOrEqual(1); // the boot fetch
    await vi.waitFor(() => expect(cp.received("stats").length).toBeGreaterThanOrEqual(sent + 8), WAIT);
    expect(cp.routes("config")).toHaveLength(polled);
    expect(cp.routes("heartbeat")).toHaveLength(beats);

    cp.setWebSocket(false);
    const droppedAt = Date.now();
    cp.dropSockets();
    cp.setConfig(configDocument(2, replicas[1]!.url));
    await vi.waitFor(
      () => expect(cp.routes("ack").map((r) => r.body)).toContainEqual({ version: 2, error: null, rejected: [] }),
      WAIT,
    );
    expect(cp.routes("config")[polled]!.at - droppedAt).toBeGreaterThanOrEqual(200 - 5);
    expect(cp.routes("heartbeat").length).toBeGreaterThan(beats);

    // Back on the socket: polling stops again.
    cp.setWebSocket(true);
    await vi.waitFor(() => expect(cp.openSockets()).toBe(1), { timeout: 5_000 });
    await vi.waitFor(() => expect(cp.received("ack").at(-1)!.version).toBe(2), WAIT);
    // Watched for four poll intervals.
    const polls = cp.routes("config").length;
    const sentAgain = cp.received("stats").length;
    await vi.waitFor(() => expect(cp.received("stats").length).toBeGreaterThanOrEqual(sentAgain + 4), WAIT);
    expect(cp.routes("config").length).toBe(polls);
  });
});

describe("restart with the control plane down", () => {
  it("serves the persisted config immediately", async () => {
    cp.setConfig(configDocument(7, replicas[0]!.url));
    const first = await start();
    await vi.waitFor(() => expect(acks()).toEqual([7]), WAIT);
    await first.agent.stop();
    const url = cp.url;
    await cp.close();

    const log = memoryLog();
    const { agent, proxy } = await start({ log, bootstrap: bootstrapFor(url) });
    expect(proxy().initialConfig).toEqual(configDocument(7, replicas[0]!.url));
    // No waiting: the first request after start is served with the persisted routes.
    expect(await get(agent.httpPort, "llama.localhost", "/v1/chat/completions")).toEqual({
      status: 200,
      body: "one GET /v1/chat/completions",
    });
    expect(agent.configVersion).toBe(7);
    expect(await healthz(agent)).toMatchObject({ config_version: 7, control_plane_connected: false });
    expect(log.lines.some((l) => l.includes("with config version 7 from"))).toBe(true);
    cp = await startFakeControlPlane({ bootstrapSecret: SECRET });
  });

  it("starts without a config when the proxy refuses the persisted one, rather than not at all", async () => {
    // Valid for the schema, refused by the proxy (two services on one host): as an older agent may have left it.
    const clash = configDocument(5, replicas[0]!.url);
    clash.services.push({ ...clash.services[0]!, name: "llama-copy" });
    await writeFile(configFile(), JSON.stringify(clash));
    const log = memoryLog();
    const { agent } = await start({ log });
    expect(agent.configVersion).toBeNull();
    expect(log.lines.some((l) => l.startsWith("error the proxy refused the last good config"))).toBe(true);
    cp.setConfig(configDocument(1, replicas[0]!.url));
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    expect(await get(agent.httpPort, "llama.localhost")).toMatchObject({ status: 200, body: "one GET /" });
  });

  it("starts without a config when the persisted one is unusable", async () => {
    await writeFile(configFile(), JSON.stringify({ version: "seven" }));
    const log = memoryLog();
    const { agent, proxy } = await start({ log });
    expect(proxy().initialConfig).toBeNull();
    expect(agent.configVersion).toBeNull();
    expect(log.lines.some((l) => l.startsWith("warn last good config") && l.includes("version"))).toBe(true);
    // The control plane's document then replaces it.
    cp.setConfig(configDocument(1, replicas[0]!.url));
    await vi.waitFor(() => expect(acks()).toEqual([1]), WAIT);
    expect((await readPersisted()).version).toBe(1);
  });
});
