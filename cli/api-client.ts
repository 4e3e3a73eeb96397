/**
 * @module
 * The control plane's gateway and service endpoints as the CLI uses them. Every failure becomes an
 * {@link ControlPlaneError} (the server said no) or a {@link NetworkError} (the server could not be asked).
 */
import type * as v from "valibot";
import type { ProjectAcmeRequest, ProjectAcmeView } from "../schema/acme.ts";
import type {
  ApiErrorBody,
  Gateway,
  GatewayEvent,
  GatewayPlan,
  ServiceToken,
  ServiceTokenCreated,
} from "../schema/api.ts";
import { nextCursor, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from "../schema/paging.ts";
import type { PlanToApply, Spec } from "../schema/plan-envelope.ts";
import type { Service, ServiceList, ServicePlan } from "../schema/service-api.ts";
import type {
  CreateWebhookRequest,
  Delivery,
  UpdateWebhookRequest,
  Webhook,
  WebhookWithSecret,
} from "../schema/webhooks.ts";
import { ControlPlaneError, NetworkError } from "./errors.ts";
import type { Settings } from "./settings.ts";

export type ProjectAcmeInput = v.InferInput<typeof ProjectAcmeRequest>;

export interface GatewayList {
  project: string;
  gateways: Gateway[];
}

/** Long enough for a slow cold start of the Worker, short enough that a hung connection is noticed. */
const REQUEST_TIMEOUT_MS = 30_000;

export class ControlPlane {
  readonly url: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(settings: Pick<Settings, "url" | "token">, timeoutMs = REQUEST_TIMEOUT_MS) {
    this.url = settings.url;
    this.#token = settings.token;
    this.#timeoutMs = timeoutMs;
  }

  me(): Promise<{ user: string; global_admin: boolean }> {
    return this.#request("GET", "/me");
  }

  plan(project: string, spec: Spec): Promise<GatewayPlan> {
    return this.#request("POST", `${gateways(project)}/plan`, { spec });
  }

  /**
   * Creates or updates in place; with `recreate` the server re-creates the planned gateway (checked
   * before anything is deleted), `cascade` letting its services go with it.
   */
  apply(
    project: string,
    plan: PlanToApply<Gateway>,
    force: boolean,
    options: { recreate?: boolean; cascade?: boolean } = {},
  ): Promise<Gateway> {
    const extra = options.recreate ? { recreate: true, cascade: options.cascade ?? false } : {};
    return this.#request("POST", `${gateways(project)}/apply`, { plan, force, ...extra });
  }

  /** Every gateway, page by page. */
  list(project: string, signal?: AbortSignal): Promise<GatewayList> {
    return this.#all<GatewayList, "gateways">(gateways(project), "gateways", { signal });
  }

  get(project: string, name: string, signal?: AbortSignal): Promise<Gateway> {
    return this.#request("GET", `${gateways(project)}/${encodeURIComponent(name)}`, undefined, signal);
  }

  /**
   * Marks the gateway for deletion; it disappears once its hosts are gone. A gateway with services
   * is refused (409 `has_services`) unless `cascade`, which deletes them with it.
   */
  delete(project: string, name: string, cascade = false): Promise<Gateway> {
    const query = cascade ? "?cascade=true" : "";
    return this.#request("DELETE", `${gateways(project)}/${encodeURIComponent(name)}${query}`);
  }

  /** The services a gateway serves (what deleting it would take along). */
  async servicesOf(project: string, gateway: string): Promise<Service[]> {
    const list = await this.listServices(project);
    return list.services.filter((s) => s.gateway === gateway);
  }

  setDefault(project: string, name: string): Promise<Gateway> {
    return this.#request("POST", `${gateways(project)}/${encodeURIComponent(name)}/set-default`);
  }

  planService(project: string, spec: Spec): Promise<ServicePlan> {
    return this.#request("POST", `${services(project)}/plan`, { spec });
  }

  /** Creates (201) or updates in place (200) the service the plan describes. */
  applyService(project: string, plan: PlanToApply<Service>, force: boolean): Promise<Service> {
    return this.#request("POST", `${services(project)}/apply`, { plan, force });
  }

  /** Every service, page by page. */
  listServices(project: string): Promise<ServiceList> {
    return this.#all<ServiceList, "services">(services(project), "services");
  }

  getService(project: string, name: string): Promise<Service> {
    return this.#request("GET", service(project, name));
  }

  /** Immediate: the service leaves its gateway's configuration at once. */
  deleteService(project: string, name: string): Promise<Service> {
    return this.#request("DELETE", service(project, name));
  }

  /** Registers a replica endpoint, or changes its URL; `created` tells which (201 vs 200). */
  async putServiceReplica(
    project: string,
    name: string,
    replica: { id: string; url: string; role?: string; bootstrap_port?: number | string },
  ): Promise<{ service: Service; created: boolean }> {
    const path = `${service(project, name)}/replicas/${encodeURIComponent(replica.id)}`;
    const { id: _, ...body_ } = replica;
    const { status, body } = await this.#send<Service>("PUT", path, body_);
    return { service: body, created: status === 201 };
  }

  removeServiceReplica(project: string, name: string, id: string): Promise<Service> {
    return this.#request("DELETE", `${service(project, name)}/replicas/${encodeURIComponent(id)}`);
  }

  createWebhook(project: string, body: CreateWebhookRequest): Promise<WebhookWithSecret> {
    return this.#request("POST", webhooks(project), body);
  }

  listWebhooks(project: string): Promise<{ project: string; webhooks: Webhook[] }> {
    return this.#request("GET", webhooks(project));
  }

  getWebhook(project: string, id: string): Promise<Webhook> {
    return this.#request("GET", webhook(project, id));
  }

  /** Carries `secret` when the change rotated it. */
  updateWebhook(project: string, id: string, body: UpdateWebhookRequest): Promise<Webhook & { secret?: string }> {
    return this.#request("PATCH", webhook(project, id), body);
  }

  deleteWebhook(project: string, id: string): Promise<void> {
    return this.#request("DELETE", webhook(project, id));
  }

  /** The newest `max` deliveries (default 100), newest first, page by page. */
  webhookDeliveries(
    project: string,
    id: string,
    state?: string,
    max = PAGE_LIMIT_DEFAULT,
  ): Promise<{ webhook_id: string; deliveries: Delivery[] }> {
    const query = state ? `?state=${encodeURIComponent(state)}` : "";
    return this.#all(`${webhook(project, id)}/deliveries${query}`, "deliveries", { max });
  }

  /**
   * The newest `max` events (default 100) matching `query` (gateway, type), oldest first. Pages come
   * newest first, each listing its events oldest first, so each later page goes in front.
   */
  events(
    project: string,
    query: { gateway?: string; type?: string },
    max = PAGE_LIMIT_DEFAULT,
  ): Promise<{ project: string; events: GatewayEvent[] }> {
    const q = new URLSearchParams(Object.entries(query).filter((kv): kv is [string, string] => kv[1] !== undefined));
    const suffix = q.size > 0 ? `?${q}` : "";
    return this.#all(`/projects/${encodeURIComponent(project)}/events${suffix}`, "events", { max, olderLater: true });
  }

  /** Sends the delivery again at once; the answer is the delivery after that attempt. */
  redeliver(project: string, id: string, delivery: string): Promise<Delivery> {
    return this.#request("POST", `${webhook(project, id)}/deliveries/${encodeURIComponent(delivery)}/redeliver`);
  }

  ping(project: string, id: string): Promise<Delivery> {
    return this.#request("POST", `${webhook(project, id)}/ping`);
  }

  getAcme(project: string): Promise<ProjectAcmeView> {
    return this.#request("GET", `/projects/${encodeURIComponent(project)}/acme`);
  }

  putAcme(project: string, settings: ProjectAcmeInput): Promise<ProjectAcmeView> {
    return this.#request("PUT", `/projects/${encodeURIComponent(project)}/acme`, settings);
  }

  async deleteAcme(project: string): Promise<void> {
    await this.#request("DELETE", `/projects/${encodeURIComponent(project)}/acme`);
  }

  /** Any endpoint under `/api/v1`; the typed wrappers of other modules (`accounts-api.ts`) use it. */
  call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return this.#request(method, path, body);
  }

  createServiceToken(project: string, description?: string): Promise<ServiceTokenCreated> {
    return this.#request("POST", serviceTokens(project), description === undefined ? {} : { description });
  }

  listServiceTokens(project: string): Promise<{ service_tokens: ServiceToken[] }> {
    return this.#request("GET", serviceTokens(project));
  }

  async revokeServiceToken(project: string, id: string): Promise<void> {
    await this.#request("DELETE", `${serviceTokens(project)}/${encodeURIComponent(id)}`);
  }

  async #request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    return (await this.#send<T>(method, path, body, signal)).body;
  }

  /**
   * A paged list (`schema/paging.ts`) followed to its end or to `max` items: the first page's body
   * with `key` holding every item. Pages are as large as the server allows when `max` is bounded
   * (fewest requests), else {@link PAGE_LIMIT_DEFAULT}, so each page stays quick on a big project.
   */
  async #all<B extends { [k in K]: unknown[] }, K extends string>(
    path: string,
    key: K,
    options: { max?: number; signal?: AbortSignal; olderLater?: boolean } = {},
  ): Promise<B> {
    const max = options.max ?? Number.POSITIVE_INFINITY;
    const [base, query] = path.split("?", 2) as [string, string | undefined];
    let first: B | undefined;
    let items: unknown[] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams(query);
      const size = Number.isFinite(max) ? Math.min(max - items.length, PAGE_LIMIT_MAX) : PAGE_LIMIT_DEFAULT;
      q.set("limit", String(size));
      if (cursor !== null) q.set("cursor", cursor);
      const page: { body: B; headers: Headers } = await this.#send<B>("GET", `${base}?${q}`, undefined, options.signal);
      first ??= page.body;
      const got = page.body[key] ?? [];
      items = options.olderLater ? [...got, ...items] : [...items, ...got];
      cursor = nextCursor(page.headers);
    } while (cursor !== null && items.length < max);
    return { ...first!, [key]: items };
  }

  async #send<T>(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const url = `${this.url}/api/v1${path}`;
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          accept: "application/json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await response.text();
    } catch (e) {
      // The caller's own abort (Ctrl-C) is not a network problem: let it through untouched.
      if (signal?.aborted) throw e;
      if (timeout.aborted) throw new NetworkError(this.url, `no answer within ${this.#timeoutMs / 1000} s`);
      throw new NetworkError(this.url, reasonOf(e));
    }
    if (!response.ok) throw errorOf(response, text, method, url);
    const headers = response.headers;
    if (text === "") return { status: response.status, body: undefined as T, headers };
    try {
      return { status: response.status, body: JSON.parse(text) as T, headers };
    } catch {
      throw new ControlPlaneError(response.status, "bad_response", `${method} ${url} returned a body that is not JSON`);
    }
  }
}

