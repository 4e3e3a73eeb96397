/**
 * Terminal injection (issue 11, item 5): free strings with control characters (ESC sequences, NUL,
 * line breaks, DEL, C1) are refused at the API, naming the field, and nothing is stored.
 */
import { describe, expect, it } from "vitest";
import { api, applyConfig, localConfig, newProject, servicesPath, unique } from "./helpers.ts";

const ESC = "\u001b[2J\u001b[31mpwned";
const BAD = [ESC, "a\u0000b", "a\nb", "a\u007fb", "a\u009bb"];

const gatewayPlan = (project: string, configuration: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  api("POST", `/api/v1/projects/${project}/gateways/plan`, { spec: { configuration, ...extra } });
const servicePlan = (project: string, configuration: Record<string, unknown>) =>
  api("POST", `${servicesPath(project)}/plan`, { spec: { configuration } });
const echo = (extra: Record<string, unknown>) => ({ type: "service", name: "echo", gateway: "gw-cc", ...extra });

describe("control characters in free strings", () => {
  it("are refused in every free-string field, naming it", async () => {
    const p = await newProject();
    expect((await applyConfig(p, localConfig("gw-cc"))).status).toBe(201);
    const user = unique("u");
    expect((await api("POST", "/api/v1/users", { name: user })).status).toBe(201);
    const cases: [string, (bad: string) => Promise<{ status: number; body: any }>][] = [
      ["spec.configuration.region", (b) => gatewayPlan(p, { ...localConfig("gw-x"), region: b })],
      ["spec.configuration.instance_type", (b) => gatewayPlan(p, { ...localConfig("gw-x"), instance_type: b })],
      ["spec.configuration.domain", (b) => gatewayPlan(p, { ...localConfig("gw-x"), domain: `a${b}.example.com` })],
      [
        "spec.configuration.certificate.acme_server",
        (b) =>
          gatewayPlan(p, {
            ...localConfig("gw-x"),
            certificate: { type: "lets-encrypt", acme_server: `https://acme.example.com/${b}` },
          }),
      ],
      ["spec.configuration_path", (b) => gatewayPlan(p, localConfig("gw-x"), { configuration_path: `x${b}.yml` })],
      ["spec.configuration.model.name", (b) => servicePlan(p, echo({ model: { name: b } }))],
      ["spec.configuration.model", (b) => servicePlan(p, echo({ model: b }))],
      ["spec.configuration.model.prefix", (b) => servicePlan(p, echo({ model: { name: "m", prefix: `/v1${b}` } }))],
      [
        "spec.configuration.rate_limits[0].prefix",
        (b) => servicePlan(p, echo({ rate_limits: [{ prefix: `/${b}`, rps: 1 }] })),
      ],
      ["url", (b) => api("PUT", `${servicesPath(p)}/echo/replicas/r1`, { url: `http://127.0.0.1:9001/${b}` })],
      ["names[0]", (b) => api("POST", `/api/v1/projects/${p}/gateways/delete`, { names: [`gw${b}`] })],
      ["description", (b) => api("POST", `/api/v1/projects/${p}/service-tokens`, { description: b })],
      ["description", (b) => api("POST", `/api/v1/users/${user}/tokens`, { description: b })],
      [
        "description",
        (b) =>
          api("POST", `/api/v1/projects/${p}/webhooks`, {
            url: "https://h.example.com/",
            events: ["*"],
            description: b,
          }),
      ],
      [
        "url",
        (b) => api("POST", `/api/v1/projects/${p}/webhooks`, { url: `https://h.example.com/${b}`, events: ["*"] }),
      ],
      ["eab.kid", (b) => api("PUT", `/api/v1/projects/${p}/acme`, { eab: { kid: b, hmac_key: "a".repeat(32) } })],
      [
        "directory_url",
        (b) => api("PUT", `/api/v1/projects/${p}/acme`, { directory_url: `https://ca.example.com/${b}` }),
      ],
      [
        "api_token",
        (b) => api("PUT", `/api/v1/projects/${p}/dns/cloudflare`, { api_token: b, zone_id: "0".repeat(32) }),
      ],
      [
        "vpc_id",
        (b) =>
          api("PUT", `/api/v1/projects/${p}/backends/aws`, {
            access_key_id: "AKIAABCDEFGHIJKLMNOP",
            secret_access_key: "s",
            vpc_id: b,
          }),
      ],
    ];
    // The service exists for the replica case; the rest refer to nothing that must exist.
    expect(
      (await api("POST", `${servicesPath(p)}/plan`, { spec: { configuration: echo({ auth: false }) } })).status,
    ).toBe(200);
    for (const [field, call] of cases) {
      for (const bad of BAD) {
        const res = await call(bad);
        expect(res.status, `${field} with ${JSON.stringify(bad)}: ${JSON.stringify(res.body)}`).toBe(400);
        // Configuration errors name the field within the configuration (as the CLI locates them).
        const relative = (f: string) => f.replace(/^spec\.configuration\./, "");
        expect(relative(res.body.error.field), `${field} with ${JSON.stringify(bad)}`).toBe(relative(field));
        expect(res.body.error.message, `${field} with ${JSON.stringify(bad)}`).toMatch(/control characters/);
      }
    }
    const one = await gatewayPlan(p, { ...localConfig("gw-x"), region: ESC });
    expect(one.body.error.message).toMatch(/must not contain control characters .*found U\+001B/);
  });

  it("are refused in gateway configurations applied, so nothing is stored", async () => {
    const p = await newProject();
    const res = await applyConfig(p, { ...localConfig("gw-cc2"), region: `local${ESC}` });
    expect(res.status).toBe(400);
    expect((await api("GET", `/api/v1/projects/${p}/gateways`)).body.gateways).toEqual([]);
  });
});
