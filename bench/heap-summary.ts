/**
 * @module
 * What a V8 heap snapshot holds, summed by kind of object: `node --max-old-space-size=8192
 * bench/compiled.mjs bench/heap-summary.ts <file.heapsnapshot> [rows]`. Plain objects are told
 * apart by their first property names (a service's `{name, project, host, …}` from a replica's
 * `{id, url}`), so a count that is a multiple of the services says how many copies of the
 * configuration a process keeps. Snapshots come from `bench/heap-snapshots.ts` (or any
 * `node --heapsnapshot-signal` / `v8.writeHeapSnapshot`).
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

const [file, rowsArg] = process.argv.slice(2).filter((a) => a !== "--owners");
if (!file) throw new Error("usage: bench/heap-summary.ts <file.heapsnapshot> [rows]");
const rows = Number(rowsArg ?? 40);
const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
const { meta } = snap.snapshot;
const NF = meta.node_fields.length;
const EF = meta.edge_fields.length;
const nType = meta.node_fields.indexOf("type");
const nName = meta.node_fields.indexOf("name");
const nSize = meta.node_fields.indexOf("self_size");
const nEdges = meta.node_fields.indexOf("edge_count");
const eType = meta.edge_fields.indexOf("type");
const eName = meta.edge_fields.indexOf("name_or_index");
const nodeTypes = meta.node_types[0];
const edgeTypes = meta.edge_types[0];
const PROPERTY = edgeTypes.indexOf("property");
const { nodes, edges, strings } = snap;

const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
let edge = 0;
for (let i = 0; i < nodes.length; i += NF) {
  const type = nodeTypes[nodes[i + nType]!]!;
  const size = nodes[i + nSize]!;
  const edgeCount = nodes[i + nEdges]!;
  let key: string;
  if (type === "object") {
    const name = strings[nodes[i + nName]!]!;
    if (name === "Object") {
      const props: string[] = [];
      for (let e = edge; e < edge + edgeCount * EF && props.length < 5; e += EF) {
        if (edges[e + eType] === PROPERTY) props.push(strings[edges[e + eName]!]!);
      }
      key = `{${props.join(",")}}`;
    } else key = name;
  } else if (type === "string" || type === "concatenated string" || type === "sliced string") key = "(string)";
  else
    key = `(${type})${type === "code" || type === "hidden" || type === "array" ? ` ${strings[nodes[i + nName]!]!.slice(0, 40)}` : ""}`;
  edge += edgeCount * EF;
  const group = groups.get(key) ?? { count: 0, bytes: 0 };
  group.count++;
  group.bytes += size;
  groups.set(key, group);
  total += size;
}
const MiB = (b: number) => (b / 2 ** 20).toFixed(1);
// Who holds the unnamed internals (a Map's table, an array's elements, strings): each such object is
// counted under the first object up its chain of first retainers that is not one, with the edges'
// names on the way (`--owners`).
const owners = new Map<string, number>();
if (process.argv.includes("--owners")) {
  const toNode = meta.edge_fields.indexOf("to_node");
  const keyOf = (i: number) => {
    const type = nodeTypes[nodes[i + nType]!]!;
    return type === "object" || type === "closure" ? strings[nodes[i + nName]!]!.slice(0, 30) : `(${type})`;
  };
  const internal = (i: number) => {
    const type = nodeTypes[nodes[i + nType]!]!;
    return (
      type === "array" ||
      type === "string" ||
      type === "hidden" ||
      (type === "object" && ["Array", "Map", "Set"].includes(strings[nodes[i + nName]!]!))
    );
  };
  const count = nodes.length / NF;
  const parent = new Int32Array(count).fill(-1);
  const via = new Array<string>(count);
  let e = 0;
  for (let i = 0; i < nodes.length; i += NF) {
    const edgeCount = nodes[i + nEdges]!;
    for (let k = 0; k < edgeCount; k++, e += EF) {
      const to = edges[e + toNode]!;
      const n = to / NF;
      if (parent[n] !== -1 || !internal(to)) continue;
      const edgeType = edgeTypes[edges[e + eType]!];
      if (edgeType === "weak") continue;
      parent[n] = i;
      via[n] = edgeType === "element" || edgeType === "hidden" ? "[]" : strings[edges[e + eName]!]!;
    }
  }
  for (let n = 0; n < count; n++) {
    if (parent[n] === -1) continue;
    const path: string[] = [];
    let at = n;
    while (parent[at] !== -1 && internal(at * NF) && path.length < 4) {
      path.unshift(`${via[at]}`);
      at = parent[at]! / NF;
    }
    const key = `${keyOf(at * NF)}.${path.join(".")}`;
    owners.set(key, (owners.get(key) ?? 0) + nodes[n * NF + nSize]!);
  }
}
console.log(`${file}: ${(nodes.length / NF).toLocaleString()} objects, ${MiB(total)} MiB (self sizes)`);
for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, rows)) {
  console.log(`${MiB(g.bytes).padStart(8)} MiB ${String(g.count).padStart(9)}  ${key}`);
}
if (owners.size > 0) {
  console.log("\nfirst retainers of the internals (arrays, strings, Maps, Sets):");
  for (const [key, bytes] of [...owners].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
    console.log(`${MiB(bytes).padStart(8)} MiB  ${key}`);
  }
}
