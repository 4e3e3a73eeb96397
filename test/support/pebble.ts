/**
 * Pebble (Let's Encrypt's ACME test server, Debian package `pebble`) on loopback for the HTTPS
 * tests, with `pebble-challtestsrv` as its DNS server so every name resolves to 127.0.0.1 unless a
 * test points one elsewhere. Real validation: Pebble's VA fetches the HTTP-01 answer from the
 * proxy's HTTP port (`httpPort`). Both processes are stopped by pid.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Agent, fetch } from "undici";
import { selfSignedCertificate } from "../fakes/tls/self-signed.ts";
import { freePorts } from "./ports.ts";

export interface Pebble {
  directoryUrl: string;
  /** PEM of the certificate Pebble's own HTTPS listener shows (trust it to talk to the directory). */
  serverCa: string;
  /** The root that signs issued certificates (from the management endpoint). */
  root(): Promise<string>;
  /** Makes `host` resolve to `address` (e.g. 127.0.0.2, where nothing listens). */
  pointHost(host: string, address: string): Promise<void>;
  stop(): Promise<void>;
}

export function pebbleMissing(): string | null {
  for (const bin of ["pebble", "pebble-challtestsrv", "openssl"]) {
    try {
      execFileSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" });
    } catch {
      return `${bin} is not installed: apt-get install -y pebble openssl (.ci/run does)`;
    }
  }
  return null;
}

function started(child: ChildProcess, name: string, log: string[]): void {
  child.stdout?.on("data", (d: Buffer) => log.push(`${name}: ${d}`));
  child.stderr?.on("data", (d: Buffer) => log.push(`${name}: ${d}`));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || !child.pid) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

export interface PebbleOptions {
  /** Where Pebble's VA fetches HTTP-01 answers (the proxy's HTTP port). */
  httpPort: number;
  validitySeconds?: number;
  /** External Account Binding required, with these kid → base64url HMAC keys. */
  eab?: Record<string, string>;
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const missing = pebbleMissing();
  if (missing) throw new Error(missing);
  const dir = await mkdtemp(path.join(tmpdir(), "gateplane-pebble-"));
  const [acmePort, managementPort, dnsPort, challManagementPort] = await freePorts(4);
  const listener = selfSignedCertificate({
    commonName: "pebble",
    subjectAltName: "IP:127.0.0.1,DNS:localhost",
    key: "ec-p256",
    days: 2,
  });
  await writeFile(path.join(dir, "key.pem"), listener.key);
  await writeFile(path.join(dir, "cert.pem"), listener.cert);
  await writeFile(
    path.join(dir, "pebble.json"),
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: path.join(dir, "cert.pem"),
        privateKey: path.join(dir, "key.pem"),
        httpPort: options.httpPort,
        tlsPort: 1,
        ocspResponderURL: "",
        externalAccountBindingRequired: options.eab !== undefined,
        ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
        ...(options.validitySeconds ? { certificateValidityPeriod: options.validitySeconds } : {}),
      },
    }),
  );
  const log: string[] = [];
  const dns = spawn(
    "pebble-challtestsrv",
    [
      "-dns01",
      `127.0.0.1:${dnsPort}`,
      "-http01",
      "",
      "-https01",
      "",
      "-tlsalpn01",
      "",
      "-management",
      `127.0.0.1:${challManagementPort}`,
      "-defaultIPv4",
      "127.0.0.1",
      "-defaultIPv6",
      "",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  started(dns, "challtestsrv", log);
  const pebble = spawn("pebble", ["-config", path.join(dir, "pebble.json"), "-dnsserver", `127.0.0.1:${dnsPort}`], {
    stdio: ["ignore", "pipe", "pipe"],
    // No random VA sleeps, no nonce rejections, no authorization reuse: every order validates for real.
    env: { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" },
  });
  started(pebble, "pebble", log);
  const serverCa = listener.cert;
  const dispatcher = new Agent({ connect: { ca: serverCa } });
  const stop = async () => {
    await Promise.all([stopChild(pebble), stopChild(dns)]);
    await dispatcher.close();
    await rm(dir, { recursive: true, force: true });
  };
  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await fetch(directoryUrl, { dispatcher });
      await res.arrayBuffer();
      const mgmt = await fetch(`http://127.0.0.1:${challManagementPort}/`, {}).catch(() => null);
      if (res.ok && mgmt) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline || pebble.exitCode !== null || dns.exitCode !== null) {
      await stop();
      throw new Error(`pebble did not start:\n${log.join("")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    directoryUrl,
    serverCa,
    async root() {
      const res = await fetch(`https://127.0.0.1:${managementPort}/roots/0`, { dispatcher });
      return res.text();
    },
    async pointHost(host, address) {
      const res = await fetch(`http://127.0.0.1:${challManagementPort}/add-a`, {
        method: "POST",
        body: JSON.stringify({ host, addresses: [address] }),
      });
      if (!res.ok) throw new Error(`challtestsrv add-a: ${res.status} ${await res.text()}`);
    },
    stop,
  };
}
