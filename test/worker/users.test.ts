/**
 * `GET /users` and `GET /users/:user/tokens` (issue 11 item 13): what `gateplane user list` and
 * `gateplane token list` show. Global admins see every user; a user sees only their own tokens,
 * and no listing ever carries a secret or its hash.
 */
import { describe, expect, it } from "vitest";
import { api, newUser, unique } from "./helpers.ts";

async function me(token: string): Promise<string> {
  return (await api<{ user: string }>("GET", "/api/v1/me", undefined, token)).body.user;
}

describe("listing users and tokens", () => {
  it("lists users for a global admin only", async () => {
    const token = await newUser(null, null);
    const name = await me(token);
    const listed = await api<{ users: { name: string; global_admin: boolean; created_at: string }[] }>(
      "GET",
      "/api/v1/users",
    );
    expect(listed.status).toBe(200);
    expect(listed.body.users).toContainEqual({ name, global_admin: false, created_at: expect.any(String) });
    const refused = await api("GET", "/api/v1/users", undefined, token);
    expect(refused).toEqual({
      status: 403,
      body: { error: { code: "forbidden", message: "This action needs a global admin token" } },
    });
  });

  it("lists a user's own tokens with descriptions and revocations, never secrets", async () => {
    const token = await newUser(null, null);
    const name = await me(token);
    const made = await api<{ id: string }>("POST", `/api/v1/users/${name}/tokens`, { description: "ci" }, token);
    expect(made.status).toBe(201);
    expect((await api("DELETE", `/api/v1/tokens/${made.body.id}`, undefined, token)).status).toBe(204);
    const own = await api<{ user: string; tokens: Record<string, unknown>[] }>(
      "GET",
      `/api/v1/users/${name}/tokens`,
      undefined,
      token,
    );
    expect(own.status).toBe(200);
    expect(own.body.user).toBe(name);
    // Both may have been created within the same second: compare without their order.
    const summary = own.body.tokens.map((t) => [t.description, t.revoked_at === null]);
    expect(summary.sort()).toEqual([
      ["ci", false],
      ["created with the user", true],
    ]);
    expect(Object.keys(own.body.tokens[0]!).sort()).toEqual([
      "created_at",
      "description",
      "id",
      "last_used_at",
      "revoked_at",
    ]);
    const other = await newUser(null, null);
    const refused = await api("GET", `/api/v1/users/${name}/tokens`, undefined, other);
    expect(refused.status).toBe(403);
    expect((refused.body as { error: { message: string } }).error.message).toBe("You can only list your own tokens");
    const missing = await api("GET", `/api/v1/users/${unique("nobody")}/tokens`);
    expect(missing.status).toBe(404);
    expect((await api("GET", `/api/v1/users/${name}/tokens`)).status).toBe(200);
  });
});
