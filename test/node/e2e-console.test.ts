/**
 * The web console in headless Chromium against the shared `npm start` stack: a local gateway, two
 * services (one with traffic, one whose model name and replica URL are markup), a webhook whose
 * description is markup. Signs in with a token (HttpOnly, SameSite=Strict cookie; the page's script
 * cannot read it), navigates by link and keyboard, waits for the requests/s chart to show the
 * traffic the test sent without a reload, checks that a member sees only their project, that no
 * user string ran as markup (no element, no dialog, no CSP violation), and that pages fit a phone.
 *
 * With GATEPLANE_SCREENSHOTS=<dir> (`npm run docs:screenshots`) it also writes the screenshots of
 * docs/console.md there.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Gateway } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import type { ServiceMetrics } from "../../schema/service-metrics.ts";
import { type FakeModelServer, startFakeModelServer } from "../fakes/model-server.ts";
import { Browser, type Page } from "../support/browser.ts";
import { type SharedStack, sharedStack } from "../support/shared-stack.ts";
import { projectApi, cli as run, until } from "../support/stack.ts";

const SHOTS = process.env.GATEPLANE_SCREENSHOTS ?? "";
const REQUESTS = 6;
/** In every user-controlled string the console shows; rendered as text, it creates no element. */
const XSS = `<img src=x data-xss onerror="alert('xss')"><script>alert('xss')</script>`;

let stack: SharedStack;
let model: FakeModelServer;
let browser: Browser;

