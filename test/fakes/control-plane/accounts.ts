/**
 * @module
 * The account endpoints of {@link FakeControlPlane} (users, API tokens, projects, members,
 * backends' credentials, DNS providers), for the CLI's unit tests only. They answer as
 * `worker/routes/users.ts`, `projects.ts` and `dns-providers.ts` do: same statuses, codes, messages
 * and shapes, bodies validated with the same schemas, checks in the same order.
 */
import * as v from "valibot";
import {
  BackendTypeParam,
  CreateProjectRequest,
  CreateTokenRequest,
  CreateUserRequest,
  type GatewayEvent,
  type Role,
  SetMemberRequest,
} from "../../../schema/api.ts";
import { BACKEND_CREDENTIALS } from "../../../schema/backend-credentials.ts";
import { DNS_CREDENTIALS, DnsProviderParam } from "../../../schema/dns-automation.ts";
import { EVENT_TYPES } from "../../../schema/events.ts";
import { BACKENDS } from "../../../schema/gateway.ts";
import { parseOrThrow } from "../../../schema/issues.ts";
import { paged } from "./paging.ts";

type Reply = [number, unknown];

/** Thrown like the Worker's ApiError; FakeControlPlane renders it as `{error: {code, message, field?}}`. */
export class FakeApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const forbidden = (message: string) => new FakeApiError(403, "forbidden", message);
const notFound = (message: string) => new FakeApiError(404, "not_found", message);

interface Token {
  id: string;
  user: string;
  description: string | null;
  revoked: boolean;
}

export class FakeAccounts {
  globalAdmin = false;
  readonly users = new Set<string>(["alice"]);
  readonly tokens = new Map<string, Token>();
  /** project → user → role. */
  readonly projects = new Map<string, Map<string, Role>>();
  /** project → credential kind (`aws`, `dns:cloudflare`) → the stored credentials. */
  readonly credentials = new Map<string, Map<string, { value: unknown; updated_at: string }>>();
  /** The audit trail, oldest first (`GET …/events`). */
  readonly events: GatewayEvent[] = [];
  /** Whether the Worker has LOCAL_HOST_DAEMON_URL (the local backend then counts as configured). */
  localBackend = true;
  #ids = 0;

  /** `caller()`: the user the fake's API token belongs to. */
  constructor(
    project: string,
    readonly caller: () => string,
  ) {
    this.projects.set(project, new Map([["alice", "admin"]]));
  }

