/**
 * @module
 * For the shared `npm start` stack (shared-stack-setup.ts): a stand-in for the cloud-init router
 * venv (`GATEPLANE_SGLANG_ROUTER_VENV`, agent/sglang/detect.ts) whose `bin/python3` is the fake
 * SGLang router (test/fakes/sglang-router.mjs) on the hosts that opt in, and missing everywhere else.
 *
 * A host opts in by the file {@link FAKE_ROUTER_MARKER} in its directory, the agent's working
 * directory (`enableFakeRouter`): its content is extra arguments for the fake. The agent's probe
 * (`python3 -c …find_spec…`) then succeeds, `python3 -m sglang_router.launch_router …` runs the fake.
 * Without the file the probe fails, exactly as on a host without the router, so the stack's other
 * files see no router. A host detects once, at its first service that could use the router: the file
 * must be there before that.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";

export const FAKE_ROUTER_MARKER = "fake-sglang-router";

const FAKE = path.resolve(import.meta.dirname, "../fakes/sglang-router.mjs");
const quote = (s: string) => `'${s.replaceAll("'", `'"'"'`)}'`;

/** Writes the venv under `dir`; returns its path (the agents' `GATEPLANE_SGLANG_ROUTER_VENV`). */
export async function writeFakeRouterVenv(dir: string): Promise<string> {
  const venv = path.join(dir, "sglang-router-venv");
  await mkdir(path.join(venv, "bin"), { recursive: true });
  const python = path.join(venv, "bin", "python3");
  await writeFile(
    python,
    [
      "#!/bin/sh",
      `[ -f ./${FAKE_ROUTER_MARKER} ] || exit 1`,
      'case "$1" in',
      "  -c) exit 0 ;;",
      // `-m sglang_router.launch_router ARGS…`: the marker's arguments first (the fake's own flags).
      `  -m) shift 2; exec ${quote(process.execPath)} ${quote(FAKE)} $(cat ./${FAKE_ROUTER_MARKER}) "$@" ;;`,
      "esac",
      "exit 1",
      "",
    ].join("\n"),
  );
  await chmod(python, 0o755);
  return venv;
}

/** Gives the host whose directory is `hostDir` the fake router (with `args` for it). */
export async function enableFakeRouter(hostDir: string, args: string[] = []): Promise<void> {
  await writeFile(path.join(hostDir, FAKE_ROUTER_MARKER), args.join(" "));
}
