import { describe, expect, it } from "vitest";
import { sglangPathAllowed } from "./routes.ts";

describe("paths a router service exposes", () => {
  it.each([
    ["/generate", true],
    ["/generate?stream=1", true],
    ["/v1/chat/completions", true],
    ["/v1/models", true],
    ["/chat/completions", true],
    ["/chat/completions/x", true],
    ["/", false],
    ["/v1", false],
    ["/generatex", false],
    ["/workers", false],
    ["/add_worker?url=http://x", false],
    ["/list_workers", false],
    ["/flush_cache", false],
    ["/metrics", false],
    ["/health", false],
    ["/v1/../workers", false],
    ["/v1/%2E%2E/workers", false],
    ["/v1/.%2e/workers", false],
    ["/v1/x%2Fy", false],
    ["/generate/./", false],
  ])("%s → %s", (p, allowed) => {
    expect(sglangPathAllowed(p)).toBe(allowed);
  });
});
