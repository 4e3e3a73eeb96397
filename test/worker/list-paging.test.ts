/**
 * Paging of the lists (`worker/paging.ts`): order, the last page, bad `limit` and `cursor`, and items
 * added between pages. Catalog rows are written straight to D1 where the list reads only D1
 * (gateways, events, deliveries), so only the services case runs a gateway.
 */
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, applyService, newProject, projectId, runningGateway, servicesPath } from "./helpers.ts";

interface Page<T> {
  status: number;
  items: T[];
  next: string | null;
  link: string | null;
  body: Record<string, unknown>;
}

async function page<T>(path: string, key: string): Promise<Page<T>> {
  const res = await SELF.fetch(`http://gateplane.test${path}`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const body = (await res.json()) as Record<string, unknown>;
  return {
    status: res.status,
    items: (body[key] ?? []) as T[],
    next: res.headers.get("Gateplane-Next-Cursor"),
    link: res.headers.get("Link"),
    body,
  };
}

/** Every page of `path` with `limit`, following the cursor header. */
async function allPages<T>(path: string, key: string, limit: number, from: string | null = null): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | null = from;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const p: Page<T> = await page<T>(`${path}${sep}limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`, key);
    expect(p.status).toBe(200);
    pages.push(p.items);
    cursor = p.next;
  } while (cursor);
  return pages;
}

async function seedGateways(project: string, names: string[], startSecond: number): Promise<void> {
  const pid = await projectId(project);
  for (const [i, name] of names.entries()) {
    const created = new Date(Date.UTC(2026, 0, 1, 0, 0, startSecond + i)).toISOString();
    await env.DB.prepare(
      `INSERT INTO gateways (id, project_id, name, object_id, backend, region, status, version, snapshot, created_at, updated_at)
       VALUES (?, ?, ?, ?, 'local', 'local', 'running', 1, ?, ?, ?)`,
    )
      .bind(
        crypto.randomUUID(),
        pid,
        name,
        env.GATEWAYS.idFromName(`${pid}/${name}`).toString(),
        JSON.stringify({ name, configuration: {} }),
        created,
        created,
      )
      .run();
  }
}

async function seedEvents(project: string, count: number): Promise<void> {
  const pid = await projectId(project);
  for (let i = 0; i < count; i++) {
    await env.DB.prepare("INSERT INTO events (project_id, gateway_name, message) VALUES (?, 'gw', ?)")
      .bind(pid, `event ${i}`)
      .run();
  }
}

const expectRefused = async (path: string, key: string, field: string) => {
  const p = await page(path, key);
  expect(p.status).toBe(400);
  expect(p.body).toMatchObject({ error: { field } });
};

describe("gateways paging", () => {
  it("pages oldest first, announces the next page, and adds nothing twice when gateways arrive between pages", async () => {
    const project = await newProject();
    await seedGateways(project, ["g-a", "g-b", "g-c", "g-d", "g-e"], 0);
    const path = `/api/v1/projects/${project}/gateways`;
    const whole = await page<{ name: string }>(path, "gateways");
    expect(whole.items.map((g) => g.name)).toEqual(["g-a", "g-b", "g-c", "g-d", "g-e"]);
    expect(whole.next).toBeNull();
    const first = await page<{ name: string }>(`${path}?limit=2`, "gateways");
    expect(first.items.map((g) => g.name)).toEqual(["g-a", "g-b"]);
    // The URL is the control plane's public one (PUBLIC_URL) with the same path and query.
    expect(first.link).toMatch(new RegExp(`^<http://[^/>]+${path}\\?limit=2&cursor=${first.next}>; rel="next"$`));
    await seedGateways(project, ["g-0-newer"], 100);
    const rest = await allPages<{ name: string }>(path, "gateways", 2, first.next);
    expect(rest.map((p) => p.map((g) => g.name))).toEqual([
      ["g-c", "g-d"],
      ["g-e", "g-0-newer"],
    ]);
    const last = await page(`${path}?limit=6`, "gateways");
    expect(last.items).toHaveLength(6);
    expect(last.next).toBeNull();
    expect(last.link).toBeNull();
  });

  it("refuses a limit out of bounds or not an integer, and a cursor it did not issue, naming the field", async () => {
    const project = await newProject();
    const path = `/api/v1/projects/${project}/gateways`;
    for (const limit of ["0", "1001", "abc", "2.5", "-1", ""])
      await expectRefused(`${path}?limit=${limit}`, "gateways", "limit");
    for (const cursor of ["not-base64!", "bm9wZQ", "WyJldmVudHMiLDFd"]) {
      await expectRefused(`${path}?cursor=${cursor}`, "gateways", "cursor");
    }
    const events = await page(`/api/v1/projects/${project}/events?limit=1`, "events");
    expect(events.status).toBe(200);
  });
});

