import { describe, expect, it } from "vitest";
import { MAX_CONFIG_DOCUMENT_BYTES, MAX_SERVICES_PER_GATEWAY } from "../schema/limits.ts";
import { documentSizeRefusal, serviceCountRefusal } from "./service-limits.ts";

describe("serviceCountRefusal", () => {
  it("takes a service up to the limit and refuses the next, naming the field", () => {
    expect(serviceCountRefusal(MAX_SERVICES_PER_GATEWAY - 1)).toBeNull();
    const refusal = serviceCountRefusal(MAX_SERVICES_PER_GATEWAY);
    expect(refusal?.error).toMatchObject({ kind: "invalid", code: "limit_exceeded", field: "gateway" });
    expect(refusal?.error.message).toContain(String(MAX_SERVICES_PER_GATEWAY));
  });
});

describe("documentSizeRefusal", () => {
  it("counts the entry's change, not its size twice", () => {
    expect(documentSizeRefusal(MAX_CONFIG_DOCUMENT_BYTES, 500, 500)).toBeNull();
    expect(documentSizeRefusal(MAX_CONFIG_DOCUMENT_BYTES, 500, 400)).toBeNull();
    const refusal = documentSizeRefusal(MAX_CONFIG_DOCUMENT_BYTES, 500, 501, "url");
    expect(refusal?.error).toMatchObject({ code: "limit_exceeded", field: "url" });
    expect(refusal?.error.message).toContain("24.0 MiB");
  });
});
