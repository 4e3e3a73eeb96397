import { describe, expect, it } from "vitest";
import { parseGatewayConfiguration } from "./gateway.ts";
import { ValidationError } from "./issues.ts";
import { parseServiceConfiguration } from "./service.ts";
import { parseYamlFile } from "./yaml.ts";

const issuesOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ValidationError) return e.issues;
    throw e;
  }
  return [];
};

describe("reserved keys in configuration files", () => {
  for (const key of ["__proto__", "constructor", "prototype"]) {
    it(`${key} is an unknown field, at the top and in tags`, () => {
      const gateway = parseYamlFile(
        `type: gateway\nname: gw\nbackend: local\n${key}: {x: 1}\ntags:\n  ${key}: v\n`,
        "g.dstack.yml",
      );
      expect(issuesOf(() => parseGatewayConfiguration(gateway.value))).toEqual([
        { path: [key], message: "unknown field" },
        { path: ["tags", key], message: "unknown field" },
      ]);
      const service = parseYamlFile(`type: service\nname: svc\nport: 80\n${key}: 1\n`, "s.dstack.yml");
      expect(issuesOf(() => parseServiceConfiguration(service.value))).toEqual([
        { path: [key], message: "unknown field" },
      ]);
    });
  }
});

describe("nesting depth", () => {
  it("is bounded at 64 levels, named at the field where it goes deeper", () => {
    let deep: unknown = {};
    for (let i = 0; i < 3000; i++) deep = { a: deep };
    const issues = issuesOf(() => parseGatewayConfiguration({ type: "gateway", backend: "local", tags: deep }));
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toEqual(["tags", ...Array(63).fill("a")]);
    expect(issues[0]!.message).toBe("nested deeper than 64 levels");
  });
});
