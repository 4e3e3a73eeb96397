/**
 * @module
 * The user-data that turns a fresh Ubuntu 22.04/24.04 VM into a gateway host: a `#cloud-config`
 * document that creates the `gateplane` system user, writes the bootstrap document (root, 0600) and
 * the agent's systemd unit, and runs one install script: Node.js, the agent package, optionally the
 * SGLang router in a venv, then `systemctl enable --now`.
 *
 * Node.js comes from the nodejs.org release tarball (checked against the release's SHASUMS256.txt),
 * not the NodeSource apt repository: it is the Node project's own build, needs no third-party apt
 * repository or signing key on the host (NodeSource has changed both before, breaking automation),
 * installs the same way on 22.04 and 24.04, x64 and arm64, and a background `apt upgrade` can never
 * swap the runtime under a running gateway. Hosts are replaced, not patched, to move to a newer Node.
 *
 * Pure (no file system), so whatever provisions hosts can call it, wherever it runs. It lives with the
 * cloud backends that render it (the Worker's side), not with the agent it installs: the two sides
 * share only `schema/` (here `AgentBootstrap`).
 *
 * @example
 * const userData = renderCloudInit({ bootstrap, agentPackageUrl: "https://example.com/gateplane-0.1.0.tgz" });
 */
import * as v from "valibot";
import { stringify } from "yaml";
import { AgentBootstrap } from "../../../schema/agent.ts";
import type { RouterConfig } from "../../../schema/gateway.ts";
import { formatIssue, fromValibot } from "../../../schema/issues.ts";
import { AGENT_UNIT, AGENT_UNIT_NAME, AGENT_UNIT_PATH, AGENT_USER, BOOTSTRAP_PATH } from "./systemd-unit.ts";

export interface CloudInitOptions {
  bootstrap: AgentBootstrap;
  /** The agent's npm package tarball (`npm pack` of this repository), over HTTPS. */
  agentPackageUrl: string;
  /** Node.js major release line (default 22). */
  nodeMajor?: 22 | 24;
  /**
   * The gateway's `router`: `type: sglang` installs the SGLang Model Gateway (`pip install
   * sglang-router`) for the agent to run per service.
   */
  router?: RouterConfig | null;
  /** Install the SGLang Model Gateway whatever `router` says (default: as `router` says). */
  sglangRouter?: boolean;
}

/** EC2 refuses user-data above 16 KiB (before base64). */
export const EC2_USER_DATA_LIMIT = 16 * 1024;
export const INSTALL_SCRIPT_PATH = "/usr/local/lib/gateplane/install-agent.sh";
/**
 * Pinned: hosts must come up the same way whenever they are created. 0.3.2 is the last `sglang-router`
 * on PyPI (what dstack installed); it serves the `/workers` API the agent prefers.
 */
export const SGLANG_ROUTER_PACKAGE = "sglang-router==0.3.2";
/** The SGLang router's venv; the unit learns it from `GATEPLANE_SGLANG_ROUTER_VENV`. */
export const SGLANG_ROUTER_VENV = "/opt/gateplane/sglang-router";
const SGLANG_DROP_IN_PATH = `/etc/systemd/system/${AGENT_UNIT_NAME}.d/sglang-router.conf`;

/** The options cannot make a usable user-data document. */
export class CloudInitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CloudInitError";
  }
}

/** `'…'` for bash: nothing inside single quotes is special except the quote itself. */
const shellQuote = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

