import { describe, expect, it } from "vitest";
import { parseYamlFile, YamlError } from "./yaml.ts";

const GATEWAY = `# A gateway
type: gateway
name: example-gateway
backend: aws
region: eu-west-1
router:
  type: sglang
  policy: x
tags:
  team: ml
replicas: 2
list:
  - a
  - {b: 2}
domain:
`;

function yamlError(text: string): YamlError {
  try {
    parseYamlFile(text, "gateway.dstack.yml");
  } catch (e) {
    if (e instanceof YamlError) return e;
    throw e;
  }
  throw new Error("expected a YamlError");
}

describe("parseYamlFile", () => {
  it("returns the document as plain values", () => {
    const { value } = parseYamlFile(GATEWAY, "gateway.dstack.yml");
    expect(value).toEqual({
      type: "gateway",
      name: "example-gateway",
      backend: "aws",
      region: "eu-west-1",
      router: { type: "sglang", policy: "x" },
      tags: { team: "ml" },
      replicas: 2,
      list: ["a", { b: 2 }],
      domain: null,
    });
  });

  it("reads YAML 1.2: yes/no/on are strings, not booleans", () => {
    expect(parseYamlFile("a: yes\nb: on\nc: true\n", "f.dstack.yml").value).toEqual({ a: "yes", b: "on", c: true });
  });

  describe("locate", () => {
    const file = parseYamlFile(GATEWAY, "gateway.dstack.yml");

    it("points at a nested value", () => {
      expect(file.locate(["router", "policy"])).toEqual({ line: 8, col: 11 });
    });

    it("points at the key when asked for it (unknown fields)", () => {
      expect(file.locate(["router", "policy"], "key")).toEqual({ line: 8, col: 3 });
      expect(file.locate(["tags"], "key")).toEqual({ line: 9, col: 1 });
    });

    it("follows list indices", () => {
      expect(file.locate(["list", 0])).toEqual({ line: 13, col: 5 });
      expect(file.locate(["list", 1, "b"])).toEqual({ line: 14, col: 9 });
    });

    it("points at the key of an entry written without a value", () => {
      expect(file.locate(["domain"])).toEqual({ line: 15, col: 1 });
    });

    it("falls back to the nearest existing parent", () => {
      expect(file.locate(["router", "missing"])).toEqual({ line: 7, col: 3 });
      expect(file.locate(["router", "policy", "deeper"])).toEqual({ line: 8, col: 11 });
      expect(file.locate(["nowhere"])).toEqual({ line: 2, col: 1 });
      expect(file.locate(["list", 7])).toEqual({ line: 13, col: 3 });
    });

    it("points at the document for the empty path", () => {
      expect(file.locate([])).toEqual({ line: 2, col: 1 });
    });

    it("returns null for an empty document", () => {
      const empty = parseYamlFile("# nothing here\n", "empty.dstack.yml");
      expect(empty.value).toBeNull();
      expect(empty.locate(["name"])).toBeNull();
    });
  });

  describe("errors", () => {
    it("reports syntax errors as file:line:col: reason", () => {
      const e = yamlError("type: gateway\nname: [unclosed\nbackend: aws\n");
      expect(e.message).toMatch(/^gateway\.dstack\.yml:\d+:\d+: \S/);
      expect(e.file).toBe("gateway.dstack.yml");
      expect(e.line).toBeGreaterThanOrEqual(2);
      expect(e.message).not.toContain("\n");
    });

    it("reports a bad indentation where it occurs", () => {
      const e = yamlError("router:\n  type: sglang\n policy: random\n");
      expect(e.message).toBe("gateway.dstack.yml:3:1: all mapping items must start at the same column");
    });

    it("rejects duplicate keys at the second occurrence", () => {
      const e = yamlError("type: gateway\nname: a\nbackend: aws\nname: b\n");
      expect(e.message).toBe('gateway.dstack.yml:4:1: duplicate key "name"');
    });

    it("rejects duplicate keys in nested mappings", () => {
      const e = yamlError("router:\n  type: sglang\n  type: sglang\n");
      expect(e.message).toBe('gateway.dstack.yml:3:3: duplicate key "type"');
    });

    it("rejects several documents in one file", () => {
      const e = yamlError("type: gateway\n---\ntype: gateway\n");
      expect(e.message).toBe("gateway.dstack.yml:2:1: expected a single YAML document, found several");
    });

    it("rejects tabs used for indentation", () => {
      expect(yamlError("router:\n\ttype: sglang\n").line).toBe(2);
    });

    it("reports an alias to an undefined anchor at the alias", () => {
      const e = yamlError("a: &x 1\nb: *y\n");
      expect(e.line).toBe(2);
      expect(e.col).toBe(4);
      expect(e.reason).toMatch(/alias/);
    });
  });
});
