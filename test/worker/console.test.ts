import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, api, newProject, newUser } from "./helpers.ts";

// The console's session and headers through the real Worker (PUBLIC_URL is http://127.0.0.1:8787):
// the cookie's flags, the CSRF check of sign-in and sign-out, the CSP, a revoked token ending the
// session, and the metrics route's answers.

const ORIGIN = "http://127.0.0.1:8787";

async function signIn(token: string, origin: string | null = ORIGIN) {
  return SELF.fetch(`${ORIGIN}/console/sign-in`, {
    method: "POST",
    redirect: "manual",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(origin ? { origin } : {}) },
    body: new URLSearchParams({ token }).toString(),
  });
}

const cookieOf = (res: Response) => res.headers.get("set-cookie")?.split(";")[0] ?? "";

describe("the console's session", () => {
  it("keeps the token in an HttpOnly, SameSite=Strict cookie for /console (not Secure on loopback HTTP)", async () => {
    const res = await signIn(ADMIN);
    expect(res.status).toBe(303);
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toMatch(/^gp_console=/);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).toContain("Path=/console");
    expect(cookie).not.toContain("Secure");

    const page = await SELF.fetch(`${ORIGIN}/console`, { headers: { cookie: cookieOf(res) } });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toMatch(/script-src 'self'; style-src 'self'/);
    expect(page.headers.get("content-security-policy")).not.toMatch(/unsafe-inline/);
    const html = await page.text();
    expect(html).toContain("Projects");
    expect(html).not.toMatch(/<script>|<style>| style="| on\w+="/);
  });

  it("refuses sign-in and sign-out from another origin, and a token the API refuses", async () => {
    expect((await signIn(ADMIN, "https://evil.example")).status).toBe(403);
    expect((await signIn(ADMIN, null)).status).toBe(403);
    expect((await signIn("gpt_nope_nope")).status).toBe(401);
    const out = await SELF.fetch(`${ORIGIN}/console/sign-out`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: "https://evil.example", cookie: cookieOf(await signIn(ADMIN)) },
    });
    expect(out.status).toBe(403);
    const ok = await SELF.fetch(`${ORIGIN}/console/sign-out`, {
      method: "POST",
      redirect: "manual",
      headers: { origin: ORIGIN },
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("set-cookie")).toMatch(/^gp_console=; .*Max-Age=0/);
  });

  it("ends when the token is revoked, and shows a member nothing of another project", async () => {
    const project = await newProject();
    const other = await newProject();
    const token = await newUser(project, "member");
    const cookie = cookieOf(await signIn(token));
    const own = await SELF.fetch(`${ORIGIN}/console/p/${project}`, { headers: { cookie } });
    expect(own.status).toBe(200);
    expect(await own.text()).toContain("Read-only");
    const theirs = await SELF.fetch(`${ORIGIN}/console/p/${other}`, { headers: { cookie } });
    expect(theirs.status).toBe(403);

    const id = token.split("_")[1];
    await api("DELETE", `/api/v1/tokens/${id}`, undefined, token);
    const after = await SELF.fetch(`${ORIGIN}/console/p/${project}`, { headers: { cookie }, redirect: "manual" });
    expect(after.status).toBe(303);
    expect(after.headers.get("set-cookie")).toContain("Max-Age=0");
  });
});

describe("GET …/services/:name/metrics", () => {
  it("refuses an unknown range and a missing service", async () => {
    const project = await newProject();
    const bad = await api("GET", `/api/v1/projects/${project}/services/nope/metrics?range=7d`);
    expect(bad.status).toBe(400);
    const missing = await api("GET", `/api/v1/projects/${project}/services/nope/metrics`);
    expect(missing.status).toBe(404);
    const doc = await api("GET", "/api/openapi.json", undefined, null);
    expect(doc.body.paths["/api/v1/projects/{project}/services/{name}/metrics"].get).toBeTruthy();
    expect(doc.body.components.schemas.ServiceMetrics).toBeTruthy();
  });
});
