import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import {
  CloudInitError,
  EC2_USER_DATA_LIMIT,
  INSTALL_SCRIPT_PATH,
  renderCloudInit,
  SGLANG_ROUTER_VENV,
} from "../../durable-objects/backends/clouds/cloud-init.ts";
import {
  ADMIN_PORT,
  AGENT_BIN,
  AGENT_NODE_FLAGS,
  AGENT_UNIT,
  BOOTSTRAP_PATH,
} from "../../durable-objects/backends/clouds/systemd-unit.ts";
import { bootstrapFor } from "../support/agent-fixtures.ts";

const run = promisify(execFile);
const PACKAGE_URL = "https://downloads.example.com/gateplane/gateplane-0.1.0.tgz";
const bootstrap = bootstrapFor("https://gateplane.example.workers.dev");

interface WriteFile {
  path: string;
  owner: string;
  permissions: string;
  content: string;
}

const render = (extra: Partial<Parameters<typeof renderCloudInit>[0]> = {}) =>
  renderCloudInit({ bootstrap, agentPackageUrl: PACKAGE_URL, ...extra });

function parsed(text: string) {
  const doc = parse(text) as { users: unknown[]; write_files: WriteFile[]; runcmd: string[][]; packages?: string[] };
  const file = (p: string) => doc.write_files.find((f) => f.path === p);
  return { doc, file, script: file(INSTALL_SCRIPT_PATH)!.content };
}