describe("events paging", () => {
  it("pages newest first, each page oldest first, as the unpaged list did; new events do not repeat older pages", async () => {
    const project = await newProject();
    await seedEvents(project, 5);
    const path = `/api/v1/projects/${project}/events`;
    const first = await page<{ message: string }>(`${path}?limit=2`, "events");
    expect(first.items.map((e) => e.message)).toEqual(["event 3", "event 4"]);
    await seedEvents(project, 1);
    const rest = await allPages<{ message: string }>(path, "events", 2, first.next);
    expect(rest.map((p) => p.map((e) => e.message))).toEqual([["event 1", "event 2"], ["event 0"]]);
    expect((await page(path, "events")).items).toHaveLength(6);
    await expectRefused(`${path}?limit=1001`, "events", "limit");
    await expectRefused(`${path}?cursor=${first.next}x`, "events", "cursor");
  });
});

describe("webhook deliveries paging", () => {
  it("pages newest first to the last page", async () => {
    const project = await newProject();
    const created = await SELF.fetch(`http://gateplane.test/api/v1/projects/${project}/webhooks`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ url: "https://example.com/hooks", events: ["*"] }),
    });
    const hook = (await created.json()) as { id: string };
    for (let i = 0; i < 5; i++) {
      await env.DB.prepare(
        `INSERT INTO webhook_deliveries (webhook_id, event_key, event_type, state, next_attempt_at, retry_until)
         VALUES (?, ?, 'gateway.status', 'delivered', 0, 0)`,
      )
        .bind(hook.id, `evt_seed_${i}`)
        .run();
    }
    const path = `/api/v1/projects/${project}/webhooks/${hook.id}/deliveries`;
    const pages = await allPages<{ event_id: string }>(path, "deliveries", 2);
    expect(pages.map((p) => p.map((d) => d.event_id))).toEqual([
      ["evt_seed_4", "evt_seed_3"],
      ["evt_seed_2", "evt_seed_1"],
      ["evt_seed_0"],
    ]);
    await expectRefused(`${path}?limit=x`, "deliveries", "limit");
    // An events cursor (`["events",1]`) is not this list's.
    await expectRefused(`${path}?cursor=WyJldmVudHMiLDFd`, "deliveries", "cursor");
  });
});

describe("services paging", () => {
  it("pages by name across the catalog; the whole list without limit", async () => {
    const project = await newProject();
    await runningGateway(project, "gw-pages");
    for (const name of ["svc-c", "svc-a", "svc-e", "svc-b", "svc-d"]) {
      expect((await applyService(project, { type: "service", name, https: false })).status).toBe(201);
    }
    const pages = await allPages<{ name: string }>(servicesPath(project), "services", 2);
    expect(pages.map((p) => p.map((s) => s.name))).toEqual([["svc-a", "svc-b"], ["svc-c", "svc-d"], ["svc-e"]]);
    expect((await page(servicesPath(project), "services")).items).toHaveLength(5);
    // More than a few names of one gateway on a page: read with one list call, in the page's order.
    const five = await page<{ name: string }>(`${servicesPath(project)}?limit=5`, "services");
    expect(five.items.map((s) => s.name)).toEqual(["svc-a", "svc-b", "svc-c", "svc-d", "svc-e"]);
    expect(five.next).toBeNull();
    await expectRefused(`${servicesPath(project)}?limit=1001`, "services", "limit");
    await expectRefused(`${servicesPath(project)}?cursor=WyJnYXRld2F5cyIsIngiLCJ5Il0`, "services", "cursor");
  });
});

describe("OpenAPI", () => {
  it("documents limit, cursor and the next-page headers of each paged list", async () => {
    const doc = (await (await SELF.fetch("http://gateplane.test/api/openapi.json")).json()) as {
      paths: Record<string, { get: { parameters: { name: string; in: string }[]; responses: Record<string, any> } }>;
    };
    for (const path of ["gateways", "services", "events", "webhooks/{id}/deliveries"]) {
      const op = doc.paths[`/api/v1/projects/{project}/${path}`]!.get;
      expect(op.parameters.filter((p) => p.in === "query").map((p) => p.name)).toEqual(["limit", "cursor"]);
      expect(Object.keys(op.responses["200"].headers)).toEqual(["Link", "Gateplane-Next-Cursor"]);
    }
  });
});
