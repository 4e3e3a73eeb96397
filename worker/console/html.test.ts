import { describe, expect, it } from "vitest";
import { h, trusted } from "./html.ts";

describe("h", () => {
  it("escapes every interpolated string, in text and in attributes", () => {
    const name = `<img src=x onerror="alert(1)">'&`;
    expect(String(h`<p title="${name}">${name}</p>`)).toBe(
      '<p title="&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;&amp;">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;&amp;</p>',
    );
  });

  it("nests its own output unescaped, joins arrays, drops null, undefined and false", () => {
    const items = ["<a>", "b"].map((x) => h`<li>${x}</li>`);
    expect(String(h`<ul>${items}${null}${undefined}${false}${0}</ul>`)).toBe("<ul><li>&lt;a&gt;</li><li>b</li>0</ul>");
    expect(String(h`${trusted("<b>")}`)).toBe("<b>");
  });
});
