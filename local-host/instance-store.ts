/**
 * @module
 * The daemon's record of its hosts, persisted to `<stateDir>/instances.json`. Every change is written
 * through before the API answers, so a created instance survives a daemon crash and a restarted daemon
 * can relaunch what was running.
 */
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../lib/atomic-file.ts";
import { INSTANCE_STATES, type LocalInstance } from "../schema/local-host.ts";
import { StateFileError } from "./errors.ts";

const FORMAT_VERSION = 1;

interface StateFile {
  version: number;
  instances: LocalInstance[];
}

function isInstance(value: unknown): value is LocalInstance {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.instance_id === "string" &&
    typeof v.client_token === "string" &&
    typeof v.name === "string" &&
    (INSTANCE_STATES as readonly unknown[]).includes(v.state) &&
    typeof v.http_port === "number" &&
    typeof v.https_port === "number"
  );
}

export class InstanceStore {
  readonly file: string;
  private readonly byId = new Map<string, LocalInstance>();
  private readonly idByClientToken = new Map<string, string>();
  /** Writes are chained so two saves never race on the rename and the last one wins. */
  private writing: Promise<void> = Promise.resolve();

  private constructor(file: string) {
    this.file = file;
  }

  static async open(stateDir: string): Promise<InstanceStore> {
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const store = new InstanceStore(path.join(stateDir, "instances.json"));
    let text: string;
    try {
      text = await readFile(store.file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return store;
      throw new StateFileError(store.file, "cannot be read", { cause: error });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new StateFileError(store.file, "is not valid JSON", { cause: error });
    }
    const state = parsed as Partial<StateFile> | null;
    if (state?.version !== FORMAT_VERSION || !Array.isArray(state.instances)) {
      throw new StateFileError(store.file, `expected {"version": ${FORMAT_VERSION}, "instances": [...]}`);
    }
    for (const [i, instance] of state.instances.entries()) {
      if (!isInstance(instance)) throw new StateFileError(store.file, `instances[${i}] is not an instance record`);
      store.put(instance);
    }
    return store;
  }

  get(id: string): LocalInstance | undefined {
    return this.byId.get(id);
  }

  byClientToken(clientToken: string): LocalInstance | undefined {
    const id = this.idByClientToken.get(clientToken);
    return id === undefined ? undefined : this.byId.get(id);
  }

  all(): LocalInstance[] {
    return [...this.byId.values()];
  }

  /** Ports promised to hosts that are not terminated (they keep them across agent restarts). */
  portsInUse(): Set<number> {
    const ports = new Set<number>();
    for (const instance of this.byId.values()) {
      if (instance.state === "terminated") continue;
      ports.add(instance.http_port);
      ports.add(instance.https_port);
    }
    return ports;
  }

  put(instance: LocalInstance): void {
    this.byId.set(instance.instance_id, instance);
    this.idByClientToken.set(instance.client_token, instance.instance_id);
  }

  /** Persists the current records; resolves once they are on disk. */
  save(): Promise<void> {
    const snapshot: StateFile = { version: FORMAT_VERSION, instances: this.all() };
    const data = `${JSON.stringify(snapshot, null, 2)}\n`;
    const write = this.writing.then(() => writeFileAtomic(this.file, data));
    // A failed write must not poison the chain for later saves; the caller still sees the failure.
    this.writing = write.catch(() => {});
    return write;
  }

  /** Resolves once every save started so far has finished. */
  flush(): Promise<void> {
    return this.writing;
  }
}
