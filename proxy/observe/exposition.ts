/**
 * @module
 * Prometheus text exposition format 0.0.4: `# HELP` and `# TYPE` per family, one line per sample;
 * histograms as `<name>_bucket{…,le="<bound>"}` (cumulative, ending with `le="+Inf"`), `<name>_sum`
 * and `<name>_count`. Label values are escaped (`\\`, `\"`, `\n`), help text too (`\\`, `\n`).
 */
import type { MetricFamily } from "./families.ts";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

/** A sample value as Prometheus reads it (Go's ParseFloat): integers plainly, infinities and NaN by name. */
export function formatValue(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Number.POSITIVE_INFINITY) return "+Inf";
  if (x === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(x);
}

/** `{a="1",b="2"}` from a flat pair list plus extra pairs; empty string when there are none. */
function labelBlock(labels: readonly string[], extra?: readonly string[]): string {
  const parts: string[] = [];
  for (let i = 0; i < labels.length; i += 2) parts.push(`${labels[i]}="${escapeLabel(labels[i + 1]!)}"`);
  if (extra) for (let i = 0; i < extra.length; i += 2) parts.push(`${extra[i]}="${escapeLabel(extra[i + 1]!)}"`);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** The whole exposition; families without samples are left out. */
export function renderExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    if (family.type !== "histogram") {
      for (const s of family.samples) lines.push(`${family.name}${labelBlock(s.labels)} ${formatValue(s.value)}`);
      continue;
    }
    const les = family.bounds.map(formatValue);
    for (const s of family.samples) {
      let cumulative = 0;
      for (let i = 0; i < les.length; i++) {
        cumulative += s.counts[i] ?? 0;
        lines.push(`${family.name}_bucket${labelBlock(s.labels, ["le", les[i]!])} ${cumulative}`);
      }
      cumulative += s.counts[les.length] ?? 0;
      lines.push(`${family.name}_bucket${labelBlock(s.labels, ["le", "+Inf"])} ${cumulative}`);
      lines.push(`${family.name}_sum${labelBlock(s.labels)} ${formatValue(s.sum)}`);
      lines.push(`${family.name}_count${labelBlock(s.labels)} ${cumulative}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}
