/**
 * Wire helpers of the fake: Query API parameters in, XML out (EC2's `<item>` lists and
 * `<Response><Errors>` errors; ELBv2/STS's `<member>` lists, `<…Result>` and `<ErrorResponse>`).
 */
import { randomUUID } from "node:crypto";

export type Params = Map<string, string>;

export const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");

/** `<tag>value</tag>`; nothing for null/undefined (AWS omits absent fields). */
export const leaf = (tag: string, value: string | number | boolean | null | undefined) =>
  value === null || value === undefined ? "" : `<${tag}>${esc(String(value))}</${tag}>`;
export const el = (tag: string, ...children: string[]) => `<${tag}>${children.join("")}</${tag}>`;
export const items = <T>(tag: string, values: readonly T[], render: (v: T) => string) =>
  `<${tag}>${values.map((v) => `<item>${render(v)}</item>`).join("")}</${tag}>`;
export const members = <T>(tag: string, values: readonly T[], render: (v: T) => string) =>
  `<${tag}>${values.map((v) => `<member>${render(v)}</member>`).join("")}</${tag}>`;

export const EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/";
export const ELB_NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
export const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";

export const ec2Response = (action: string, body: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NS}"><requestId>${randomUUID()}</requestId>${body}</${action}Response>`;

export const queryResponse = (ns: string, action: string, body: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${ns}"><${action}Result>${body}</${action}Result><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${action}Response>`;

/** An error the way each protocol spells it; `status` as AWS sends it. */
export class AwsFault extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(protocol: "ec2" | "query", ns: string, fault: AwsFault): string {
  if (protocol === "ec2") {
    return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${esc(fault.code)}</Code><Message>${esc(fault.message)}</Message></Error></Errors><RequestID>${randomUUID()}</RequestID></Response>`;
  }
  const type = fault.status >= 500 ? "Receiver" : "Sender";
  return `<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="${ns}"><Error><Type>${type}</Type><Code>${esc(fault.code)}</Code><Message>${esc(fault.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
}

/** Values of `Prefix.1`, `Prefix.2`, … in index order. */
export function listOf(params: Params, prefix: string): string[] {
  return [...params.entries()]
    .map(([k, v]) => {
      const m = k.startsWith(`${prefix}.`) ? /^(\d+)$/.exec(k.slice(prefix.length + 1)) : null;
      return m ? ([Number(m[1]), v] as const) : null;
    })
    .filter((x): x is readonly [number, string] => x !== null)
    .sort((a, b) => a[0] - b[0])
    .map(([, v]) => v);
}

/** `Prefix.N.Sub…=v` grouped by N: `[{Sub…: v}]` in index order. */
export function groups(params: Params, prefix: string): Params[] {
  const byIndex = new Map<number, Params>();
  for (const [k, v] of params) {
    if (!k.startsWith(`${prefix}.`)) continue;
    const rest = k.slice(prefix.length + 1);
    const dot = rest.indexOf(".");
    if (dot < 0) continue;
    const n = Number(rest.slice(0, dot));
    if (!Number.isInteger(n)) continue;
    if (!byIndex.has(n)) byIndex.set(n, new Map());
    byIndex.get(n)!.set(rest.slice(dot + 1), v);
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
}

/** EC2 filters: `Filter.N.Name` + `Filter.N.Value.M`; values may use `*` and `?` wildcards. */
export function filtersOf(params: Params): { name: string; values: string[] }[] {
  return groups(params, "Filter").map((g) => ({ name: g.get("Name") ?? "", values: listOf(g, "Value") }));
}

export const glob = (pattern: string, value: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  ).test(value);

export const required = (params: Params, name: string): string => {
  const v = params.get(name);
  if (v === undefined || v === "") {
    throw new AwsFault(400, "MissingParameter", `The request must contain the parameter ${name}`);
  }
  return v;
};