  /** Answers `path` (under /api/v1) if it is an account route, else null. */
  route(method: string, path: string, query: URLSearchParams, body: unknown): Reply | null {
    const read = <S extends v.GenericSchema>(schema: S) => parseOrThrow(schema, body ?? {});
    if (path === "/me" && method === "GET") return [200, { user: this.caller(), global_admin: this.globalAdmin }];
    if (path === "/users" && method === "GET") {
      this.#requireGlobalAdmin();
      const users = [...this.users].sort().map((name) => ({ name, global_admin: false, created_at: CREATED }));
      return [200, { users }];
    }
    if (path === "/users" && method === "POST") {
      this.#requireGlobalAdmin();
      const { name } = read(CreateUserRequest);
      if (this.users.has(name)) throw new FakeApiError(409, "already_exists", `User ${name} already exists`, "name");
      this.users.add(name);
      return [201, this.#mint(name, "created with the user")];
    }
    const userTokens = /^\/users\/([^/]+)\/tokens$/.exec(path);
    if (userTokens && method === "GET") {
      const user = this.#pathUser(userTokens[1]!, "You can only list your own tokens");
      const tokens = [...this.tokens.values()]
        .filter((t) => t.user === user)
        .map((t) => ({
          id: t.id,
          description: t.description,
          created_at: CREATED,
          last_used_at: null,
          revoked_at: t.revoked ? CREATED : null,
        }));
      return [200, { user, tokens }];
    }
    if (userTokens && method === "POST") {
      const user = this.#pathUser(userTokens[1]!, "You can only create tokens for yourself");
      const { description } = read(CreateTokenRequest);
      return [201, this.#mint(user, description ?? null)];
    }
    const token = /^\/tokens\/([^/]+)$/.exec(path);
    if (token && method === "DELETE") {
      const found = this.tokens.get(decodeURIComponent(token[1]!));
      if (!found) throw notFound(`Token ${decodeURIComponent(token[1]!)} does not exist`);
      if (!this.globalAdmin && this.caller() !== found.user) throw forbidden("You can only revoke your own tokens");
      found.revoked = true;
      return [204, undefined];
    }
    if (path === "/projects" && method === "POST") {
      this.#requireGlobalAdmin();
      const { name } = read(CreateProjectRequest);
      if (this.projects.has(name)) {
        throw new FakeApiError(409, "already_exists", `Project ${name} already exists`, "name");
      }
      this.projects.set(name, new Map());
      return [201, { name, role: "admin", default_gateway: null, created_at: CREATED }];
    }
    if (path === "/projects" && method === "GET") {
      const names = [...this.projects.keys()].filter((p) => this.globalAdmin || this.#roleIn(p));
      return [200, { projects: names.map((p) => this.#project(p, this.globalAdmin ? "admin" : this.#roleIn(p)!)) }];
    }
    const m = /^\/projects\/([^/]+)(\/members(?:\/([^/]+))?|\/backends(?:\/([^/]+))?|\/dns\/([^/]+)|\/events)?$/.exec(
      path,
    );
    if (!m) return null;
    const project = decodeURIComponent(m[1]!);
    const [, , sub, user, type, provider] = m;
    const role = this.#access(project);
    const requireAdmin = () => {
      if (role !== "admin") throw forbidden(`This action needs the admin role in project ${project}`);
    };
    if (sub === undefined && method === "GET") return [200, this.#project(project, role)];
    if (sub === "/events" && method === "GET") return [200, this.#events(project, query)];
    const members = this.projects.get(project)!;
    if (sub === "/members" && method === "GET") {
      return [200, { members: [...members].map(([u, r]) => ({ user: u, role: r, created_at: CREATED })) }];
    }
    if (sub?.startsWith("/members/") && user !== undefined) {
      const name = decodeURIComponent(user);
      if (method === "PUT" || method === "DELETE") {
        requireAdmin();
        const set = method === "PUT" ? read(SetMemberRequest) : null;
        if (!this.users.has(name)) throw notFound(`User ${name} does not exist`);
        if (set) {
          members.set(name, set.role);
          return [200, { user: name, role: set.role }];
        }
        members.delete(name);
        return [204, undefined];
      }
    }
    const stored = this.#stored(project);
    if (sub === "/backends" && method === "GET") {
      const backends = BACKENDS.map((t) => ({
        type: t,
        configured: t === "local" ? this.localBackend : stored.has(t),
        updated_at: stored.get(t)?.updated_at ?? null,
      }));
      return [200, { backends }];
    }
    if (sub?.startsWith("/backends/") && type !== undefined && (method === "PUT" || method === "DELETE")) {
      requireAdmin();
      const kind = parseOrThrow(v.object({ type: BackendTypeParam }), { type: decodeURIComponent(type) }).type;
      if (method === "DELETE") return this.#remove(stored, kind);
      if (kind === "local") {
        throw new FakeApiError(400, "invalid_request", "the local backend needs no credentials", "type");
      }
      const updated_at = this.#store(stored, kind, read(BACKEND_CREDENTIALS[kind]));
      return [200, { type: kind, configured: true, updated_at }];
    }
    if (sub?.startsWith("/dns/") && provider !== undefined) {
      const name = () =>
        parseOrThrow(v.object({ provider: DnsProviderParam }), { provider: decodeURIComponent(provider) }).provider;
      if (method === "GET") {
        const p = name();
        const row = stored.get(`dns:${p}`);
        return [200, { provider: p, configured: row !== undefined, updated_at: row?.updated_at ?? null }];
      }
      if (method === "PUT" || method === "DELETE") {
        requireAdmin();
        const p = name();
        if (method === "DELETE") return this.#remove(stored, `dns:${p}`);
        const updated_at = this.#store(stored, `dns:${p}`, read(DNS_CREDENTIALS[p]));
        return [200, { provider: p, configured: true, updated_at }];
      }
    }
    return null;
  }

  /** As `gatewayEvents` in worker/routes/gateways.ts: filters, then pages newest first, each oldest first. */
  #events(project: string, query: URLSearchParams): { project: string; events: GatewayEvent[] } {
    const gateway = query.get("gateway");
    const type = query.get("type");
    if (type !== null && !(EVENT_TYPES as string[]).includes(type)) {
      throw new FakeApiError(400, "invalid_request", `type: expected one of ${EVENT_TYPES.join(", ")}`, "type");
    }
    const kept = this.events.filter((e) => (!gateway || e.gateway_name === gateway) && (!type || e.type === type));
    return paged(
      kept.reverse(),
      query,
      (e) => String(e.id),
      "default",
      (page) => ({
        project,
        events: page.reverse(),
      }),
    );
  }

  /** Tokens minted so far, to assert what the CLI did. */
  token(id: string): Token | undefined {
    return this.tokens.get(id);
  }

  #mint(user: string, description: string | null) {
    const id = `tok${++this.#ids}`;
    this.tokens.set(id, { id, user, description, revoked: false });
    return { id, user, token: `gpt_${id}_${"s".repeat(32)}`, created_at: CREATED };
  }

  #pathUser(segment: string, refusal: string): string {
    const user = decodeURIComponent(segment);
    if (!this.users.has(user)) throw notFound(`User ${user} does not exist`);
    if (!this.globalAdmin && this.caller() !== user) throw forbidden(refusal);
    return user;
  }

  #requireGlobalAdmin() {
    if (!this.globalAdmin) throw forbidden("This action needs a global admin token");
  }

  #roleIn(project: string): Role | undefined {
    return this.projects.get(project)?.get(this.caller());
  }

  /** `projectAccess`: the project must exist and the caller be a member (global admins are admins). */
  #access(project: string): Role {
    if (!this.projects.has(project)) throw notFound(`Project ${project} does not exist`);
    const role = this.globalAdmin ? "admin" : this.#roleIn(project);
    if (!role) throw forbidden(`You are not a member of project ${project}`);
    return role;
  }

  #project(name: string, role: Role) {
    return { name, role, default_gateway: null, created_at: CREATED };
  }

  #stored(project: string) {
    const map = this.credentials.get(project) ?? new Map();
    this.credentials.set(project, map);
    return map;
  }

  #store(stored: Map<string, { value: unknown; updated_at: string }>, kind: string, value: unknown): string {
    const updated_at = new Date().toISOString();
    stored.set(kind, { value, updated_at });
    return updated_at;
  }

  #remove(stored: Map<string, unknown>, kind: string): Reply {
    stored.delete(kind);
    return [204, undefined];
  }
}

const CREATED = "2026-01-01T00:00:00.000Z";
