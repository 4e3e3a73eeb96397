/**
 * @module
 * The Hono app: one sub-app per resource, auth in front of everything user-facing, and errors
 * rendered once as `{error: {code, message, field?}}`.
 */
import { Hono } from "hono";
import type { ApiErrorBody } from "../schema/api.ts";
import { jwks } from "./agent-tokens.ts";
import { type AppEnv, requireAuth } from "./auth.ts";
import { consoleRoutes } from "./console/routes.ts";
import { ApiError, toApiError } from "./errors.ts";
import { openApiDocument } from "./openapi.ts";
import { agentRoutes } from "./routes/agent.ts";
import { projectsRoutes } from "./routes/projects.ts";
import { meRoutes, tokensRoutes, usersRoutes } from "./routes/users.ts";

export const app = new Hono<AppEnv>();

app.onError((err, c) => {
  const e = toApiError(err);
  if (e.status >= 500) console.error(err);
  const body: ApiErrorBody = { error: { code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) } };
  return c.json(body, e.status);
});
app.notFound(() => {
  throw new ApiError(404, "not_found", "no such route");
});

app.get("/api/v1/health", (c) => c.json({ ok: true }));
app.get("/api/openapi.json", (c) => c.json(openApiDocument()));
app.get("/.well-known/jwks.json", async (c) => c.json(await jwks(c.env)));
app.route("/api/v1/agent", agentRoutes);
// The web console reads through this same app, with its session's token as the bearer.
app.route(
  "/console",
  consoleRoutes((request, env) => Promise.resolve(app.fetch(request, env))),
);

app.use("/api/v1/*", requireAuth);
app.route("/api/v1/me", meRoutes);
app.route("/api/v1/users", usersRoutes);
app.route("/api/v1/tokens", tokensRoutes);
app.route("/api/v1/projects", projectsRoutes);
