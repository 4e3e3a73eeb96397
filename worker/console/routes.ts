/**
 * @module
 * `/console`: the web console, served by the Worker. It reads everything through the HTTPS API
 * itself (an in-process `fetch` of the same app with the session's token as the bearer): the token
 * check, the project roles and the views are the API's, so the console shows exactly what that
 * token may see and nothing else. Read-only: the only forms are sign-in, sign-out and filters.
 * Pages are HTML built with `h` (every user string escaped), served with a strict CSP; `<main>`
 * refreshes itself from the same URL (`x-console-fragment: 1`) every few seconds.
 */
import { type Context, Hono } from "hono";
import type { Env } from "../../core/env.ts";
import type { Gateway, GatewayEvent, Project } from "../../schema/api.ts";
import type { Service } from "../../schema/service-api.ts";
import type { ServiceMetrics } from "../../schema/service-metrics.ts";
import type { Delivery, Webhook } from "../../schema/webhooks.ts";
import type { AppEnv } from "../auth.ts";
import { CONSOLE_CSS, CONSOLE_JS } from "./assets.ts";
import { type Html, h } from "./html.ts";
import { page, SECURITY_HEADERS, type Shell } from "./layout.ts";
import { gatewayPage } from "./pages-gateway.ts";
import { eventsPage, projectPage, projectsPage, signInPage, webhooksPage } from "./pages-project.ts";
import { servicePage } from "./pages-service.ts";
import { consoleUrl, sameOrigin, sessionCookie, sessionToken, transportAllowed } from "./session.ts";

/** The API, as the console calls it: the app's own `fetch`. */
export type ApiFetch = (request: Request, env: Env) => Promise<Response>;

const REFRESH_MS = 5_000;

class ApiFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Api = <T>(path: string) => Promise<T>;

function htmlResponse(body: Html | string, status = 200, extra: Record<string, string> = {}): Response {
  return new Response(String(body), {
    status,
    headers: { "content-type": "text/html; charset=utf-8", ...SECURITY_HEADERS, ...extra },
  });
}

const redirect = (to: string, extra: Record<string, string> = {}) =>
  new Response(null, { status: 303, headers: { location: to, ...SECURITY_HEADERS, ...extra } });

const enc = encodeURIComponent;

