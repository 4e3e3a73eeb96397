/**
 * The one mapping of a Durable Object's refusal kinds to HTTP statuses (`worker/outcomes.ts`), and
 * the busy rule the plan route and the GatewayObject share (`schema/gateway-busy.ts`). The routes'
 * own tests assert the same statuses end to end.
 */
import { describe, expect, it } from "vitest";
import { failure, ok } from "../../core/outcome.ts";
import { busyRefusal } from "../../schema/gateway-busy.ts";
import { ApiError } from "../../worker/errors.ts";
import { failureError, unwrap } from "../../worker/outcomes.ts";

describe("outcomes of Durable Object calls", () => {
  it("map each kind of refusal to one status, keeping code, message and field", () => {
    const cases = [
      ["invalid", 400],
      ["denied", 401],
      ["not_found", 404],
      ["conflict", 409],
      ["busy", 409],
    ] as const;
    for (const [kind, status] of cases) {
      const e = failureError(failure(kind, `${kind}_code`, `a ${kind} refusal`, "field").error);
      expect(e).toBeInstanceOf(ApiError);
      expect([e.status, e.code, e.message, e.field]).toEqual([status, `${kind}_code`, `a ${kind} refusal`, "field"]);
    }
    expect(failureError(failure("not_found", "not_found", "gone").error).field).toBeUndefined();
  });

  it("unwrap returns a value and throws a refusal as its API error", () => {
    expect(unwrap(ok(7))).toBe(7);
    expect(() => unwrap(failure("conflict", "has_services", "no"))).toThrow(ApiError);
  });

  it("the busy rule refuses a gateway being deleted before a failed one", () => {
    const g = { name: "gw", to_be_deleted: true, status: "failed" };
    expect(busyRefusal(g)?.code).toBe("being_deleted");
    expect(busyRefusal({ ...g, to_be_deleted: false })?.code).toBe("failed");
    expect(busyRefusal({ ...g, to_be_deleted: false, status: "running" })).toBeNull();
  });
});
