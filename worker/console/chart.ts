/**
 * @module
 * Line charts as inline SVG, rendered on the server: no charting library and no client script.
 * A chart of 60–288 points is a few kilobytes of markup built in well under a millisecond; uPlot
 * (1.6.32, ~50 KB minified) would add a script to download and parse, a canvas the page's
 * accessibility tree cannot read, and client-side data plumbing, for interactions (zoom, cursor)
 * the console does not need. Every chart carries an accessible name, a `<title>` per marker and a
 * data table for screen readers (`sr-only`), and `data-last`/`data-max` for tests and tools.
 * Colours are SVG presentation attributes, which the page's CSP (`style-src 'self'`) allows.
 */
import { type Html, h, trusted } from "./html.ts";

export interface Series {
  name: string;
  /** A colour with at least 3:1 contrast on white (WCAG's non-text contrast). */
  color: string;
  values: readonly (number | null)[];
  /** Draw as steps (counts) instead of lines (rates). */
  step?: boolean;
}

export interface ChartInput {
  id: string;
  title: string;
  /** Formats a value for axis labels and the data table. */
  format: (x: number) => string;
  /** Milliseconds since the epoch, one per value, ascending. */
  times: readonly number[];
  from: number;
  to: number;
  /** Consecutive points further apart than this are not joined (a gap in the reports). */
  maxGapMs: number;
  series: readonly Series[];
  markers?: readonly { at: number; label: string }[];
}

/** About the size it is shown at (a third of a wide screen, a phone's width), so its text stays legible. */
const W = 360;
const H = 150;
const PAD = { left: 50, right: 10, top: 10, bottom: 22 };

/** 1, 2 or 5 times a power of ten, at least `x` (the axis' top). */
export function niceMax(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
const fixed = (x: number) => (Math.round(x * 10) / 10).toString();

/** The SVG path of one series: segments broken at nulls and at gaps wider than `maxGapMs`. */
export function seriesPath(
  times: readonly number[],
  values: readonly (number | null)[],
  x: (t: number) => number,
  y: (v: number) => number,
  maxGapMs: number,
  step = false,
): string {
  let d = "";
  let prev: { t: number; v: number } | null = null;
  for (let i = 0; i < times.length; i++) {
    const v = values[i];
    const t = times[i]!;
    if (v === null || v === undefined || !Number.isFinite(v)) {
      prev = null;
      continue;
    }
    if (prev && t - prev.t <= maxGapMs) {
      if (step) d += `H${fixed(x(t))}`;
      d += `L${fixed(x(t))},${fixed(y(v))}`;
    } else {
      d += `M${fixed(x(t))},${fixed(y(v))}`;
    }
    prev = { t, v };
  }
  return d;
}

export function lineChart(c: ChartInput): Html {
  const all = c.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)));
  const top = niceMax(Math.max(0, ...all));
  const span = Math.max(1, c.to - c.from);
  const x = (t: number) => PAD.left + ((t - c.from) / span) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - v / top) * (H - PAD.top - PAD.bottom);
  const grid = [0, 0.5, 1].map((f) => {
    const v = top * f;
    return h`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${fixed(y(v))}" y2="${fixed(y(v))}" stroke="#d0d4da" stroke-width="1"/><text x="${PAD.left - 6}" y="${fixed(y(v) + 4)}" text-anchor="end" fill="#3b4350" font-size="10">${c.format(v)}</text>`;
  });
  const ticks = [0, 0.5, 1].map((f) => {
    const t = c.from + span * f;
    const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
    return h`<text x="${fixed(x(t))}" y="${H - 6}" text-anchor="${anchor}" fill="#3b4350" font-size="10">${hhmm(t)}</text>`;
  });
  const markers = (c.markers ?? [])
    .filter((m) => m.at >= c.from && m.at <= c.to)
    .map(
      (m) =>
        h`<g class="marker"><title>${m.label}</title><line x1="${fixed(x(m.at))}" x2="${fixed(x(m.at))}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#8a3ffc" stroke-width="2" stroke-dasharray="4 3"/><circle cx="${fixed(x(m.at))}" cy="${PAD.top + 4}" r="4" fill="#8a3ffc"/></g>`,
    );
  // A dot per point as well: a lone point (the first minute of traffic, one between gaps) has no line.
  const lines = c.series.map(
    (s) =>
      h`<path d="${trusted(seriesPath(c.times, s.values, x, y, c.maxGapMs, s.step))}" fill="none" stroke="${s.color}" stroke-width="2" stroke-linejoin="round"/><path d="${trusted(dots(c.times, s.values, x, y))}" fill="none" stroke="${s.color}" stroke-width="4" stroke-linecap="round"/>`,
  );
  const first = c.series[0];
  const lastIndex = first ? lastPresent(first.values) : -1;
  const last = first && lastIndex >= 0 ? first.values[lastIndex]! : null;
  const label = `${c.title}: ${c.series.map((s) => `${s.name} ${latest(s.values, c.format)}`).join(", ")}`;
  return h`<figure class="chart" data-chart="${c.id}" data-last="${last ?? ""}" data-max="${Math.max(0, ...(first?.values.filter((v): v is number => v !== null) ?? []))}">
<figcaption>${c.title} <span class="legend">${c.series.map((s) => h`<span class="key"><svg width="14" height="4" aria-hidden="true"><rect width="14" height="4" fill="${s.color}"/></svg>${s.name}</span>`)}${c.markers?.length ? h`<span class="key"><svg width="14" height="4" aria-hidden="true"><rect width="14" height="4" fill="#8a3ffc"/></svg>scaling decision</span>` : null}</span></figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}" preserveAspectRatio="none">${grid}${ticks}${markers}${lines}</svg>
${dataTable(c)}
</figure>`;
}

/** Zero-length round-capped segments: a dot at each point, in one path. */
function dots(
  times: readonly number[],
  values: readonly (number | null)[],
  x: (t: number) => number,
  y: (v: number) => number,
): string {
  let d = "";
  for (let i = 0; i < times.length; i++) {
    const v = values[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) d += `M${fixed(x(times[i]!))},${fixed(y(v))}h0`;
  }
  return d;
}

function lastPresent(values: readonly (number | null)[]): number {
  for (let i = values.length - 1; i >= 0; i--) if (values[i] !== null) return i;
  return -1;
}

function latest(values: readonly (number | null)[], format: (x: number) => string): string {
  const i = lastPresent(values);
  return i < 0 ? "no data" : format(values[i]!);
}

/** The values for screen readers (and text browsers): the last 10 points, newest first. */
function dataTable(c: ChartInput): Html {
  const rows: Html[] = [];
  for (let i = c.times.length - 1; i >= 0 && rows.length < 10; i--) {
    rows.push(
      h`<tr><th scope="row">${hhmm(c.times[i]!)}</th>${c.series.map((s) => {
        const v = s.values[i];
        return h`<td>${v === null || v === undefined ? "–" : c.format(v)}</td>`;
      })}</tr>`,
    );
  }
  return h`<table class="sr-only"><caption>${c.title}, last points (UTC)</caption><tr><th scope="col">time</th>${c.series.map((s) => h`<th scope="col">${s.name}</th>`)}</tr>${rows}</table>`;
}
