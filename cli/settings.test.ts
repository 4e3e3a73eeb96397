import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../test/support/cli-io.ts";
import { CliError } from "./errors.ts";
import { resolveSettings } from "./settings.ts";

function writeSettings(dir: string, settings: unknown, name = join(".gateplane", "config.json")): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, typeof settings === "string" ? settings : JSON.stringify(settings));
  return path;
}

/** A checkout with `.gateplane/config.json`, a working directory two levels below it, and a home. */
function layout() {
  const root = tempDir();
  const cwd = join(root, "deploy", "prod");
  mkdirSync(cwd, { recursive: true });
  const homedir = tempDir("gateplane-home-");
  return { root, cwd, homedir };
}

const FULL = { url: "http://file:1", token: "file-token", project: "file-project" };

describe("resolveSettings", () => {
  it("prefers flags over environment over file, field by field", () => {
    const { root, cwd, homedir } = layout();
    writeSettings(root, FULL);
    const env = { GATEPLANE_TOKEN: "env-token", GATEPLANE_PROJECT: "env-project" };
    expect(resolveSettings({ project: "flag-project" }, { env, cwd, homedir })).toEqual({
      url: "http://file:1",
      token: "env-token",
      project: "flag-project",
    });
  });

  it("finds the nearest .gateplane/config.json walking up from the working directory", () => {
    const { root, cwd, homedir } = layout();
    writeSettings(root, FULL);
    writeSettings(join(root, "deploy"), { ...FULL, project: "nearer" });
    writeSettings(homedir, { ...FULL, project: "home" });
    expect(resolveSettings({}, { env: {}, cwd, homedir }).project).toBe("nearer");
  });

  it("falls back to ~/.gateplane/config.json", () => {
    const { cwd, homedir } = layout();
    writeSettings(homedir, { ...FULL, project: "home" });
    expect(resolveSettings({}, { env: {}, cwd, homedir }).project).toBe("home");
  });

  it("uses $GATEPLANE_CONFIG before any .gateplane directory, relative to the working directory", () => {
    const { root, cwd, homedir } = layout();
    writeSettings(root, FULL);
    writeSettings(cwd, { ...FULL, project: "explicit" }, "settings.json");
    const env = { GATEPLANE_CONFIG: "settings.json" };
    expect(resolveSettings({}, { env, cwd, homedir }).project).toBe("explicit");
  });

  it("rejects a $GATEPLANE_CONFIG that does not exist instead of silently falling back", () => {
    const { root, cwd, homedir } = layout();
    writeSettings(root, FULL);
    expect(() => resolveSettings({}, { env: { GATEPLANE_CONFIG: "/nope/config.json" }, cwd, homedir })).toThrow(
      "GATEPLANE_CONFIG points to /nope/config.json, which does not exist",
    );
  });

  it("does not read the file when flags and environment say everything", () => {
    const { root, cwd, homedir } = layout();
    writeSettings(root, "{ not json");
    const env = { GATEPLANE_URL: "http://env:2/", GATEPLANE_TOKEN: "t" };
    expect(resolveSettings({ project: "p" }, { env, cwd, homedir })).toEqual({
      url: "http://env:2",
      token: "t",
      project: "p",
    });
  });

  it("explains how to get settings when some are missing", () => {
    const { cwd, homedir } = layout();
    const error = (() => {
      try {
        resolveSettings({ url: "http://x:1" }, { env: {}, cwd, homedir });
      } catch (e) {
        return e as CliError;
      }
      throw new Error("expected an error");
    })();
    expect(error).toBeInstanceOf(CliError);
    expect(error.message).toMatch(/^no control plane token and project configured: run `npm start`/);
    expect(error.message).toContain("--api-url, --token and --project");
    expect(error.message).not.toContain("\n");
  });

  it("names the settings file that lacks a value", () => {
    const { root, cwd, homedir } = layout();
    const path = writeSettings(root, { url: "http://file:1", token: "t" });
    expect(() => resolveSettings({}, { env: {}, cwd, homedir })).toThrow(
      `no control plane project configured (${path} does not set it)`,
    );
  });

  it("reports a settings file that is not JSON or has wrong types", () => {
    const { root, cwd, homedir } = layout();
    const path = writeSettings(root, "{ url: ");
    expect(() => resolveSettings({}, { env: {}, cwd, homedir })).toThrow(`${path}: not valid JSON settings`);
    writeSettings(root, { ...FULL, token: 42 });
    expect(() => resolveSettings({}, { env: {}, cwd, homedir })).toThrow(`${path}: "token" must be a string`);
  });

  it("rejects a URL without a scheme, naming where it came from", () => {
    const { cwd, homedir } = layout();
    expect(() =>
      resolveSettings({ url: "localhost:8787", token: "t", project: "p" }, { env: {}, cwd, homedir }),
    ).toThrow(/^--api-url: "localhost:8787" must be an http:\/\/ or https:\/\/ URL$/);
    const env = { GATEPLANE_URL: "not a url", GATEPLANE_TOKEN: "t", GATEPLANE_PROJECT: "p" };
    expect(() => resolveSettings({}, { env, cwd, homedir })).toThrow(/^GATEPLANE_URL: "not a url" is not a URL/);
  });
});