const gateways = (project: string) => `/projects/${encodeURIComponent(project)}/gateways`;
const services = (project: string) => `/projects/${encodeURIComponent(project)}/services`;
const service = (project: string, name: string) => `${services(project)}/${encodeURIComponent(name)}`;
const webhooks = (project: string) => `/projects/${encodeURIComponent(project)}/webhooks`;
const serviceTokens = (project: string) => `/projects/${encodeURIComponent(project)}/service-tokens`;
const webhook = (project: string, id: string) => `${webhooks(project)}/${encodeURIComponent(id)}`;

function errorOf(response: Response, text: string, method: string, url: string): ControlPlaneError {
  try {
    const body = JSON.parse(text) as Partial<ApiErrorBody>;
    const error = body.error;
    if (error && typeof error.message === "string") {
      return new ControlPlaneError(response.status, String(error.code ?? "error"), error.message, error.field);
    }
  } catch {
    // Not our error shape (a proxy's HTML page, say): fall through to the status line.
  }
  const statusText = response.statusText ? ` ${response.statusText}` : "";
  return new ControlPlaneError(
    response.status,
    "http_error",
    `${method} ${url} failed: HTTP ${response.status}${statusText}`,
  );
}

/** undici hides the useful part ("connect ECONNREFUSED 127.0.0.1:8787") in `cause`. */
function reasonOf(e: unknown): string {
  if (e instanceof Error) {
    const cause = e.cause;
    // Happy-eyeballs failures (::1 and 127.0.0.1 both refused) arrive as an AggregateError without a message.
    if (cause instanceof AggregateError && !cause.message && cause.errors[0] instanceof Error) {
      return cause.errors[0].message;
    }
    if (cause instanceof Error && cause.message) return cause.message;
    if (cause && typeof cause === "object" && "code" in cause) return String(cause.code);
    return e.message;
  }
  return String(e);
}