export function consoleRoutes(apiFetch: ApiFetch): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  const apiFor =
    (c: Context<AppEnv>, token: string): Api =>
    async <T>(path: string) => {
      const url = new URL(`/api/v1${path}`, c.req.url);
      const res = await apiFetch(new Request(url, { headers: { authorization: `Bearer ${token}` } }), c.env);
      const body = (await res.json().catch(() => null)) as { error?: { message?: string } } | null;
      if (!res.ok) throw new ApiFailure(res.status, body?.error?.message ?? `HTTP ${res.status}`);
      return body as T;
    };

  /**
   * A signed-in page: `build` reads through the API and returns the shell's title and project and
   * the body. Without a session: the sign-in page (or 401 to a refresh); a token the API no longer
   * accepts ends the session; the API's 403/404 become the page's.
   */
  const signedIn =
    (build: (api: Api, c: Context<AppEnv>) => Promise<{ shell: Omit<Shell, "user">; body: Html }>) =>
    async (c: Context<AppEnv>) => {
      const fragment = c.req.header("x-console-fragment") === "1";
      const token = sessionToken(c);
      if (!token) {
        if (fragment) return htmlResponse("", 401);
        if (new URL(c.req.url).pathname !== "/console") return redirect("/console");
        return htmlResponse(page({ title: "Sign in", user: null }, signInPage(null)));
      }
      const api = apiFor(c, token);
      try {
        const me = await api<{ user: string }>("/me");
        const { shell, body } = await build(api, c);
        if (fragment) return htmlResponse(body);
        return htmlResponse(page({ ...shell, user: me.user, refreshMs: shell.refreshMs ?? REFRESH_MS }, body));
      } catch (e) {
        if (!(e instanceof ApiFailure)) throw e;
        if (e.status === 401) {
          const cookie = { "set-cookie": sessionCookie(consoleUrl(c), null) };
          return fragment ? htmlResponse("", 401, cookie) : redirect("/console", cookie);
        }
        const status = e.status === 403 || e.status === 404 || e.status === 400 ? e.status : 502;
        const body = h`<h1>${status === 403 ? "Not allowed" : status === 404 ? "Not found" : "Error"}</h1><p role="alert">${e.message}</p><p><a href="/console">Back to your projects</a></p>`;
        return htmlResponse(fragment ? body : page({ title: "Error", user: null }, body), status);
      }
    };

  const projectShell = async (api: Api, name: string) => {
    const project = await api<Project>(`/projects/${enc(name)}`);
    return { project, shell: { project: { name: project.name, role: project.role } } };
  };

  app.get(
    "/assets/console.js",
    () =>
      new Response(CONSOLE_JS, {
        headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "max-age=300", ...noSniff },
      }),
  );
  app.get(
    "/assets/console.css",
    () =>
      new Response(CONSOLE_CSS, {
        headers: { "content-type": "text/css; charset=utf-8", "cache-control": "max-age=300", ...noSniff },
      }),
  );

  app.post("/sign-in", async (c) => {
    const url = consoleUrl(c);
    if (!sameOrigin(c)) return htmlResponse("cross-origin sign-in refused", 403);
    const refuse = (message: string, status: number) =>
      htmlResponse(page({ title: "Sign in", user: null }, signInPage(message)), status);
    if (!transportAllowed(url)) return refuse("Sign in over HTTPS: the session cookie is Secure.", 400);
    const form = await c.req.formData().catch(() => null);
    const token = String(form?.get("token") ?? "").trim();
    if (!/^[A-Za-z0-9_]{8,200}$/.test(token)) return refuse("That is not an API token.", 401);
    try {
      await apiFor(c, token)("/me");
    } catch (e) {
      if (e instanceof ApiFailure) return refuse(`The token was not accepted: ${e.message}`, 401);
      throw e;
    }
    return redirect("/console", { "set-cookie": sessionCookie(url, token) });
  });

  app.post("/sign-out", async (c) => {
    if (!sameOrigin(c)) return htmlResponse("cross-origin sign-out refused", 403);
    return redirect("/console", { "set-cookie": sessionCookie(consoleUrl(c), null) });
  });

  app.get(
    "/",
    signedIn(async (api) => {
      const { projects } = await api<{ projects: Project[] }>("/projects");
      return { shell: { title: "Projects", refreshMs: 0 }, body: projectsPage(projects) };
    }),
  );

  app.get(
    "/p/:project",
    signedIn(async (api, c) => {
      const { project, shell } = await projectShell(api, c.req.param("project")!);
      const base = `/projects/${enc(project.name)}`;
      const [{ gateways }, { services }] = await Promise.all([
        api<{ gateways: Gateway[] }>(`${base}/gateways`),
        api<{ services: Service[] }>(`${base}/services`),
      ]);
      // The list comes from the catalog; each gateway's own view carries its agents' last reports.
      const live = await Promise.all(
        gateways.map((g) => (g.to_be_deleted ? g : api<Gateway>(`${base}/gateways/${enc(g.name)}`).catch(() => g))),
      );
      return { shell: { ...shell, title: project.name }, body: projectPage(project, live, services) };
    }),
  );

  app.get(
    "/p/:project/gateways/:name",
    signedIn(async (api, c) => {
      const { project, shell } = await projectShell(api, c.req.param("project")!);
      const base = `/projects/${enc(project.name)}`;
      const [g, { services }] = await Promise.all([
        api<Gateway>(`${base}/gateways/${enc(c.req.param("name")!)}`),
        api<{ services: Service[] }>(`${base}/services`),
      ]);
      return { shell: { ...shell, title: `Gateway ${g.name}` }, body: gatewayPage(project.name, g, services) };
    }),
  );

  app.get(
    "/p/:project/services/:name",
    signedIn(async (api, c) => {
      const { project, shell } = await projectShell(api, c.req.param("project")!);
      const path = `/projects/${enc(project.name)}/services/${enc(c.req.param("name")!)}`;
      const range = c.req.query("range") === "1d" ? "1d" : "1h";
      const [s, m] = await Promise.all([api<Service>(path), api<ServiceMetrics>(`${path}/metrics?range=${range}`)]);
      return { shell: { ...shell, title: `Service ${s.name}` }, body: servicePage(project.name, s, m) };
    }),
  );

  app.get(
    "/p/:project/events",
    signedIn(async (api, c) => {
      const { project, shell } = await projectShell(api, c.req.param("project")!);
      const base = `/projects/${enc(project.name)}`;
      const filters = { gateway: c.req.query("gateway") ?? "", type: c.req.query("type") ?? "" };
      const query = new URLSearchParams({ limit: "200" });
      if (filters.gateway) query.set("gateway", filters.gateway);
      if (filters.type) query.set("type", filters.type);
      const [{ events }, { gateways }] = await Promise.all([
        api<{ events: GatewayEvent[] }>(`${base}/events?${query}`),
        api<{ gateways: Gateway[] }>(`${base}/gateways`),
      ]);
      const names = gateways.map((g) => g.name);
      return { shell: { ...shell, title: "Events" }, body: eventsPage(project.name, events, filters, names) };
    }),
  );

  app.get(
    "/p/:project/webhooks",
    signedIn(async (api, c) => {
      const { project, shell } = await projectShell(api, c.req.param("project")!);
      const base = `/projects/${enc(project.name)}/webhooks`;
      const { webhooks } = await api<{ webhooks: Webhook[] }>(base);
      const hooks = await Promise.all(
        webhooks.map(async (hook) => ({
          hook,
          deliveries: (await api<{ deliveries: Delivery[] }>(`${base}/${enc(hook.id)}/deliveries?limit=10`)).deliveries,
        })),
      );
      return { shell: { ...shell, title: "Webhooks" }, body: webhooksPage(project.name, hooks) };
    }),
  );

  return app;
}

const noSniff = { "x-content-type-options": "nosniff" };
