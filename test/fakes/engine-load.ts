/**
 * @module
 * How a fake model server's latency follows its load, as a continuous-batching engine's does
 * (vLLM, SGLang): at most `maxRunning` requests run at once and the rest wait in arrival order
 * (their time to first token grows with the queue), and a request's prefill takes `prefillMsPerChar`
 * for every prompt character the engine's prefix cache does not hold. The cache is the engine's own:
 * the prompts it served, a new prompt hitting the longest prefix it shares with any of them
 * (characters, as the router's text; a real engine counts tokens in blocks). Replicas do not share
 * caches, so sending a conversation's next turn elsewhere costs its whole prefill again.
 */

export interface EngineLoadOptions {
  /** Prefill milliseconds per uncached prompt character (default 0). */
  prefillMsPerChar?: number;
  /** Requests running at once (the engine's batch); the rest wait (default 4). */
  maxRunning?: number;
  /** Prompts kept in the prefix cache, least recently used evicted first (default 256). */
  cachedPrompts?: number;
}

export interface Admission {
  /** Prompt characters the cache held. */
  cachedChars: number;
  /** Milliseconds of prefill left to do (uncached characters × prefillMsPerChar). */
  prefillMs: number;
  /** Milliseconds the request waited for a slot. */
  queuedMs: number;
  /** Frees the request's slot (at the end of its response); idempotent. */
  release(): void;
}

const commonPrefix = (a: string, b: string) => {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
};

export class EngineLoad {
  readonly maxRunning: number;
  readonly #prefillMsPerChar: number;
  readonly #capacity: number;
  /** Prompts served, most recent last. */
  readonly #cache: string[] = [];
  readonly #queue: (() => void)[] = [];
  #running = 0;
  /** The most requests ever waiting at once. */
  peakWaiting = 0;
  /** Prompt characters seen and those the cache held, in total. */
  promptChars = 0;
  cachedChars = 0;

  constructor(options: EngineLoadOptions = {}) {
    this.maxRunning = options.maxRunning ?? 4;
    this.#prefillMsPerChar = options.prefillMsPerChar ?? 0;
    this.#capacity = options.cachedPrompts ?? 256;
  }

  get running(): number {
    return this.#running;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Waits for a slot, then looks `prompt` up in the cache (and caches it). `abandoned` is checked when
   * the slot comes: a request whose client left gives it back at once.
   */
  async admit(prompt: string, abandoned: () => boolean = () => false): Promise<Admission> {
    const queuedAt = performance.now();
    if (this.#running >= this.maxRunning) {
      await new Promise<void>((resolve) => {
        this.#queue.push(resolve);
        this.peakWaiting = Math.max(this.peakWaiting, this.#queue.length);
      });
    } else {
      this.#running++;
    }
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      // The slot passes to the next in line (running stays the same), else it is free.
      if (next) next();
      else this.#running--;
    };
    if (abandoned()) {
      release();
      return { cachedChars: 0, prefillMs: 0, queuedMs: performance.now() - queuedAt, release };
    }
    let cached = 0;
    let at = -1;
    for (let i = 0; i < this.#cache.length; i++) {
      const shared = commonPrefix(this.#cache[i]!, prompt);
      if (shared > cached) {
        cached = shared;
        at = i;
      }
    }
    if (at >= 0 && this.#cache[at]!.length <= prompt.length && cached === this.#cache[at]!.length) {
      // The new prompt extends a cached one (the next turn of a conversation): it replaces it.
      this.#cache.splice(at, 1);
    }
    this.#cache.push(prompt);
    if (this.#cache.length > this.#capacity) this.#cache.shift();
    this.promptChars += prompt.length;
    this.cachedChars += cached;
    return {
      cachedChars: cached,
      prefillMs: (prompt.length - cached) * this.#prefillMsPerChar,
      queuedMs: performance.now() - queuedAt,
      release,
    };
  }
}

/** The prompt text of an OpenAI or SGLang request body, as the engine would prefill it (roughly). */
export function promptText(body: Record<string, unknown> | null): string {
  if (!body) return "";
  if (Array.isArray(body.messages)) {
    return body.messages
      .map((m) => {
        const content = (m as { content?: unknown } | null)?.content;
        if (typeof content === "string") return content;
        if (Array.isArray(content)) {
          return content.map((p) => (typeof p?.text === "string" ? p.text : "")).join(" ");
        }
        return "";
      })
      .join(" ");
  }
  if (typeof body.prompt === "string") return body.prompt;
  if (Array.isArray(body.prompt)) return body.prompt.filter((p) => typeof p === "string").join(" ");
  if (typeof body.text === "string") return body.text;
  return "";
}