describe("renderCloudInit", () => {
  it("renders a cloud-config with the user, bootstrap, unit and install script", () => {
    const text = render();
    expect(text.startsWith("#cloud-config\n")).toBe(true);
    const { doc, file, script } = parsed(text);

    expect(doc.users).toEqual([
      "default",
      { name: "gateplane", system: true, shell: "/usr/sbin/nologin", lock_passwd: true },
    ]);
    const boot = file(BOOTSTRAP_PATH)!;
    expect(boot).toMatchObject({ owner: "root:root", permissions: "0600" });
    expect(JSON.parse(boot.content)).toEqual(bootstrap);

    const unit = file("/etc/systemd/system/gateplane-agent.service")!;
    expect(unit).toMatchObject({ owner: "root:root", permissions: "0644" });
    expect(unit.content).toBe(AGENT_UNIT);

    expect(file(INSTALL_SCRIPT_PATH)).toMatchObject({ owner: "root:root", permissions: "0700" });
    expect(script).toContain("NODE_MAJOR=22\n");
    expect(script).toContain(`AGENT_PACKAGE_URL='${PACKAGE_URL}'`);
    expect(script).toContain('npm install --global --no-fund --no-audit --omit=dev "$AGENT_PACKAGE_URL"');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's ${…}, not a template.
    expect(script).toContain("https://nodejs.org/dist/latest-v${NODE_MAJOR}.x");
    expect(script).toContain("systemctl enable --now gateplane-agent.service");
    expect(script).toContain("SGLANG_ROUTER=0\n");
    expect(doc.runcmd).toEqual([["bash", INSTALL_SCRIPT_PATH]]);
    expect(doc.packages).toBeUndefined();
    expect(file(`/etc/systemd/system/gateplane-agent.service.d/sglang-router.conf`)).toBeUndefined();
  });

  it("installs the SGLang router when the gateway's router is sglang, and only then", () => {
    const sglang = parsed(render({ router: { type: "sglang", policy: "cache_aware" } }));
    expect(sglang.script).toContain("SGLANG_ROUTER=1\n");
    expect(sglang.doc.packages).toEqual(["python3-venv"]);
    expect(parsed(render({ router: null })).script).toContain("SGLANG_ROUTER=0\n");
    // An explicit choice wins (an operator may preinstall it in the image).
    expect(parsed(render({ router: { type: "sglang", policy: "random" }, sglangRouter: false })).script).toContain(
      "SGLANG_ROUTER=0\n",
    );
  });

  it("adds the SGLang router in a venv when asked, and Node 24 when asked", () => {
    const { doc, file, script } = parsed(render({ sglangRouter: true, nodeMajor: 24 }));
    expect(doc.packages).toEqual(["python3-venv"]);
    expect(script).toContain("SGLANG_ROUTER=1\n");
    expect(script).toContain(`python3 -m venv ${SGLANG_ROUTER_VENV}`);
    expect(script).toContain(`${SGLANG_ROUTER_VENV}/bin/pip install --no-cache-dir 'sglang-router==0.3.2'`);
    expect(script).toContain("NODE_MAJOR=24\n");
    expect(file("/etc/systemd/system/gateplane-agent.service.d/sglang-router.conf")!.content).toBe(
      `[Service]\nEnvironment=GATEPLANE_SGLANG_ROUTER_VENV=${SGLANG_ROUTER_VENV}\n`,
    );
  });

  it("stays under EC2's 16 KiB user-data limit, even with long names", () => {
    const long = {
      ...bootstrap,
      gateway_name: `g${"x".repeat(40)}`,
      project_name: "p".repeat(200),
      control_plane_url: `https://${"c".repeat(60)}.example.workers.dev/prefix/${"d".repeat(100)}`,
    };
    const text = renderCloudInit({
      bootstrap: long,
      agentPackageUrl: `${PACKAGE_URL}?token=${"t".repeat(300)}`,
      sglangRouter: true,
    });
    expect(JSON.parse(parsed(text).file(BOOTSTRAP_PATH)!.content)).toEqual(long);
    expect(Buffer.byteLength(text)).toBeLessThan(EC2_USER_DATA_LIMIT);
    // Room to spare for what the install grows into (certificates, more flags).
    expect(Buffer.byteLength(render())).toBeLessThan(EC2_USER_DATA_LIMIT / 2);
  });

  it("refuses a package URL that is not https, and an invalid bootstrap", () => {
    expect(() => render({ agentPackageUrl: "http://downloads.example.com/a.tgz" })).toThrow(CloudInitError);
    expect(() => render({ agentPackageUrl: "not a url" })).toThrow(/agentPackageUrl: expected a URL/);
    expect(() => render({ bootstrap: { ...bootstrap, object_id: "nope" } })).toThrow(/bootstrap: object_id/);
    expect(() => render({ nodeMajor: 20 as 22 })).toThrow(/nodeMajor/);
  });

  it("keeps the unit file on disk identical to the one it renders, with the paths it promises", async () => {
    const onDisk = await readFile(
      new URL("../../durable-objects/backends/clouds/gateplane-agent.service", import.meta.url),
      "utf8",
    );
    expect(onDisk).toBe(AGENT_UNIT);
    const lines = AGENT_UNIT.split("\n");
    for (const expected of [
      "Restart=always",
      "User=gateplane",
      "AmbientCapabilities=CAP_NET_BIND_SERVICE",
      "StateDirectory=gateplane",
      "LimitNOFILE=1048576",
      `LoadCredential=bootstrap.json:${BOOTSTRAP_PATH}`,
      "WantedBy=multi-user.target",
    ]) {
      expect(lines).toContain(expected);
    }
    const execStart = lines.find((l) => l.startsWith("ExecStart="))!;
    expect(execStart).toBe(
      `ExecStart=/usr/bin/env node ${AGENT_NODE_FLAGS.join(" ")} ${AGENT_BIN} --user-data %d/bootstrap.json --state-dir /var/lib/gateplane --host 0.0.0.0 --http-port 80 --https-port 443 --admin-port ${ADMIN_PORT}`,
    );
  });
});

