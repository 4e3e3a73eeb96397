import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LogRotator, rotateIfFull } from "./log-rotation.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function logFile(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "gp-rotate-"));
  dirs.push(dir);
  return path.join(dir, "access.log");
}

describe("access log rotation", () => {
  it("renames a full file to .1 and shifts the older ones, the oldest past max_files overwritten", async () => {
    const file = logFile();
    for (let round = 1; round <= 4; round++) {
      writeFileSync(file, `round ${round}\n`);
      expect(await rotateIfFull(file, 5, 2)).toBe(true);
      expect(existsSync(file)).toBe(false);
    }
    expect(readFileSync(`${file}.1`, "utf8")).toBe("round 4\n");
    expect(readFileSync(`${file}.2`, "utf8")).toBe("round 3\n");
    expect(existsSync(`${file}.3`)).toBe(false);
  });

  it("leaves a file under max_size (or none) alone", async () => {
    const file = logFile();
    expect(await rotateIfFull(file, 100, 3)).toBe(false);
    writeFileSync(file, "short\n");
    expect(await rotateIfFull(file, 100, 3)).toBe(false);
    expect(readFileSync(file, "utf8")).toBe("short\n");
  });

  it("rotates once when several writers ask for the same full file, and reopens after it", async () => {
    const file = logFile();
    writeFileSync(file, "x".repeat(100));
    const rotator = new LogRotator(() => {});
    let reopened = 0;
    const target = { path: file, maxSize: 50, maxFiles: 5 };
    await Promise.all([1, 2, 3].map(() => rotator.rotate(target, () => reopened++)));
    expect(reopened).toBe(1);
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(existsSync(`${file}.2`)).toBe(false);
  });

  it("logs a rotation that fails and carries on", async () => {
    const file = logFile();
    writeFileSync(file, "x".repeat(100));
    // `.1` is a non-empty directory: the rename onto it fails.
    mkdirSync(`${file}.1`);
    writeFileSync(path.join(`${file}.1`, "keep"), "");
    const log: string[] = [];
    const rotator = new LogRotator((l) => log.push(l));
    await rotator.rotate({ path: file, maxSize: 50, maxFiles: 1 }, () => {});
    expect(log[0]).toMatch(/^access log: rotation of .* failed: /);
  });
});
