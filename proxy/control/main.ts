/**
 * @module
 * Entry point of the standalone proxy (`gateplane-proxy`; the agent starts it, `docs/gateway-host.md`):
 * serve until SIGTERM/SIGINT or a `shutdown` over the control socket. Started as a predecessor's
 * successor (an IPC channel and `GATEPLANE_PROXY_SUCCESSOR`), it first takes the sockets handed over.
 */
import { parseArgs } from "node:util";
import type { ListeningSockets } from "../index.ts";
import { type Inherited, startStandalone } from "./standalone.ts";

const USAGE =
  "usage: gateplane-proxy --state-dir <dir> --http-port <port> [--https-port <port>] [--host <address>]" +
  " [--processes <n>] [--serving-child] [--version <build>]";

const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);

function parse() {
  try {
    const { values } = parseArgs({
      strict: true,
      options: {
        "state-dir": { type: "string" },
        host: { type: "string" },
        "http-port": { type: "string" },
        "https-port": { type: "string" },
        processes: { type: "string" },
        "serving-child": { type: "boolean" },
        version: { type: "string" },
      },
    });
    const number = (name: string, value: string | undefined, fallback: number | null) => {
      if (value === undefined) return fallback;
      if (!/^\d+$/.test(value)) throw new Error(`--${name}: expected a number, got "${value}"`);
      return Number(value);
    };
    const stateDir = values["state-dir"];
    const httpPort = number("http-port", values["http-port"], null);
    if (!stateDir || httpPort === null) throw new Error("--state-dir and --http-port are required");
    return {
      stateDir,
      host: values.host ?? "127.0.0.1",
      httpPort,
      httpsPort: number("https-port", values["https-port"], null),
      processes: number("processes", values.processes, 1) ?? 1,
      servingChild: values["serving-child"] === true,
      version: values.version ?? "unknown",
    };
  } catch (error) {
    process.stderr.write(`gateplane-proxy: ${(error as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

/** What the predecessor sends over IPC: the state, then the sockets (one per message). */
function receiveInheritance(): Promise<Inherited> {
  return new Promise((resolve) => {
    let inherited: Inherited | null = null;
    let tlsHandle: object | null = null;
    const check = () => {
      if (!inherited) return;
      if (inherited.sockets.tlsPort !== null && !tlsHandle) return;
      inherited.sockets.tlsHandle = tlsHandle;
      resolve(inherited);
    };
    process.on("message", (message: Record<string, unknown>, handle: object | undefined) => {
      if (message.type === "inherit" && handle) {
        const sockets: ListeningSockets = {
          handle,
          port: message.port as number,
          tlsHandle: null,
          tlsPort: (message.tlsPort as number | null) ?? null,
        };
        inherited = {
          sockets,
          document: (message.document as Inherited["document"]) ?? null,
          certificates: (message.certificates as Inherited["certificates"]) ?? [],
          challenges: (message.challenges as Inherited["challenges"]) ?? {},
        };
        check();
      } else if (message.type === "inherit-tls" && handle) {
        tlsHandle = handle;
        check();
      }
    });
  });
}

async function main(): Promise<void> {
  const args = parse();
  const successor = process.env.GATEPLANE_PROXY_SUCCESSOR === "1" && typeof process.send === "function";
  const inherited = successor ? await receiveInheritance() : null;
  const standalone = await startStandalone({ ...args, log, inherited });
  if (successor) {
    // Serving on the handed-over sockets: the predecessor releases the control socket, then drains.
    await new Promise<void>((resolve) => {
      process.on("message", (message: { type?: string }) => {
        if (message.type === "release") resolve();
      });
      process.send?.({ type: "serving" });
    });
    await standalone.listen();
    process.send?.({ type: "took-over" });
  } else {
    await standalone.listen();
  }
  log(
    `proxy ${args.version} (pid ${process.pid}) serving http://${args.host}:${standalone.proxy.port}` +
      (standalone.proxy.httpsPort === null ? "" : ` and https on port ${standalone.proxy.httpsPort}`) +
      (successor ? " on the sockets its predecessor handed over" : ""),
  );
  const stop = (signal: string) => {
    log(`proxy: received ${signal}; draining`);
    void standalone.close();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  await standalone.done;
  process.exit(0);
}

await main().catch((error: unknown) => {
  log(`proxy failed: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
