/**
 * Headless Chromium (Debian package `chromium`) driven over the DevTools protocol with the `ws`
 * client the tests already use: no browser-automation dependency. Enough for the console's tests:
 * navigate, evaluate, type, press keys, read cookies, take screenshots, and record what must never
 * happen (JavaScript dialogs, CSP violations, page errors). The process is stopped by pid.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import WebSocket from "ws";

export function chromiumMissing(): string | null {
  try {
    execFileSync("sh", ["-c", "command -v chromium"], { stdio: "ignore" });
    return null;
  } catch {
    return "chromium is not installed: apt-get install -y chromium (.ci/run does)";
  }
}

type Listener = (params: any) => void;

export interface Cookie {
  name: string;
  value: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite?: string;
  path: string;
}

export class Page {
  /** Dialogs opened (`alert`, `confirm`…): an XSS that ran would open one. */
  readonly dialogs: string[] = [];
  /** Console and log entries about CSP violations, and uncaught page errors. */
  readonly problems: string[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly session: string,
  ) {}

  send<T = any>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return this.browser.send<T>(method, params, this.session);
  }

  on(event: string, listener: Listener): () => void {
    return this.browser.on(event, listener, this.session);
  }

  async init(): Promise<void> {
    this.on("Page.javascriptDialogOpening", (p) => {
      this.dialogs.push(String(p.message));
      void this.send("Page.handleJavaScriptDialog", { accept: true }).catch(() => {});
    });
    this.on("Log.entryAdded", (p) => {
      if (/Content Security Policy|Refused to/i.test(p.entry.text)) this.problems.push(p.entry.text);
    });
    this.on("Runtime.exceptionThrown", (p) =>
      this.problems.push(p.exceptionDetails.exception?.description ?? p.exceptionDetails.text),
    );
    await Promise.all([
      this.send("Page.enable"),
      this.send("Runtime.enable"),
      this.send("Log.enable"),
      this.send("Network.enable"),
    ]);
  }

  /** Waits for the load event that `action` causes. */
  async loading(action: () => Promise<unknown>, timeoutMs = 15_000): Promise<void> {
    let off = () => {};
    const loaded = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("page load timed out")), timeoutMs);
      off = this.on("Page.loadEventFired", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      await action();
      await loaded;
    } finally {
      off();
    }
  }

  goto(url: string): Promise<void> {
    return this.loading(() => this.send("Page.navigate", { url }));
  }

  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails)
      throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  /** Polls `expression` until it is truthy; returns its value. */
  async waitFor<T = unknown>(expression: string, what: string, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.eval<T>(expression).catch(() => null);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${expression})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  text(selector = "body"): Promise<string> {
    return this.eval<string>(`document.querySelector(${JSON.stringify(selector)})?.innerText ?? ""`);
  }

  async type(selector: string, text: string): Promise<void> {
    await this.eval(`document.querySelector(${JSON.stringify(selector)}).focus()`);
    await this.send("Input.insertText", { text });
  }

  async press(key: "Tab" | "Enter", shift = false): Promise<void> {
    const code = key === "Tab" ? 9 : 13;
    const base = { key, code: key, windowsVirtualKeyCode: code, modifiers: shift ? 8 : 0 };
    await this.send("Input.dispatchKeyEvent", {
      type: "rawKeyDown",
      ...base,
      ...(key === "Enter" ? { text: "\r" } : {}),
    });
    if (key === "Enter") await this.send("Input.dispatchKeyEvent", { type: "char", ...base, text: "\r" });
    await this.send("Input.dispatchKeyEvent", { type: "keyUp", ...base });
  }

  async cookies(): Promise<Cookie[]> {
    return (await this.send<{ cookies: Cookie[] }>("Network.getAllCookies")).cookies;
  }

  async viewport(width: number, height: number, mobile = false): Promise<void> {
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile });
  }

  /** A PNG of the whole page at the current width. */
  async screenshot(file: string): Promise<void> {
    const { data } = await this.send<{ data: string }>("Page.captureScreenshot", {
      format: "png",
      captureBeyondViewport: true,
    });
    await writeFile(file, Buffer.from(data, "base64"));
  }
}

/** Signals Chromium's process group (it leads its own: `detached`); a group already gone is fine. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is gone.
  }
}

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<{ event: string; session: string | undefined; listener: Listener }>();

  private constructor(
    private readonly child: ChildProcess,
    private readonly ws: WebSocket,
    private readonly profile: string,
  ) {
    ws.on("message", (data) => {
      const msg = JSON.parse(String(data)) as {
        id?: number;
        method?: string;
        params?: any;
        sessionId?: string;
        error?: { message: string };
        result?: any;
      };
      if (msg.id !== undefined) {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(msg.error.message));
        else p?.resolve(msg.result);
        return;
      }
      for (const l of this.listeners) if (l.event === msg.method && l.session === msg.sessionId) l.listener(msg.params);
    });
  }

  static async launch(): Promise<Browser> {
    const missing = chromiumMissing();
    if (missing) throw new Error(missing);
    const profile = await mkdtemp(path.join(tmpdir(), "gp-chromium-"));
    const child = spawn(
      "chromium",
      [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--remote-debugging-port=0",
        `--user-data-dir=${profile}`,
        "about:blank",
      ],
      // A process group of its own: chromium's renderers and helpers go down with it (close()).
      // Its temporary files (the singleton socket's directory) inside the profile, removed with it.
      { stdio: ["ignore", "ignore", "pipe"], detached: true, env: { ...process.env, TMPDIR: profile } },
    );
    const endpoint = await new Promise<string>((resolve, reject) => {
      let log = "";
      // Slow to start on a loaded machine (seen past 20 s beside another suite); a failed start
      // leaves nothing running.
      const timer = setTimeout(() => {
        if (child.pid) signalGroup(child.pid, "SIGKILL");
        void rm(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
        reject(new Error(`chromium did not start within 45 s: ${log}`));
      }, 45_000);
      child.stderr!.on("data", (d: Buffer) => {
        log += d;
        const m = log.match(/DevTools listening on (ws:\/\/\S+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on("exit", (code) => reject(new Error(`chromium exited (${code}): ${log}`)));
    });
    const ws = new WebSocket(endpoint, { perMessageDeflate: false });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return new Browser(child, ws, profile);
  }

  send<T = any>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(event: string, listener: Listener, session?: string): () => void {
    const entry = { event, session, listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  /** A new tab with a fresh cookie jar (its own browser context). */
  async newPage(): Promise<Page> {
    const { browserContextId } = await this.send("Target.createBrowserContext", { disposeOnDetach: true });
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank", browserContextId });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId);
    await page.init();
    return page;
  }

  async close(): Promise<void> {
    this.ws.close();
    const pid = this.child.pid;
    if (pid) {
      const exited = this.child.exitCode === null ? new Promise((r) => this.child.once("exit", r)) : null;
      signalGroup(pid, "SIGTERM");
      if (exited) await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      // Whatever of the group is left (a loaded machine: helpers still writing the profile) goes now.
      signalGroup(pid, "SIGKILL");
      if (exited) await exited;
    }
    // A helper's last writes can land while the tree is removed: rm retries what is not yet empty.
    await rm(this.profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