export function renderCloudInit(options: CloudInitOptions): string {
  const parsed = v.safeParse(AgentBootstrap, options.bootstrap);
  if (!parsed.success) {
    throw new CloudInitError(`bootstrap: ${fromValibot(parsed.issues).map(formatIssue).join("; ")}`);
  }
  let packageUrl: URL;
  try {
    packageUrl = new URL(options.agentPackageUrl);
  } catch {
    throw new CloudInitError(`agentPackageUrl: expected a URL, got ${JSON.stringify(options.agentPackageUrl)}`);
  }
  // The package runs as the gateway's agent: fetching it in clear text would let the network replace it.
  if (packageUrl.protocol !== "https:") {
    throw new CloudInitError(`agentPackageUrl: expected an https URL, got ${packageUrl.protocol}`);
  }
  const nodeMajor = options.nodeMajor ?? 22;
  if (nodeMajor !== 22 && nodeMajor !== 24) {
    throw new CloudInitError(`nodeMajor: expected 22 or 24, got ${String(nodeMajor)}`);
  }
  const sglangRouter = options.sglangRouter ?? options.router?.type === "sglang";

  const files: Array<Record<string, string>> = [
    {
      path: BOOTSTRAP_PATH,
      owner: "root:root",
      permissions: "0600",
      content: `${JSON.stringify(parsed.output, null, 2)}\n`,
    },
    { path: AGENT_UNIT_PATH, owner: "root:root", permissions: "0644", content: AGENT_UNIT },
    {
      path: INSTALL_SCRIPT_PATH,
      owner: "root:root",
      permissions: "0700",
      content: installScript(packageUrl.href, nodeMajor, sglangRouter),
    },
  ];
  if (sglangRouter) {
    files.push({
      path: SGLANG_DROP_IN_PATH,
      owner: "root:root",
      permissions: "0644",
      content: `[Service]\nEnvironment=GATEPLANE_SGLANG_ROUTER_VENV=${SGLANG_ROUTER_VENV}\n`,
    });
  }
  const document = {
    // "default" keeps the image's login user (ubuntu); a users list without it would remove that user.
    users: ["default", { name: AGENT_USER, system: true, shell: "/usr/sbin/nologin", lock_passwd: true }],
    write_files: files,
    ...(sglangRouter ? { package_update: true, packages: ["python3-venv"] } : {}),
    runcmd: [["bash", INSTALL_SCRIPT_PATH]],
  };
  // Literal blocks keep the unit and the script byte for byte; no folding of long lines.
  return `#cloud-config\n${stringify(document, { blockQuote: "literal", lineWidth: 0 })}`;
}

/** Runs once from runcmd (output in /var/log/cloud-init-output.log); safe to run again. */
function installScript(packageUrl: string, nodeMajor: number, sglangRouter: boolean): string {
  return `#!/bin/bash
# Installs the Gateplane agent and starts it. Written by Gateplane's cloud-init.
set -euo pipefail

NODE_MAJOR=${nodeMajor}
AGENT_PACKAGE_URL=${shellQuote(packageUrl)}
SGLANG_ROUTER=${sglangRouter ? 1 : 0}

# The network may still be settling at first boot.
retry() {
  local attempt
  for attempt in 1 2 3 4 5; do
    "$@" && return 0
    echo "gateplane: attempt $attempt failed: $*" >&2
    sleep $((attempt * 5))
  done
  return 1
}

install_node() {
  local arch work tarball base="https://nodejs.org/dist/latest-v\${NODE_MAJOR}.x"
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "gateplane: unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
  work=$(mktemp -d)
  # Gone however this ends: a tarball that fails its check must not stay behind in /tmp.
  trap "rm -rf '$work'" EXIT
  retry curl -fsSL -o "$work/SHASUMS256.txt" "$base/SHASUMS256.txt"
  tarball=$(grep -oE "node-v\${NODE_MAJOR}\\.[0-9]+\\.[0-9]+-linux-\${arch}\\.tar\\.xz$" "$work/SHASUMS256.txt" | head -n 1)
  retry curl -fsSL -o "$work/$tarball" "$base/$tarball"
  (cd "$work" && grep "  $tarball\\$" SHASUMS256.txt | sha256sum --check --strict -)
  tar -xJf "$work/$tarball" -C /usr/local --strip-components=1 --no-same-owner
  rm -rf "$work"
}

if [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || true)" != "$NODE_MAJOR" ]; then
  install_node
fi
retry npm install --global --no-fund --no-audit --omit=dev "$AGENT_PACKAGE_URL"

if [ "$SGLANG_ROUTER" = 1 ]; then
  mkdir -p "${SGLANG_ROUTER_VENV}"
  python3 -m venv ${SGLANG_ROUTER_VENV}
  retry ${SGLANG_ROUTER_VENV}/bin/pip install --no-cache-dir ${shellQuote(SGLANG_ROUTER_PACKAGE)}
fi

systemctl daemon-reload
systemctl enable --now ${AGENT_UNIT_NAME}
`;
}