describe("the install script", () => {
  let dir: string;
  let bin: string;
  let calls: string;
  let tmp: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "gp-cloud-init-"));
    bin = path.join(dir, "bin");
    calls = path.join(dir, "calls.log");
    tmp = path.join(dir, "tmp");
    await run("mkdir", [bin, tmp]);
    // Stand-ins for everything that would change the machine or reach the network; each logs its call.
    const stub = async (name: string, body = "") => {
      await writeFile(path.join(bin, name), `#!/bin/bash\necho "${name} $*" >> "$CALLS"\n${body}\n`);
      await chmod(path.join(bin, name), 0o755);
    };
    // biome-ignore lint/suspicious/noTemplateCurlyInString: bash's ${…}, not a template.
    await stub("uname", 'echo "${UNAME_M:-x86_64}"');
    await stub(
      "curl",
      `out=""; url=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2 ;; -*) shift ;; *) url="$1"; shift ;; esac; done
case "$url" in *SHASUMS256.txt) printf '%s' "$SUMS" > "$out" ;; *) printf '%s' "$TARBALL" > "$out" ;; esac`,
    );
    for (const name of ["tar", "npm", "systemctl"]) await stub(name);
    // A fresh image has no Node (whatever this machine has).
    await stub("node", "exit 127");
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runScript(text: string, env: Record<string, string>) {
    const script = path.join(dir, "install-agent.sh");
    await writeFile(script, parsed(text).script);
    try {
      // Its temporary files in this test's directory, where the tests see what it leaves behind.
      await run("bash", [script], { env: { PATH: `${bin}:/usr/bin:/bin`, CALLS: calls, TMPDIR: tmp, ...env } });
      return { code: 0, calls: await readFile(calls, "utf8") };
    } catch (error) {
      return { code: (error as { code: number }).code, calls: await readFile(calls, "utf8").catch(() => "") };
    }
  }

  const tarball = "not really a tarball";
  const sha = createHash("sha256").update(tarball).digest("hex");
  const sums = (arch: string) =>
    [
      `${"0".repeat(64)}  node-v22.20.0-darwin-arm64.tar.gz`,
      `${sha}  node-v22.20.0-linux-${arch}.tar.xz`,
      `${"1".repeat(64)}  node-v22.20.0-linux-${arch}.tar.gz`,
      "",
    ].join("\n");

  it("is valid bash", async () => {
    await expect(run("bash", ["-n", "-c", parsed(render({ sglangRouter: true })).script])).resolves.toBeDefined();
  });

  it("installs the checked Node tarball for the machine's architecture, the package, then starts the unit", async () => {
    const result = await runScript(render(), { SUMS: sums("arm64"), TARBALL: tarball, UNAME_M: "aarch64" });
    expect(result.code).toBe(0);
    const lines = result.calls.trim().split("\n");
    expect(lines.find((l) => l.startsWith("curl") && l.includes("SHASUMS256"))).toMatch(
      /https:\/\/nodejs\.org\/dist\/latest-v22\.x\/SHASUMS256\.txt$/,
    );
    expect(lines.find((l) => l.startsWith("curl") && l.includes(".tar.xz"))).toMatch(
      /https:\/\/nodejs\.org\/dist\/latest-v22\.x\/node-v22\.20\.0-linux-arm64\.tar\.xz$/,
    );
    expect(lines.find((l) => l.startsWith("tar"))).toMatch(
      /^tar -xJf \S+\/node-v22\.20\.0-linux-arm64\.tar\.xz -C \/usr\/local --strip-components=1 --no-same-owner$/,
    );
    expect(lines.filter((l) => /^(npm|systemctl|python3)/.test(l))).toEqual([
      `npm install --global --no-fund --no-audit --omit=dev ${PACKAGE_URL}`,
      "systemctl daemon-reload",
      "systemctl enable --now gateplane-agent.service",
    ]);
    expect(await readdir(tmp)).toEqual([]);
  });

  it("stops before installing anything when the tarball does not match its checksum", async () => {
    const result = await runScript(render(), { SUMS: sums("x64"), TARBALL: "tampered" });
    expect(result.code).not.toBe(0);
    expect(result.calls).not.toMatch(/^(tar|npm|systemctl)/m);
    // The download that failed its check is removed (it stayed in /tmp before).
    expect(await readdir(tmp)).toEqual([]);
  });
});
