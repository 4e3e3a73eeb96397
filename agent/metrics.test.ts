import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { renderExposition } from "../proxy/observe/exposition.ts";
import { agentFamilies } from "./metrics.ts";

describe("the agent's own series", () => {
  it("say what the agent serves, its certificates and its link, and pass promtool", () => {
    const text = renderExposition(
      agentFamilies({
        configVersion: 7,
        rejected: [{ service: "bad", error: "services[1].client_max_body_size: …", kept: true }],
        certificates: [
          {
            host: "chat.example.com",
            status: "issued",
            not_after: "2027-03-01T00:00:00.000Z",
            issued_at: "2026-12-01T00:00:00.000Z",
            renew_at: "2027-01-30T00:00:00.000Z",
            last_error: null,
            last_error_at: null,
            next_attempt_at: null,
          },
          {
            host: "new.example.com",
            status: "failed",
            not_after: null,
            issued_at: null,
            renew_at: null,
            last_error: "rate limited",
            last_error_at: "2026-12-03T00:00:00.000Z",
            next_attempt_at: "2026-12-03T00:01:00.000Z",
          },
        ],
        connected: false,
        linkChangedAt: 1_764_000_000_500,
        version: "1.2.3",
      }),
    );
    for (const line of [
      "gateplane_config_version 7",
      "gateplane_config_rejected_services 1",
      'gateplane_config_service_rejected{service="bad",kept="true"} 1',
      'gateplane_certificate_expiry_timestamp_seconds{host="chat.example.com"} 1803859200',
      'gateplane_certificate_failing{host="chat.example.com"} 0',
      'gateplane_certificate_failing{host="new.example.com"} 1',
      "gateplane_control_plane_connected 0",
      "gateplane_control_plane_link_changed_timestamp_seconds 1764000000",
      'gateplane_agent_info{version="1.2.3"} 1',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
    // No certificate yet, no expiry.
    expect(text).not.toContain('gateplane_certificate_expiry_timestamp_seconds{host="new.example.com"}');
    const check = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(`${check.stdout}${check.stderr}`).toBe("");
  });
});
