/**
 * @module
 * `[y/n]` questions answered on stdin. The same path serves a person at a terminal and a script
 * piping answers (`echo y | gateplane apply …`): stdin is read line by line and never more than asked.
 */
import { StringDecoder } from "node:string_decoder";
import { CliError } from "./errors.ts";
import { escapeLine } from "./escape.ts";
import type { Io } from "./io.ts";

/** Lines of a stream, one per `next()`, consuming the stream only while someone is waiting. */
export class LineReader {
  readonly #stream: NodeJS.ReadableStream;
  readonly #decoder = new StringDecoder("utf8");
  #buffer = "";
  #ended = false;
  #attached = false;
  #waiting: ((line: string | null) => void) | null = null;

  constructor(stream: NodeJS.ReadableStream) {
    this.#stream = stream;
  }

  next(): Promise<string | null> {
    const line = this.#take();
    if (line !== null) return Promise.resolve(line);
    if (this.#ended) return Promise.resolve(this.#rest());
    if (!this.#attached) {
      this.#attached = true;
      this.#stream.on("data", this.#onData);
      this.#stream.on("end", this.#onEnd);
      this.#stream.on("error", this.#onEnd);
    }
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#stream.resume();
    });
  }

  /** Stops reading so that a terminal's stdin does not keep the process alive. */
  close(): void {
    if (!this.#attached) return;
    this.#stream.off("data", this.#onData);
    this.#stream.off("end", this.#onEnd);
    this.#stream.off("error", this.#onEnd);
    this.#stream.pause();
    this.#attached = false;
  }

  #onData = (chunk: string | Buffer) => {
    this.#buffer += typeof chunk === "string" ? chunk : this.#decoder.write(chunk);
    if (!this.#waiting) return;
    const line = this.#take();
    if (line !== null) this.#deliver(line);
  };

  #onEnd = () => {
    this.#ended = true;
    this.#buffer += this.#decoder.end();
    // Lines left in the buffer stay there for later questions.
    if (this.#waiting) this.#deliver(this.#take() ?? this.#rest());
  };

  #deliver(line: string | null) {
    const waiting = this.#waiting;
    if (!waiting) return;
    this.#waiting = null;
    // Pause between questions: whatever follows belongs to the next question, or to nobody.
    if (!this.#ended) this.#stream.pause();
    waiting(line);
  }

  #take(): string | null {
    const end = this.#buffer.indexOf("\n");
    if (end < 0) return null;
    const line = this.#buffer.slice(0, end).replace(/\r$/, "");
    this.#buffer = this.#buffer.slice(end + 1);
    return line;
  }

  /** A last line without a newline still counts; an empty remainder is end of input. */
  #rest(): string | null {
    const rest = this.#buffer;
    this.#buffer = "";
    return rest === "" ? null : rest;
  }
}

/**
 * Asks `question [y/n]: ` until it gets an answer. End of input without an answer is an error rather
 * than a silent "no", so a script that forgot `-y` fails loudly.
 */
export async function confirm(question: string, lines: LineReader, io: Pick<Io, "stdin" | "stdout">): Promise<boolean> {
  for (;;) {
    // Questions name server resources (a gateway's name): escaped like every printed line.
    io.stdout.write(`${escapeLine(question)} [y/n]: `);
    const answer = await lines.next();
    // A terminal echoes the user's Enter; piped answers are invisible, so end the prompt's line ourselves.
    if (!io.stdin.isTTY) io.stdout.write("\n");
    if (answer === null) {
      throw new CliError(`no answer to "${question}" on stdin; pass -y to proceed without confirmation`);
    }
    const normalized = answer.trim().toLowerCase();
    if (normalized === "y" || normalized === "yes") return true;
    if (normalized === "n" || normalized === "no") return false;
    io.stdout.write("Please enter y or n\n");
  }
}
