import { describe, expect, it } from "vitest";
import { TestClock } from "../../test/support/admission-clock.ts";
import { AdmissionGate, type AdmissionTicket, type AdmissionWaiter, priorityClass } from "./admission-queue.ts";

/** A clock whose timers run when the test moves time. */
/** A ticket that writes down what became of it. */
function ticket(name: string, log: string[]): AdmissionTicket {
  return {
    admitted: (waited) => log.push(`${name} in after ${waited}`),
    expired: (waited) => log.push(`${name} expired after ${waited}`),
  };
}

describe("the admission gate", () => {
  it("admits up to the limit, queues in arrival order, lets the next in on each release", () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 2, size: 10, timeoutMs: 1000 }, clock);
    const log: string[] = [];
    expect(gate.acquire(ticket("a", log))).toBe("admitted");
    expect(gate.acquire(ticket("b", log))).toBe("admitted");
    for (const name of ["c", "d", "e"]) expect(typeof gate.acquire(ticket(name, log))).toBe("object");
    expect(gate.waiting).toBe(3);
    clock.advance(10);
    gate.release();
    clock.advance(5);
    gate.release();
    gate.release();
    expect(log).toEqual(["c in after 10", "d in after 15", "e in after 15"]);
    expect(gate.active).toBe(2);
    expect(gate.waiting).toBe(0);
  });

  it("lets higher classes in first, in arrival order within a class", () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 1, size: 10, timeoutMs: 1000 }, clock);
    const log: string[] = [];
    gate.acquire(ticket("running", log));
    const cls = (name: string) => () => priorityClass(name);
    gate.acquire(ticket("bulk", log), cls("bulk"));
    gate.acquire(ticket("default-1", log), cls("whatever"));
    gate.acquire(ticket("interactive", log), cls("Interactive"));
    gate.acquire(ticket("default-2", log));
    gate.acquire(ticket("system", log), cls(" SYSTEM "));
    for (let i = 0; i < 5; i++) gate.release();
    expect(log.map((l) => l.split(" ")[0])).toEqual(["system", "interactive", "default-1", "default-2", "bulk"]);
  });

  it("refuses beyond the queue (full) and times waits out", () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 1, size: 2, timeoutMs: 100 }, clock);
    const log: string[] = [];
    gate.acquire(ticket("a", log));
    gate.acquire(ticket("b", log));
    clock.advance(40);
    gate.acquire(ticket("c", log));
    expect(gate.acquire(ticket("d", log))).toBe("full");
    clock.advance(60);
    expect(log).toEqual(["b expired after 100"]);
    expect(gate.waiting).toBe(1);
    clock.advance(40);
    expect(log).toEqual(["b expired after 100", "c expired after 100"]);
    // Nobody waits: the slot goes to whoever comes next.
    gate.release();
    expect(gate.acquire(ticket("e", log))).toBe("admitted");
  });

  it("with a queue of 0, refuses at once beyond the limit", () => {
    const gate = new AdmissionGate({ limit: 1, size: 0, timeoutMs: 100 }, new TestClock());
    const log: string[] = [];
    expect(gate.acquire(ticket("a", log))).toBe("admitted");
    expect(gate.acquire(ticket("b", log))).toBe("full");
  });

  it("drops a waiter that leaves, and its timer", () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 1, size: 5, timeoutMs: 100 }, clock);
    const log: string[] = [];
    gate.acquire(ticket("a", log));
    const b = gate.acquire(ticket("b", log)) as AdmissionWaiter;
    gate.acquire(ticket("c", log));
    gate.cancel(b);
    expect(gate.waiting).toBe(1);
    expect(clock.timers.size).toBe(1);
    gate.release();
    expect(log).toEqual(["c in after 0"]);
  });

  it("a new limit lets waiting requests in at once (once the document's table is built)", async () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 1, size: 5, timeoutMs: 100 }, clock);
    const log: string[] = [];
    for (const name of ["a", "b", "c"]) gate.acquire(ticket(name, log));
    gate.configure({ limit: 3, size: 5, timeoutMs: 100 });
    expect(log).toEqual([]);
    await Promise.resolve();
    expect(log).toEqual(["b in after 0", "c in after 0"]);
    expect(clock.timers.size).toBe(0);
  });

  it("stays bounded in memory while requests keep expiring and no slot frees", () => {
    const clock = new TestClock();
    const gate = new AdmissionGate({ limit: 1, size: 4, timeoutMs: 10 }, clock);
    const log: string[] = [];
    gate.acquire(ticket("running", log));
    for (let i = 0; i < 10_000; i++) {
      gate.acquire(ticket(`w${i}`, log));
      clock.advance(10);
    }
    expect(gate.waiting).toBe(0);
    expect(log.length).toBe(10_000);
    // The dead waiters were swept as new ones came (at most 2 × size + 16 stay): the one running
    // leaves, the next is let in at once.
    gate.release();
    expect(gate.acquire(ticket("next", log))).toBe("admitted");
  });
});
