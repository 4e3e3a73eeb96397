/**
 * Throwaway self-signed certificates (openssl) for the tests: loopback servers with a private CA
 * (fakes served over https, as clusters and test endpoints have; Pebble's own listener) and client
 * certificates (Azure's certificate credentials).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

export interface SelfSignedOptions {
  commonName: string;
  /** e.g. `IP:127.0.0.1,DNS:localhost`; none for a client certificate. */
  subjectAltName?: string;
  /** RSA 2048 by default. */
  key?: "rsa" | "ec-p256";
  days?: number;
}

export function selfSignedCertificate(options: SelfSignedOptions): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "gp-test-cert-"));
  const keyArgs = options.key === "ec-p256" ? ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["rsa:2048"];
  const san = options.subjectAltName ? ["-addext", `subjectAltName=${options.subjectAltName}`] : [];
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        ...keyArgs,
        "-nodes",
        "-days",
        String(options.days ?? 1),
        "-subj",
        `/CN=${options.commonName}`,
        ...san,
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(path.join(dir, "key.pem"), "utf8"),
      cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const selfSignedLoopbackCertificate = () =>
  selfSignedCertificate({ commonName: "127.0.0.1", subjectAltName: "IP:127.0.0.1" });