beforeAll(async () => {
  [model, stack, browser] = await Promise.all([
    startFakeModelServer("m", { ttftMs: 40, itlMs: 5, tokens: ["a ", "b "], promptTokens: 3 }),
    sharedStack("console"),
    Browser.launch(),
  ]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.release();
  await model?.close();
}, 60_000);

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${stack.url}/console`);
  await page.type("#token", token);
  await page.loading(() => page.press("Enter"));
}

const shot = async (page: Page, name: string) => {
  if (SHOTS) await page.screenshot(path.join(SHOTS, `${name}.png`));
};

/** No markup from a user string became an element, nothing ran, and the pages kept to the CSP. */
async function expectInert(page: Page): Promise<void> {
  expect(await page.eval<number>("document.querySelectorAll('[data-xss], script:not([src])').length")).toBe(0);
  expect(page.dialogs).toEqual([]);
  expect(page.problems).toEqual([]);
}

describe("the web console", () => {
  it("shows gateways, services, traffic charts, events and webhooks to whoever may see them", async () => {
    const gatewayFile = path.join(stack.dir, "gw.dstack.yml");
    await writeFile(
      gatewayFile,
      "type: gateway\nname: console-gw\nbackend: local\ndomain: console.localhost\ntags:\n  team: ml-infra/a=b:c@d\n",
    );
    const serviceFile = path.join(stack.dir, "chat.dstack.yml");
    await writeFile(
      serviceFile,
      "type: service\nname: chat\ngateway: console-gw\nhttps: false\nauth: false\nmodel: m1\n",
    );
    const evilFile = path.join(stack.dir, "evil.dstack.yml");
    await writeFile(
      evilFile,
      `type: service\nname: evil\ngateway: console-gw\nhttps: false\nauth: false\nmodel: ${JSON.stringify(XSS)}\n`,
    );
    const gw = await run(stack, "apply", "-f", gatewayFile, "-y");
    expect(gw.code, gw.stderr).toBe(0);
    const [chat, evil] = await Promise.all([
      run(stack, "apply", "-f", serviceFile, "-y", "-d"),
      run(stack, "apply", "-f", evilFile, "-y", "-d"),
    ]);
    expect(chat.code, chat.stderr).toBe(0);
    expect(evil.code, evil.stderr).toBe(0);
    await projectApi(stack, "PUT", "/services/chat/replicas/r1", { url: model.url });
    await projectApi(stack, "PUT", "/services/evil/replicas/r1", { url: `http://127.0.0.1:9/${XSS}` });
    await projectApi(stack, "POST", "/webhooks", {
      url: "http://127.0.0.1:9/hook",
      events: ["*"],
      description: XSS,
    });
    const host = await until("the service on the gateway replica", async () => {
      const s = await projectApi<Service>(stack, "GET", "/services/chat");
      const g = await projectApi<Gateway>(stack, "GET", "/gateways/console-gw");
      return s.gateway_replicas[0]?.state === "in_sync" ? g.replicas[0]?.hostname : null;
    });
    for (let i = 0; i < REQUESTS; i++) {
      const res = await fetch(`http://${host}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "m1", messages: [{ role: "user", content: "hi" }] }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }

    // Sign in: the token goes into an HttpOnly, SameSite=Strict cookie the page cannot read.
    const page = await browser.newPage();
    await page.viewport(1280, 900);
    await page.goto(`${stack.url}/console`);
    await shot(page, "sign-in");
    await signIn(page, "gpt_not_a_real_token_0123456789");
    expect(await page.text("[role=alert]")).toMatch(/not accepted/);
    await page.type("#token", stack.token);
    await page.loading(() => page.press("Enter"));
    const cookie = (await page.cookies()).find((c) => c.name === "gp_console");
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/console" });
    expect(await page.eval("document.cookie")).toBe("");
    expect(await page.text("main")).toContain(stack.project);

    // Keyboard: the skip link comes first, then the projects, and Enter follows a link.
    await page.press("Tab");
    expect(await page.eval("document.activeElement.textContent")).toBe("Skip to content");
    await page.eval(`document.querySelector('main a[href$="/p/${stack.project}"]').focus()`);
    await page.loading(() => page.press("Enter"));
    expect(await page.eval("location.pathname")).toBe(`/console/p/${stack.project}`);
    await page.waitFor(`document.querySelector('main')?.innerText.includes('console-gw')`, "the gateway listed");
    await shot(page, "project");

    await page.loading(() => page.eval(`document.querySelector('a[href$="/gateways/console-gw"]').click()`));
    const gatewayText = await page.text("main");
    expect(gatewayText).toContain("team=ml-infra/a=b:c@d");
    expect(gatewayText).toContain("console.localhost");
    expect(gatewayText).toMatch(/running/);
    await shot(page, "gateway");

    // The chart shows what was sent, refreshed in place (no reload) once the agent reports it.
    await page.goto(`${stack.url}/console/p/${stack.project}/services/chat`);
    const last = await page.waitFor<string>(
      `(() => { const c = document.querySelector('[data-chart=rps]'); return c && Number(c.dataset.last) * 60 >= ${REQUESTS} && c.dataset.last; })()`,
      "the requests/s chart to show the traffic",
      30_000,
    );
    expect(Number(last) * 60).toBeCloseTo(REQUESTS, 0);
    const metrics = await projectApi<ServiceMetrics>(stack, "GET", "/services/chat/metrics?range=1h");
    expect(metrics.points.at(-1)!.ttft.p50).toBeGreaterThan(0.02);
    expect(
      await page.eval("document.querySelector('[data-chart=ttft] svg[role=img]').getAttribute('aria-label')"),
    ).toMatch(/Time to first token: p50 \d+ ms/);
    // Each replica's health as the gateway replicas report it (its first check passed: healthy).
    await page.waitFor<boolean>(
      `(() => [...document.querySelectorAll("table tbody tr")].some((tr) => tr.innerText.includes("r1") && tr.innerText.includes("healthy")))()`,
      "the replica's health on the service page",
      30_000,
    );
    await shot(page, "service");

    // Every user string shown as text: the model name, the replica's URL, the webhook's description.
    await page.goto(`${stack.url}/console/p/${stack.project}/services/evil`);
    expect(await page.text("[data-field=model]")).toContain(XSS);
    expect(await page.text("main")).toContain(`http://127.0.0.1:9/${XSS}`);
    await page.goto(`${stack.url}/console/p/${stack.project}/webhooks`);
    expect(await page.text("[data-field=description]")).toBe(XSS);
    await shot(page, "webhooks");
    await page.goto(`${stack.url}/console/p/${stack.project}/events?type=service.replica.registered`);
    const events = await page.text("main");
    // The event's data, as JSON: the URL with its quotes escaped.
    expect(events).toContain(JSON.stringify(`http://127.0.0.1:9/${XSS}`));
    const types = await page.eval<string[]>(
      "[...document.querySelectorAll('tr[data-event] td:nth-child(4)')].map((td) => td.textContent)",
    );
    expect(new Set(types)).toEqual(new Set(["service.replica.registered"]));
    await shot(page, "events");
    await expectInert(page);

    // A phone's width: nothing wider than the screen but the tables' own scrolling wrappers.
    await page.viewport(390, 844, true);
    await page.goto(`${stack.url}/console/p/${stack.project}/services/chat`);
    expect(await page.eval<number>("document.documentElement.scrollWidth")).toBeLessThanOrEqual(390);
    await shot(page, "service-phone");

    // Sign-out is a POST from the console's own page; the session is gone after it.
    await page.viewport(1280, 900);
    await page.loading(() => page.eval("document.querySelector('form[action=\"/console/sign-out\"] button').click()"));
    expect(await page.eval("document.querySelector('#token') !== null")).toBe(true);
    expect((await page.cookies()).find((c) => c.name === "gp_console")).toBeUndefined();
  }, 90_000);

  it("shows a member only their projects, and refuses the others", async () => {
    const other = `${stack.project}-x`;
    const admin = { authorization: `Bearer ${stack.token}`, "content-type": "application/json" };
    await fetch(`${stack.url}/api/v1/projects`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name: other }),
    });
    const name = stack.scoped("viewer");
    const user = await fetch(`${stack.url}/api/v1/users`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ name }),
    });
    const { token } = (await user.json()) as { token: string };
    await projectApi(stack, "PUT", `/members/${name}`, { role: "member" });

    const page = await browser.newPage();
    await signIn(page, token);
    const projects = await page.text("main");
    expect(projects).toContain(stack.project);
    expect(projects).not.toContain(other);
    await page.goto(`${stack.url}/console/p/${other}`);
    expect(await page.text("main")).toMatch(/not a member/);
    await page.goto(`${stack.url}/console/p/${stack.project}`);
    expect(await page.text("main")).toMatch(/Read-only: your role in this project is member/);
    await expectInert(page);
  }, 30_000);
});
