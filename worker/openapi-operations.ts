/**
 * @module
 * The API's operations as the OpenAPI document lists them: per path and method, its tag, summary,
 * request and response schemas (by their names in `openapi-schemas.ts`), status and paging. A route
 * added to the Worker gets its entry here.
 */
import { PAGE_LIMIT_DEFAULT } from "../schema/paging.ts";
import type { SchemaName } from "./openapi-schemas.ts";

export interface Op {
  summary: string;
  body?: SchemaName;
  response?: SchemaName;
  status?: string;
  tag: string;
  auth?: false;
  /** A paged list (`schema/paging.ts`): what it returns without `limit` and `cursor`. */
  paged?: string;
}

export const OPERATIONS: Record<string, Record<string, Op>> = {
  "/api/v1/projects/{project}/gateways/plan": {
    post: {
      tag: "gateways",
      summary: "Plan a configuration: create, update in place or re-create",
      body: "PlanRequest",
      response: "GatewayPlan",
    },
  },
  "/api/v1/projects/{project}/gateways/apply": {
    post: {
      tag: "gateways",
      summary:
        "Apply a plan (optimistic concurrency on current_resource; force overrides; recreate re-creates, checked before anything is deleted)",
      body: "ApplyRequest",
      response: "Gateway",
    },
  },
  "/api/v1/projects/{project}/gateways": {
    get: {
      tag: "gateways",
      summary: "List gateways, oldest first",
      response: "GatewayList",
      paged: "every gateway",
    },
  },
  "/api/v1/projects/{project}/gateways/delete": {
    post: {
      tag: "gateways",
      summary: "Delete gateways (asynchronous); 409 has_services unless cascade: true",
      body: "DeleteGatewaysRequest",
      status: "202",
    },
  },
  "/api/v1/projects/{project}/gateways/{name}": {
    get: { tag: "gateways", summary: "Get a gateway", response: "Gateway" },
    delete: {
      tag: "gateways",
      summary: "Delete a gateway (asynchronous); 409 has_services unless ?cascade=true",
      response: "Gateway",
      status: "202",
    },
  },
  "/api/v1/projects/{project}/gateways/{name}/set-default": {
    post: { tag: "gateways", summary: "Make a gateway the project's default", response: "Gateway" },
  },
  "/api/v1/projects/{project}/services/plan": {
    post: {
      tag: "services",
      summary: "Plan a service configuration",
      body: "ServicePlanRequest",
      response: "ServicePlan",
    },
  },
  "/api/v1/projects/{project}/services/apply": {
    post: { tag: "services", summary: "Apply a service plan", body: "ServiceApplyRequest", response: "Service" },
  },
  "/api/v1/projects/{project}/services": {
    get: { tag: "services", summary: "List services by name", paged: "every service" },
  },
  "/api/v1/projects/{project}/services/{name}": {
    get: { tag: "services", summary: "Get a service", response: "Service" },
    delete: { tag: "services", summary: "Remove a service from its gateway", response: "Service" },
  },
  "/api/v1/projects/{project}/services/{name}/metrics": {
    get: {
      tag: "services",
      summary:
        "A service's history: 1-minute points over ?range=1h (default) or 5-minute points over 1d, and its scaling decisions",
      response: "ServiceMetrics",
    },
  },
  "/api/v1/projects/{project}/services/{name}/replicas/{id}": {
    put: {
      tag: "services",
      summary: "Register or move a replica endpoint",
      body: "PutReplicaRequest",
      response: "Service",
    },
    delete: { tag: "services", summary: "Unregister a replica endpoint", response: "Service" },
  },
  "/api/v1/projects/{project}/events": {
    get: {
      tag: "projects",
      summary: "Audit trail, newest page first, each page oldest first (query: gateway, type, limit, cursor)",
      paged: `the newest ${PAGE_LIMIT_DEFAULT}`,
    },
  },
  "/api/v1/projects/{project}/webhooks": {
    get: { tag: "webhooks", summary: "List webhook endpoints" },
    post: {
      tag: "webhooks",
      summary: "Register a webhook endpoint; the response carries its signing secret, once",
      body: "CreateWebhookRequest",
      response: "Webhook",
      status: "201",
    },
  },
  "/api/v1/projects/{project}/webhooks/{id}": {
    get: { tag: "webhooks", summary: "Get a webhook endpoint", response: "Webhook" },
    patch: {
      tag: "webhooks",
      summary: "Change url, events, enabled (re-enable after auto-disable) or rotate the secret",
      body: "UpdateWebhookRequest",
      response: "Webhook",
    },
    delete: { tag: "webhooks", summary: "Delete a webhook endpoint and its delivery log", status: "204" },
  },
  "/api/v1/projects/{project}/webhooks/{id}/deliveries": {
    get: {
      tag: "webhooks",
      summary: "Delivery log, newest first (query: state, limit, cursor)",
      paged: `the newest ${PAGE_LIMIT_DEFAULT}`,
    },
  },
  "/api/v1/projects/{project}/webhooks/{id}/deliveries/{delivery}/redeliver": {
    post: {
      tag: "webhooks",
      summary: "Send a delivery again now (same event id)",
      response: "WebhookDelivery",
    },
  },
  "/api/v1/projects/{project}/webhooks/{id}/ping": {
    post: { tag: "webhooks", summary: "Send a signed ping event now", response: "WebhookDelivery" },
  },
  "/api/v1/projects": {
    get: { tag: "projects", summary: "Projects visible to the caller" },
    post: {
      tag: "projects",
      summary: "Create a project (global admin)",
      body: "CreateProjectRequest",
      response: "Project",
      status: "201",
    },
  },
  "/api/v1/projects/{project}": { get: { tag: "projects", summary: "Get a project", response: "Project" } },
  "/api/v1/projects/{project}/members": { get: { tag: "projects", summary: "List members" } },
  "/api/v1/projects/{project}/members/{user}": {
    put: { tag: "projects", summary: "Add a member or change its role", body: "SetMemberRequest" },
    delete: { tag: "projects", summary: "Remove a member", status: "204" },
  },
  "/api/v1/projects/{project}/service-tokens": {
    get: {
      tag: "projects",
      summary: "The project's service tokens (never their secrets)",
      response: "ServiceTokenList",
    },
    post: {
      tag: "projects",
      summary:
        "Create a service token (any member): gps_… opens the project's services on its gateways and is refused by this API; shown once",
      body: "CreateServiceTokenRequest",
      response: "ServiceTokenCreated",
      status: "201",
    },
  },
  "/api/v1/projects/{project}/service-tokens/{id}": {
    delete: { tag: "projects", summary: "Revoke a service token (its gateways get a new version)", status: "204" },
  },
  "/api/v1/projects/{project}/backends": {
    get: { tag: "backends", summary: "Backends and whether they are configured" },
  },
  "/api/v1/projects/{project}/backends/{type}": {
    put: {
      tag: "backends",
      summary:
        "Set a backend's credentials (stored encrypted); body per type: AwsCredentials, GcpCredentials, AzureCredentials, KubernetesCredentials",
      response: "BackendSummary",
    },
    delete: { tag: "backends", summary: "Remove a backend's credentials", status: "204" },
  },
  "/api/v1/projects/{project}/acme": {
    get: {
      tag: "projects",
      summary: "The project's ACME settings: directory_url, email, has_eab, eab_kid (never the HMAC key)",
    },
    put: {
      tag: "projects",
      summary: "Set the project's ACME directory, External Account Binding and contact address (stored sealed)",
      body: "ProjectAcmeRequest",
    },
    delete: { tag: "projects", summary: "Remove the project's ACME settings", status: "204" },
  },
  "/api/v1/projects/{project}/dns/{provider}": {
    get: { tag: "backends", summary: "Whether DNS automation is configured (provider: cloudflare)" },
    put: {
      tag: "backends",
      summary: "Set the DNS provider's credentials (stored encrypted): gateways then manage their wildcard records",
      body: "CloudflareDnsCredentials",
    },
    delete: { tag: "backends", summary: "Stop DNS automation (records already made are left)", status: "204" },
  },
  "/api/v1/users": {
    get: { tag: "users", summary: "List users (global admin)" },
    post: {
      tag: "users",
      summary: "Create a user and its first token (global admin)",
      body: "CreateUserRequest",
      response: "TokenCreated",
      status: "201",
    },
  },
  "/api/v1/users/{user}/tokens": {
    get: { tag: "users", summary: "List a user's API tokens (ids and descriptions, never secrets)" },
    post: {
      tag: "users",
      summary: "Create an API token",
      body: "CreateTokenRequest",
      response: "TokenCreated",
      status: "201",
    },
  },
  "/api/v1/tokens/{id}": { delete: { tag: "users", summary: "Revoke an API token", status: "204" } },
  "/api/v1/me": { get: { tag: "users", summary: "Who the token belongs to", response: "Me" } },
  "/api/v1/agent/register": {
    post: {
      tag: "agent",
      summary: "Exchange a replica's one-time bootstrap secret for an agent JWT",
      body: "AgentRegisterRequest",
      auth: false,
    },
  },
  "/api/v1/agent/heartbeat": {
    post: {
      tag: "agent",
      summary: "Agent health report (agent JWT)",
      body: "AgentHeartbeatRequest",
      status: "204",
      auth: false,
    },
  },
  "/api/v1/agent/token": { post: { tag: "agent", summary: "Refresh an agent JWT", auth: false } },
  "/api/v1/agent/connect": {
    get: {
      tag: "agent",
      summary: "WebSocket (agent JWT): configuration pushes, ACK/NACK, stats",
      status: "101",
      auth: false,
    },
  },
  "/api/v1/agent/config": {
    get: {
      tag: "agent",
      summary: 'Pull the configuration document (If-None-Match: "<version>")',
      response: "ConfigDocument",
      auth: false,
    },
  },
  "/api/v1/agent/ack": {
    post: { tag: "agent", summary: "ACK or NACK a configuration version", status: "204", auth: false },
  },
  "/api/v1/agent/scale-from-zero": {
    post: {
      tag: "agent",
      summary: "A request is held for a service scaled to zero: desired replicas = max(1, min) now (agent JWT)",
      body: "AgentScaleFromZeroRequest",
      auth: false,
    },
  },
};
