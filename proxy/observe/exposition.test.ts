import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { renderExposition } from "./exposition.ts";
import type { MetricFamily } from "./families.ts";

const families: MetricFamily[] = [
  {
    name: "gen_ai_server_time_to_first_token_seconds",
    help: "Time to first token.\nSecond line with a \\ backslash.",
    type: "histogram",
    bounds: [0.1, 0.5, 1],
    samples: [
      { labels: ["service", "chat", "replica", 'r"1\\\n'], counts: [1, 2, 0, 3], sum: 12.25 },
      { labels: [], counts: [0, 0, 0, 0], sum: 0 },
    ],
  },
  {
    name: "gateplane_requests_total",
    help: "Requests.",
    type: "counter",
    samples: [{ labels: ["service", "chat", "code", "2xx"], value: 6 }],
  },
  { name: "gateplane_requests_in_flight", help: "In flight.", type: "gauge", samples: [{ labels: [], value: 0 }] },
  { name: "gateplane_unused", help: "Never written.", type: "gauge", samples: [] },
];

describe("Prometheus exposition", () => {
  it("writes cumulative buckets up to +Inf, _sum and _count, and escapes labels and help", () => {
    expect(renderExposition(families)).toBe(
      [
        "# HELP gen_ai_server_time_to_first_token_seconds Time to first token.\\nSecond line with a \\\\ backslash.",
        "# TYPE gen_ai_server_time_to_first_token_seconds histogram",
        'gen_ai_server_time_to_first_token_seconds_bucket{service="chat",replica="r\\"1\\\\\\n",le="0.1"} 1',
        'gen_ai_server_time_to_first_token_seconds_bucket{service="chat",replica="r\\"1\\\\\\n",le="0.5"} 3',
        'gen_ai_server_time_to_first_token_seconds_bucket{service="chat",replica="r\\"1\\\\\\n",le="1"} 3',
        'gen_ai_server_time_to_first_token_seconds_bucket{service="chat",replica="r\\"1\\\\\\n",le="+Inf"} 6',
        'gen_ai_server_time_to_first_token_seconds_sum{service="chat",replica="r\\"1\\\\\\n"} 12.25',
        'gen_ai_server_time_to_first_token_seconds_count{service="chat",replica="r\\"1\\\\\\n"} 6',
        'gen_ai_server_time_to_first_token_seconds_bucket{le="0.1"} 0',
        'gen_ai_server_time_to_first_token_seconds_bucket{le="0.5"} 0',
        'gen_ai_server_time_to_first_token_seconds_bucket{le="1"} 0',
        'gen_ai_server_time_to_first_token_seconds_bucket{le="+Inf"} 0',
        "gen_ai_server_time_to_first_token_seconds_sum 0",
        "gen_ai_server_time_to_first_token_seconds_count 0",
        "# HELP gateplane_requests_total Requests.",
        "# TYPE gateplane_requests_total counter",
        'gateplane_requests_total{service="chat",code="2xx"} 6',
        "# HELP gateplane_requests_in_flight In flight.",
        "# TYPE gateplane_requests_in_flight gauge",
        "gateplane_requests_in_flight 0",
        "",
      ].join("\n"),
    );
    expect(renderExposition([])).toBe("");
  });

  it("passes promtool check metrics", () => {
    const check = spawnSync("promtool", ["check", "metrics"], { input: renderExposition(families), encoding: "utf8" });
    expect(check.error).toBeUndefined();
    expect(`${check.stdout}${check.stderr}`).toBe("");
    expect(check.status).toBe(0);
  });
});
