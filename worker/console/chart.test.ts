import { describe, expect, it } from "vitest";
import { lineChart, niceMax, seriesPath } from "./chart.ts";

describe("niceMax", () => {
  it("rounds up to 1, 2 or 5 times a power of ten", () => {
    expect([0, 0.13, 0.9, 3, 7, 40, 101].map(niceMax)).toEqual([1, 0.2, 1, 5, 10, 50, 200]);
  });
});

describe("seriesPath", () => {
  const x = (t: number) => t;
  const y = (v: number) => v;
  it("joins points, and breaks at nulls and gaps", () => {
    expect(seriesPath([0, 1, 2, 10, 11], [1, 2, null, 3, 4], x, y, 1.5)).toBe("M0,1L1,2M10,3L11,4");
    expect(seriesPath([0, 1, 5], [1, 2, 3], x, y, 1.5)).toBe("M0,1L1,2M5,3");
  });
  it("draws counts as steps", () => {
    expect(seriesPath([0, 1], [1, 2], x, y, 1.5, true)).toBe("M0,1H1L1,2");
  });
});

describe("lineChart", () => {
  it("renders an accessible SVG whose every string is escaped", () => {
    const evil = `<script>alert(1)</script>`;
    const svg = String(
      lineChart({
        id: "rps",
        title: "Requests/s",
        format: (v) => v.toFixed(2),
        times: [0, 60_000],
        from: 0,
        to: 120_000,
        maxGapMs: 90_000,
        series: [{ name: evil, color: "#0b63c5", values: [0.5, 2] }],
        markers: [{ at: 60_000, label: `1 -> 2 (${evil})` }],
      }),
    );
    expect(svg).not.toContain("<script>");
    expect(svg).toContain("&lt;script&gt;");
    expect(svg).toContain('role="img"');
    expect(svg).toContain('data-last="2"');
    expect(svg).toContain("<title>1 -&gt; 2");
  });
});
