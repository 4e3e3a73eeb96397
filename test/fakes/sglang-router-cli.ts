/**
 * @module
 * The command line of the fake SGLang Model Gateway (sglang-router.ts), as argparse parses and
 * prints it in `launch_router.py`: `--flag value` or `--flag=value`, `--worker-urls` taking values up
 * to the next flag, a bad flag or value exits 2 with argparse's message, and `-h`/`--help` prints
 * the help (its groups, `{choices}` and METAVARs as argparse formats them) and exits 0.
 *
 * Two generations, chosen with the fake-only `--fake-version` (it must come before `--help`, as the
 * agent's launch command puts its own arguments first):
 * - `smg` (default): SMG's `router_args.py` — `--policy` choices
 *   `random, round_robin, passthrough, cache_aware, power_of_two, least_load, manual,
 *   consistent_hashing, prefix_hash` and the `--least-load-*` tunables;
 * - `0.3.2`: the last PyPI `sglang-router` — the classic four policies, no least_load flags.
 * Both have the PD mode's flags (`router_args.py`): `--pd-disaggregation` (no value), `--prefill URL
 * [BOOTSTRAP_PORT|none]` and `--decode URL` (each repeatable), `--prefill-policy`, `--decode-policy`
 * (the `--policy` choices; unset, `--policy` applies). `--fake-version no-pd` is an older router
 * with the classic policies and no PD flags at all.
 */

export type FakeGeneration = "smg" | "0.3.2" | "no-pd";

const POLICIES: Record<FakeGeneration, readonly string[]> = {
  smg: [
    "random",
    "round_robin",
    "passthrough",
    "cache_aware",
    "power_of_two",
    "least_load",
    "manual",
    "consistent_hashing",
    "prefix_hash",
  ],
  "0.3.2": ["random", "round_robin", "cache_aware", "power_of_two"],
  "no-pd": ["random", "round_robin", "cache_aware", "power_of_two"],
};

interface Flag {
  name: string;
  type: "str" | "int" | "float";
  help: string;
  choices?: readonly string[];
  group: "Worker Configuration" | "Routing Policy" | "PD Disaggregation" | "Logging" | "Prometheus Metrics";
}

const LEAST_LOAD_FLAGS: Flag[] = [
  {
    name: "least-load-kv-pressure-weight",
    type: "float",
    group: "Routing Policy",
    help: "KV-pressure weight (seconds) for the least_load policy",
  },
  {
    name: "least-load-default-throughput",
    type: "float",
    group: "Routing Policy",
    help: "Fallback generation throughput (tokens/s) for least_load when a backend reports no live throughput",
  },
  {
    name: "least-load-mean-prefill-tokens",
    type: "int",
    group: "Routing Policy",
    help: "Mean prefill tokens for least_load's in-flight estimate when a request's token count is unknown at routing",
  },
];

function flags(generation: FakeGeneration): Flag[] {
  return [
    {
      name: "host",
      type: "str",
      group: "Worker Configuration",
      help: "Host address to bind the router server. Supports IPv4, IPv6 (e.g., ::, ::1), or 0.0.0.0 for all interfaces",
    },
    { name: "port", type: "int", group: "Worker Configuration", help: "Port number to bind the router server" },
    {
      name: "policy",
      type: "str",
      group: "Routing Policy",
      choices: POLICIES[generation],
      help: "Load balancing policy to use. In PD mode, this is used for both prefill and decode unless overridden",
    },
    ...(generation === "smg" ? LEAST_LOAD_FLAGS : []),
    ...(generation === "no-pd"
      ? []
      : ([
          {
            name: "prefill-policy",
            type: "str",
            group: "PD Disaggregation",
            choices: POLICIES[generation],
            help: "Specific policy for prefill nodes in PD mode. If not specified, uses the main policy",
          },
          {
            name: "decode-policy",
            type: "str",
            group: "PD Disaggregation",
            choices: POLICIES[generation],
            help: "Specific policy for decode nodes in PD mode. If not specified, uses the main policy",
          },
        ] satisfies Flag[])),
    {
      name: "log-dir",
      type: "str",
      group: "Logging",
      help: "Directory to store log files. If not specified, logs are only output to console.",
    },
    {
      name: "log-level",
      type: "str",
      group: "Logging",
      choices: ["debug", "info", "warn", "error"],
      help: "Set the logging level. If not specified, defaults to INFO.",
    },
    { name: "prometheus-port", type: "int", group: "Prometheus Metrics", help: "Port to expose Prometheus metrics." },
    {
      name: "prometheus-host",
      type: "str",
      group: "Prometheus Metrics",
      help: "Host address to bind the Prometheus metrics server. Supports IPv4, IPv6 (e.g., ::, ::1), or 0.0.0.0 for all interfaces",
    },
  ];
}

