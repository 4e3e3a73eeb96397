/**
 * @module
 * The control plane's account endpoints as the CLI uses them: users, API tokens, projects and
 * their members, backends' credentials and DNS providers. Kept apart from `api-client.ts` (which
 * holds gateways, services, webhooks) so each stays small; both go through {@link ControlPlane.call}.
 */
import type * as v from "valibot";
import type { BackendSummary, MeSchema, Project, Role, TokenCreatedSchema } from "../schema/api.ts";
import type { ControlPlane } from "./api-client.ts";

export type TokenCreated = v.InferOutput<typeof TokenCreatedSchema>;
export type Me = v.InferOutput<typeof MeSchema>;
export interface UserSummary {
  name: string;
  global_admin: boolean;
  created_at: string;
}
export interface TokenSummary {
  id: string;
  description: string | null;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}
export interface Member {
  user: string;
  role: Role;
  created_at: string;
}
/** What `GET …/dns/:provider` and the PUTs of backends and DNS answer: never the secret itself. */
export interface CredentialsState {
  configured: boolean;
  updated_at: string | null;
}

const e = encodeURIComponent;
const project = (name: string) => `/projects/${e(name)}`;

export const accounts = {
  me: (api: ControlPlane) => api.call<Me>("GET", "/me"),
  listUsers: (api: ControlPlane) => api.call<{ users: UserSummary[] }>("GET", "/users"),
  listTokens: (api: ControlPlane, user: string) =>
    api.call<{ user: string; tokens: TokenSummary[] }>("GET", `/users/${e(user)}/tokens`),
  createUser: (api: ControlPlane, name: string) => api.call<TokenCreated>("POST", "/users", { name }),
  createToken: (api: ControlPlane, user: string, description: string | undefined) =>
    api.call<TokenCreated>("POST", `/users/${e(user)}/tokens`, description === undefined ? {} : { description }),
  revokeToken: (api: ControlPlane, id: string) => api.call<void>("DELETE", `/tokens/${e(id)}`),

  listProjects: (api: ControlPlane) => api.call<{ projects: Project[] }>("GET", "/projects"),
  createProject: (api: ControlPlane, name: string) => api.call<Project>("POST", "/projects", { name }),
  getProject: (api: ControlPlane, name: string) => api.call<Project>("GET", project(name)),

  listMembers: (api: ControlPlane, p: string) => api.call<{ members: Member[] }>("GET", `${project(p)}/members`),
  setMember: (api: ControlPlane, p: string, user: string, role: string) =>
    api.call<{ user: string; role: Role }>("PUT", `${project(p)}/members/${e(user)}`, { role }),
  removeMember: (api: ControlPlane, p: string, user: string) =>
    api.call<void>("DELETE", `${project(p)}/members/${e(user)}`),

  listBackends: (api: ControlPlane, p: string) =>
    api.call<{ backends: BackendSummary[] }>("GET", `${project(p)}/backends`),
  setBackend: (api: ControlPlane, p: string, type: string, credentials: Record<string, unknown>) =>
    api.call<CredentialsState & { type: string }>("PUT", `${project(p)}/backends/${e(type)}`, credentials),
  unsetBackend: (api: ControlPlane, p: string, type: string) =>
    api.call<void>("DELETE", `${project(p)}/backends/${e(type)}`),

  getDns: (api: ControlPlane, p: string, provider: string) =>
    api.call<CredentialsState & { provider: string }>("GET", `${project(p)}/dns/${e(provider)}`),
  setDns: (api: ControlPlane, p: string, provider: string, credentials: Record<string, unknown>) =>
    api.call<CredentialsState & { provider: string }>("PUT", `${project(p)}/dns/${e(provider)}`, credentials),
  unsetDns: (api: ControlPlane, p: string, provider: string) =>
    api.call<void>("DELETE", `${project(p)}/dns/${e(provider)}`),
};
