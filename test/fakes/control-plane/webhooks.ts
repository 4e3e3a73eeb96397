/**
 * @module
 * The webhooks endpoints of {@link FakeControlPlane}, for the CLI's unit tests only (the real routes
 * and deliveries are tested in `test/worker/webhooks.test.ts`). Request bodies are validated with the
 * schemas the Worker uses, so the CLI meets the same field-named errors.
 */

import { parseOrThrow } from "../../../schema/issues.ts";
import {
  CreateWebhookRequest,
  type Delivery,
  PING_EVENT,
  UpdateWebhookRequest,
  type Webhook,
} from "../../../schema/webhooks.ts";
import { paged } from "./paging.ts";

type Reply = [number, unknown];

const error = (status: number, code: string, message: string, field?: string): Reply => [
  status,
  { error: { code, message, ...(field ? { field } : {}) } },
];

export class FakeWebhooks {
  readonly webhooks = new Map<string, Webhook>();
  readonly deliveries = new Map<string, Delivery[]>();
  /** What the next ping or redelivery's receiver answers; null means it could not be reached. */
  receiverStatus: number | null = 200;
  #ids = 0;

  seed(overrides: Partial<Webhook> = {}): Webhook {
    const id = overrides.id ?? `wh_fake${++this.#ids}`;
    const hook: Webhook = {
      id,
      url: "https://example.com/hooks",
      events: ["*"],
      description: null,
      enabled: true,
      disabled_reason: null,
      disabled_at: null,
      consecutive_failures: 0,
      failing_since: null,
      last_success_at: null,
      previous_secret_expires_at: null,
      created_at: new Date(Date.now() - 90_000).toISOString(),
      ...overrides,
    };
    this.webhooks.set(id, hook);
    this.deliveries.set(id, []);
    return hook;
  }

  seedDelivery(webhookId: string, overrides: Partial<Delivery> = {}): Delivery {
    const list = this.deliveries.get(webhookId)!;
    const d: Delivery = {
      id: list.length + 1,
      webhook_id: webhookId,
      event_id: `evt_${list.length + 100}`,
      event_type: "gateway.status",
      gateway: "edge",
      sequence: list.length + 1,
      state: "delivered",
      attempts: 1,
      next_attempt_at: null,
      last_attempt_at: new Date().toISOString(),
      last_status: 200,
      last_error: null,
      response_excerpt: "ok",
      created_at: new Date(Date.now() - 30_000).toISOString(),
      delivered_at: new Date().toISOString(),
      ...overrides,
    };
    list.unshift(d);
    return d;
  }

  /** Handles `/webhooks…` of the project; null for any other path. */
  route(method: string, rest: string, body: unknown, query = new URLSearchParams()): Reply | null {
    const m = /^\/webhooks(?:\/([^/]+))?(?:\/(deliveries|ping))?(?:\/([^/]+)\/redeliver)?$/.exec(rest);
    if (!m) return null;
    const id = m[1] && decodeURIComponent(m[1]);
    if (!id) {
      if (method === "GET") return [200, { project: "main", webhooks: [...this.webhooks.values()] }];
      if (method !== "POST") return null;
      const req = parseOrThrow(CreateWebhookRequest, body);
      const hook = this.seed({ url: req.url, events: req.events, description: req.description ?? null });
      hook.created_at = new Date().toISOString();
      return [201, { ...hook, secret: req.secret ?? "whsec_fakefakefakefakefakefakefakefake" }];
    }
    const hook = this.webhooks.get(id);
    if (!hook) return error(404, "not_found", `Webhook ${id} does not exist in project main`);
    if (m[2] === "deliveries" && !m[3]) {
      const all = this.deliveries.get(id)!;
      return [
        200,
        paged(
          all,
          query,
          (d) => String(d.id),
          "default",
          (deliveries) => ({ webhook_id: id, deliveries }),
        ),
      ];
    }
    if (m[2] === "ping" || m[3]) {
      if (!hook.enabled) return error(409, "webhook_disabled", `Webhook ${id} is disabled; enable it first`, "enabled");
      const d = m[3]
        ? this.deliveries.get(id)!.find((x) => String(x.id) === m[3])
        : this.seedDelivery(id, { event_type: PING_EVENT, event_id: "ping_fake", gateway: null, sequence: null });
      if (!d) return error(404, "not_found", `Delivery ${m[3]} does not exist for webhook ${id}`);
      d.attempts++;
      d.last_status = this.receiverStatus;
      d.state = this.receiverStatus !== null && this.receiverStatus < 300 ? "delivered" : "pending";
      d.last_error = this.receiverStatus === null ? "connect ECONNREFUSED" : `HTTP ${this.receiverStatus}`;
      return [200, d];
    }
    if (method === "GET") return [200, hook];
    if (method === "DELETE") {
      this.webhooks.delete(id);
      return [204, undefined];
    }
    if (method !== "PATCH") return null;
    const req = parseOrThrow(UpdateWebhookRequest, body);
    Object.assign(hook, {
      ...(req.url ? { url: req.url } : {}),
      ...(req.events ? { events: req.events } : {}),
      ...(req.enabled !== undefined
        ? { enabled: req.enabled, disabled_reason: req.enabled ? null : "disabled through the API" }
        : {}),
    });
    if (req.rotate_secret || req.secret) {
      hook.previous_secret_expires_at = new Date(Date.now() + 86_400_000).toISOString();
      return [200, { ...hook, secret: req.secret ?? "whsec_rotatedrotatedrotatedrotated12" }];
    }
    return [200, hook];
  }
}
