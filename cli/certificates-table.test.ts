import { describe, expect, it } from "vitest";
import { certificatesTable } from "./certificates-table.ts";
import { plainStyle } from "./style.ts";

describe("certificatesTable", () => {
  it("lists each host's state and the last error with the retry time; nothing without certificates", () => {
    const lines = certificatesTable(
      {
        replicas: [
          {
            replica_num: 0,
            certificates: [
              {
                host: "llama.example.com",
                status: "failed",
                not_after: null,
                issued_at: null,
                renew_at: null,
                last_error: "DNS for llama.example.com does not point at this gateway",
                last_error_at: "2026-01-01T00:00:00.000Z",
                next_attempt_at: "2026-01-01T00:01:00.000Z",
              },
            ],
          },
        ] as never,
      },
      plainStyle,
    );
    expect(lines.join("\n")).toContain("llama.example.com  0        failed");
    expect(lines.join("\n")).toContain("does not point at this gateway (retry 2026-01-01 00:01)");
    expect(certificatesTable({ replicas: [] }, plainStyle)).toEqual([]);
  });
});
