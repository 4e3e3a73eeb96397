import { describe, expect, it } from "vitest";
import { capture } from "../test/support/cli-io.ts";
import { LiveDisplay, withSpinner } from "./live-display.ts";

describe("LiveDisplay", () => {
  it("redraws in place on a terminal, climbing over wrapped lines", () => {
    const out = capture(true);
    out.columns = 20;
    const display = new LiveDisplay(out, true, "Working...").start();
    expect(out.text).toBe("⠋ Working...\n");
    display.update(["short", "a line of 23 characters"]);
    // Before the update one row was drawn; after it four: title, "short", and two for the wrapped line.
    expect(out.text).toBe("⠋ Working...\n\x1b[1F\x1b[0J⠋ Working...\nshort\na line of 23 characters\n");
    display.stop();
    expect(out.text.endsWith("\x1b[4F\x1b[0J")).toBe(true);
  });

  it("prints only the title, once, when not on a terminal", () => {
    const out = capture(false);
    const display = new LiveDisplay(out, false, "Provisioning edge...").start();
    display.update(["table"]);
    display.stop();
    expect(out.text).toBe("Provisioning edge...\n");
  });

  it("withSpinner shows nothing off a terminal and clears itself on one", async () => {
    const piped = capture(false);
    expect(await withSpinner(piped, false, "Getting apply plan...", async () => 42)).toBe(42);
    expect(piped.text).toBe("");
    const tty = capture(true);
    await expect(
      withSpinner(tty, true, "Getting apply plan...", async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(tty.text).toBe("⠋ Getting apply plan...\n\x1b[1F\x1b[0J");
  });
});