/** The fake's own flags (not in the help: the real router has none of them). */
const FAKE_FLAGS = [
  "fake-api",
  "fake-job-delay-ms",
  "fake-jobs",
  "fake-hold-dir",
  "fake-worker-startup-timeout-ms",
  "fake-version",
];

const PROG = "launch_router.py";
const metavar = (f: Flag) => (f.choices ? `{${f.choices.join(",")}}` : f.name.toUpperCase().replaceAll("-", "_"));

/** argparse's help: the usage wrapped under `usage: prog`, then `options:` and each argument group. */
export function helpText(generation: FakeGeneration): string {
  const all = flags(generation);
  const items = [
    "[-h]",
    ...all.slice(0, 2).map((f) => `[--${f.name} ${metavar(f)}]`),
    "[--worker-urls [WORKER_URLS ...]]",
    ...(generation === "no-pd"
      ? []
      : ["[--pd-disaggregation]", "[--prefill PREFILL [PREFILL ...]]", "[--decode DECODE]"]),
    ...all.slice(2).map((f) => `[--${f.name} ${metavar(f)}]`),
  ];
  const indent = " ".repeat(`usage: ${PROG} `.length);
  const usage: string[] = [];
  let line = `usage: ${PROG}`;
  for (const item of items) {
    if (line.length + 1 + item.length > 80 && line !== `usage: ${PROG}` && line.trim() !== "") {
      usage.push(line);
      line = indent.slice(0, -1);
    }
    line += ` ${item}`;
  }
  usage.push(line);
  // argparse wraps help at COLUMNS (80 when not a terminal) - 2, beside a 24-column invocation.
  const wrap = (help: string) => {
    const lines = [""];
    for (const word of help.split(" ")) {
      const last = lines.length - 1;
      if (lines[last] !== "" && lines[last]!.length + 1 + word.length > 78 - 24) lines.push(word);
      else lines[last] = lines[last] === "" ? word : `${lines[last]} ${word}`;
    }
    return lines.join(`\n${" ".repeat(24)}`);
  };
  const entry = (invocation: string, help: string) =>
    invocation.length <= 20
      ? `  ${invocation.padEnd(22)}${wrap(help)}`
      : `  ${invocation}\n${" ".repeat(24)}${wrap(help)}`;
  const groups: [string, string, string[]][] = [
    ["Worker Configuration", "Settings for worker connections and URLs", []],
    ["Routing Policy", "Load balancing and routing configuration", []],
    ...(generation === "no-pd"
      ? []
      : [
          [
            "PD Disaggregation",
            "Prefill-decode disaggregated mode",
            [
              entry("--pd-disaggregation", "Enable PD (Prefill-Decode) disaggregated mode"),
              entry(
                "--prefill PREFILL [PREFILL ...]",
                "Prefill server URL and optional bootstrap port. Can be specified multiple times. Format: --prefill URL [BOOTSTRAP_PORT]. BOOTSTRAP_PORT can be a port number, 'none', or omitted (defaults to none).",
              ),
              entry("--decode DECODE", "Decode server URL. Can be specified multiple times. Format: --decode URL"),
            ],
          ] as [string, string, string[]],
        ]),
    ["Logging", "Log output configuration", []],
    ["Prometheus Metrics", "Metrics export configuration", []],
  ];
  for (const f of all) {
    const group = groups.find((g) => g[0] === f.group)!;
    group[2].push(entry(`--${f.name} ${metavar(f)}`, f.help));
    if (f.name === "port") {
      group[2].push(
        entry(
          "--worker-urls [WORKER_URLS ...]",
          "List of worker URLs. Supports IPv4 and IPv6 addresses (use brackets for IPv6, e.g., http://[::1]:8000 http://192.168.1.1:8000)",
        ),
      );
    }
  }
  return [
    ...usage,
    "",
    "options:",
    entry("-h, --help", "show this help message and exit"),
    ...groups.flatMap(([title, description, lines]) => ["", `${title}:`, `  ${description}`, "", ...lines]),
    "",
  ].join("\n");
}

