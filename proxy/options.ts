/**
 * @module
 * What a caller hands `startProxy` (`ProxyOptions`) and the checks that turn it into what the proxy
 * runs on (`checkOptions`, `checkCertificates`): every option is verified here, before any listener
 * or process starts, and a bad one is a `ProxyOptionsError` naming it. Kept apart from `index.ts`,
 * which starts and drives the proxy with the checked result.
 */
import { availableParallelism } from "node:os";
import type { ConfigDocument } from "../schema/config-document.ts";
import { ConfigRejectedError, ProxyOptionsError } from "./errors.ts";
import type { MetricFamily } from "./observe/families.ts";
import { parseDocument } from "./routes.ts";
import { CertificateSet, type TlsCertificate } from "./tls.ts";

export interface ProxyOptions {
  /** Address to listen on; default "127.0.0.1". */
  host?: string;
  /** 0 = any free port. */
  httpPort: number;
  /** The HTTPS listener (SNI over `setCertificates`'s); 0 = any free port; null or absent: none. */
  httpsPort?: number | null;
  /**
   * Processes serving traffic; 0 = serve in this process (tests); default os.availableParallelism().
   * With 1, the pool's parent serves in its own process (`in-process-child.ts`) unless `servingChild`.
   */
  processes?: number;
  /**
   * With `processes: 1`, serve from a child process of the proxy anyway: a crash of the serving code
   * then restarts that child with the socket kept bound, instead of ending the whole proxy (which
   * its agent starts again), for a second Node process and copy of the configuration. Default false.
   */
  servingChild?: boolean;
  /** Serve this at once (the agent's last good config from disk); always validated, as `apply` without `validatedDocuments`. */
  initialConfig?: ConfigDocument | null;
  /**
   * Every document handed to `apply` was validated by the caller in this process (the agent
   * validates each one as it arrives from the network, service by service, and derives the rest
   * from validated parts): `apply` takes it as given instead of validating it a second time.
   * Default false: `apply` validates, for callers that hand over documents as they received them.
   * The serving processes never validate: they take documents from this one over a private pipe.
   */
  validatedDocuments?: boolean;
  log?: (line: string) => void;
  /**
   * A request is held for `service`, which has no replica and scales to zero (its document's
   * `hold`): the agent asks the control plane for a replica. Called at most every few seconds per
   * service by each serving process; the callback rate-limits across processes if it needs to.
   */
  onHeldRequest?: (service: string) => void;
  /**
   * Series the caller adds to the host's metrics (the agent's own: configuration, certificates, the
   * control-plane link), read at every scrape; they must not throw.
   */
  extraMetrics?: () => MetricFamily[];
  /**
   * The agent's state directory: the access log goes to `<stateDir>/access.log` (rotated there)
   * when a document's `observability.access_log.destination` is `file`. Null or absent: no file.
   */
  stateDir?: string | null;
}

export interface Checked {
  host: string;
  port: number;
  tlsPort: number | null;
  processes: number;
  servingChild: boolean;
  initial: ConfigDocument | null;
  /** What `apply` does with a document before serving it: validate it, or take it as validated. */
  accept: (doc: ConfigDocument) => ConfigDocument;
  /** `validatedDocuments`: deltas too are taken as checked (their base version aside). */
  validated: boolean;
  log: (line: string) => void;
  onHeldRequest: (service: string) => void;
  extraMetrics: () => MetricFamily[];
  stateDir: string | null;
}

export function checkOptions(options: ProxyOptions): Checked {
  const host = options.host ?? "127.0.0.1";
  if (typeof host !== "string" || host === "") throw new ProxyOptionsError("host", "expected an address to listen on");
  const port = options.httpPort;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ProxyOptionsError("httpPort", `expected a port number 0..65535, got ${String(port)}`);
  }
  const tlsPort = options.httpsPort ?? null;
  if (tlsPort !== null && (!Number.isInteger(tlsPort) || tlsPort < 0 || tlsPort > 65_535)) {
    throw new ProxyOptionsError("httpsPort", `expected a port number 0..65535 or null, got ${String(tlsPort)}`);
  }
  const processes = options.processes ?? availableParallelism();
  if (!Number.isInteger(processes) || processes < 0 || processes > 256) {
    throw new ProxyOptionsError("processes", `expected a whole number of processes 0..256, got ${String(processes)}`);
  }
  if (options.servingChild !== undefined && typeof options.servingChild !== "boolean") {
    throw new ProxyOptionsError("servingChild", "expected true or false");
  }
  if (options.log !== undefined && typeof options.log !== "function") {
    throw new ProxyOptionsError("log", "expected a function");
  }
  if (options.onHeldRequest !== undefined && typeof options.onHeldRequest !== "function") {
    throw new ProxyOptionsError("onHeldRequest", "expected a function");
  }
  let initial: ConfigDocument | null = null;
  if (options.initialConfig != null) {
    try {
      initial = parseDocument(options.initialConfig);
    } catch (err) {
      if (err instanceof ConfigRejectedError) throw new ProxyOptionsError("initialConfig", err.message);
      throw err;
    }
  }
  const log = options.log ?? (() => {});
  const onHeldRequest = options.onHeldRequest;
  // The callback is the caller's code: its failure must not reach a request's path.
  const held = (service: string) => {
    try {
      onHeldRequest?.(service);
    } catch (err) {
      log(`proxy: onHeldRequest failed for ${service}: ${(err as Error).message}`);
    }
  };
  if (options.validatedDocuments !== undefined && typeof options.validatedDocuments !== "boolean") {
    throw new ProxyOptionsError("validatedDocuments", "expected true or false");
  }
  const accept = options.validatedDocuments ? (doc: ConfigDocument) => doc : parseDocument;
  if (options.extraMetrics !== undefined && typeof options.extraMetrics !== "function") {
    throw new ProxyOptionsError("extraMetrics", "expected a function");
  }
  const extra = options.extraMetrics;
  const extraMetrics = () => {
    try {
      return extra?.() ?? [];
    } catch (err) {
      log(`proxy: extraMetrics failed: ${(err as Error).message}`);
      return [];
    }
  };
  const stateDir = options.stateDir ?? null;
  if (stateDir !== null && (typeof stateDir !== "string" || stateDir === "")) {
    throw new ProxyOptionsError("stateDir", "expected a directory path or null");
  }
  const validated = options.validatedDocuments === true;
  return {
    host,
    port,
    tlsPort,
    processes,
    servingChild: options.servingChild === true,
    initial,
    accept,
    validated,
    log,
    onHeldRequest: held,
    extraMetrics,
    stateDir,
  };
}

/** Rejects unusable pairs before any process sees them (the message names the host). */
export function checkCertificates(certificates: TlsCertificate[]): TlsCertificate[] {
  if (!Array.isArray(certificates)) throw new ProxyOptionsError("certificates", "expected a list");
  try {
    new CertificateSet().replace(certificates);
  } catch (err) {
    throw new ProxyOptionsError("certificates", (err as Error).message);
  }
  return certificates.map(({ host, cert, key }) => ({ host, cert, key }));
}