export function usageError(message: string): never {
  process.stderr.write(`usage: ${PROG} [-h] [--host HOST] [--port PORT] ...\n${PROG}: error: ${message}\n`);
  process.exit(2);
}

export interface ParsedCli {
  generation: FakeGeneration;
  values: Map<string, string>;
  workerUrls: string[];
  pd: boolean;
  /** `--prefill URL [PORT|none]`, in order: the URL and its bootstrap port (null: none). */
  prefill: [string, number | null][];
  decode: string[];
}

/** Parses `argv` as the generation's argparse would (printing the help and exiting on `--help`). */
export function parseCli(argv: string[]): ParsedCli {
  const values = new Map<string, string>();
  const workerUrls: string[] = [];
  const prefill: [string, number | null][] = [];
  const decode: string[] = [];
  let pd = false;
  let generation: FakeGeneration = "smg";
  const known = () => new Map(flags(generation).map((f) => [f.name, f]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") {
      process.stdout.write(helpText(generation));
      process.exit(0);
    }
    if (!arg.startsWith("--")) usageError(`unrecognized arguments: ${arg}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === "worker-urls") {
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) workerUrls.push(argv[++i]!);
      continue;
    }
    if (generation !== "no-pd" && name === "pd-disaggregation") {
      pd = true;
      continue;
    }
    if (generation !== "no-pd" && (name === "prefill" || name === "decode")) {
      const taken: string[] = [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) taken.push(argv[++i]!);
      if (taken.length === 0) usageError(`argument --${name}: expected at least one argument`);
      if (name === "decode") {
        if (taken.length > 1) usageError(`unrecognized arguments: ${taken.slice(1).join(" ")}`);
        decode.push(taken[0]!);
        continue;
      }
      // router_args.py: the URL, then an optional bootstrap port (a number or `none`).
      if (taken.length > 2) usageError(`unrecognized arguments: ${taken.slice(2).join(" ")}`);
      const port = taken[1];
      if (port !== undefined && port.toLowerCase() !== "none" && !/^\d+$/.test(port)) {
        usageError(`argument --prefill: invalid bootstrap port: '${port}'`);
      }
      prefill.push([taken[0]!, port === undefined || port.toLowerCase() === "none" ? null : Number(port)]);
      continue;
    }
    const flag = known().get(name);
    if (!flag && !FAKE_FLAGS.includes(name)) usageError(`unrecognized arguments: ${arg}`);
    const value = inline ?? argv[++i];
    if (value === undefined) usageError(`argument --${name}: expected one argument`);
    if (flag?.choices && !flag.choices.includes(value)) {
      usageError(
        `argument --${name}: invalid choice: '${value}' (choose from ${flag.choices.map((c) => `'${c}'`).join(", ")})`,
      );
    }
    if (flag?.type === "int" && !/^-?\d+$/.test(value)) usageError(`argument --${name}: invalid int value: '${value}'`);
    if (flag?.type === "float" && !Number.isFinite(Number(value))) {
      usageError(`argument --${name}: invalid float value: '${value}'`);
    }
    if (name === "fake-version") {
      if (value !== "smg" && value !== "0.3.2" && value !== "no-pd") {
        usageError(`argument --fake-version: invalid choice: '${value}'`);
      }
      generation = value;
    }
    values.set(name, value);
  }
  return { generation, values, workerUrls, pd, prefill, decode };
}
