import { describe, expect, it } from "vitest";
import { TestClock } from "../../test/support/admission-clock.ts";
import { ServiceMeter } from "../observe/service-meter.ts";
import { AdmissionGate } from "./admission-queue.ts";
import { AdmissionSeat, type SeatHolder } from "./admission-seat.ts";
import type { ServiceResilience } from "./service-resilience.ts";

/** An exchange that writes down what its seat told it. */
function holder(name: string, log: string[]): SeatHolder & { gone: boolean } {
  return {
    gone: false,
    go: () => log.push(`${name} go`),
    refuse: (refusal) => log.push(`${name} refused ${refusal}`),
    end: () => log.push(`${name} end`),
  };
}

function service(limit: number, size: number, priorityHeader: string | null = null) {
  const clock = new TestClock();
  const gate = new AdmissionGate({ limit, size, timeoutMs: 100 }, clock);
  const route = { resilience: { gate, priorityHeader } as unknown as ServiceResilience };
  return { clock, gate, route, meter: new ServiceMeter("svc", "") };
}

describe("an exchange's admission seat", () => {
  it("counts in flight from admission to its end, queued while waiting, and gives the slot to the next", () => {
    const { clock, route, meter } = service(1, 1);
    const log: string[] = [];
    const a = new AdmissionSeat(holder("a", log), route, meter);
    const b = new AdmissionSeat(holder("b", log), route, meter);
    a.ask({});
    b.ask({});
    expect(log).toEqual(["a go"]);
    expect([meter.inFlight, meter.queued, b.waiting]).toEqual([1, 1, true]);

    clock.advance(30);
    a.leave();
    a.leave(); // more than once: nothing more
    expect(log).toEqual(["a go", "b go"]);
    expect([meter.inFlight, meter.queued, b.waiting]).toEqual([1, 0, false]);
    expect(meter.queueWait.counts.reduce((x, y) => x + y, 0)).toBe(1);
    b.leave();
    expect(meter.inFlight).toBe(0);
  });

  it("refuses at once when full, after queue_timeout when waiting, and counts each refusal", () => {
    const { clock, route, meter } = service(1, 1);
    const log: string[] = [];
    const seats = ["a", "b", "c"].map((n) => new AdmissionSeat(holder(n, log), route, meter));
    for (const seat of seats) seat.ask({});
    expect(log).toEqual(["a go", "c refused full"]);
    clock.advance(100);
    expect(log).toEqual(["a go", "c refused full", "b refused timeout"]);
    expect([...meter.admissionRefusals]).toEqual([1, 1]);
    expect([meter.inFlight, meter.queued]).toEqual([1, 0]);
    for (const seat of seats) seat.leave();
    expect(meter.inFlight).toBe(0);
  });

  it("a client gone while waiting: its place is left, or an admission after it only ends the exchange", () => {
    const { route, meter } = service(1, 2);
    const log: string[] = [];
    const a = new AdmissionSeat(holder("a", log), route, meter);
    const bHolder = holder("b", log);
    const b = new AdmissionSeat(bHolder, route, meter);
    const c = new AdmissionSeat(holder("c", log), route, meter);
    a.ask({});
    b.ask({});
    c.ask({});
    bHolder.gone = true; // b's client left, its exchange has not ended yet
    a.leave();
    expect(log).toEqual(["a go", "b end"]);
    b.leave(); // b's end gives its slot to c without b counting in flight
    expect(log).toEqual(["a go", "b end", "c go"]);
    expect([meter.inFlight, meter.queued]).toEqual([1, 0]);
  });

  it("reads the priority from the service's header when it has one", () => {
    const { route, meter } = service(1, 2, "x-priority");
    const log: string[] = [];
    const seats = ["a", "bulk", "system"].map((n) => new AdmissionSeat(holder(n, log), route, meter));
    seats[0]!.ask({});
    seats[1]!.ask({ "x-priority": "bulk" });
    seats[2]!.ask({ "x-priority": "system" });
    seats[0]!.leave();
    expect(log).toEqual(["a go", "system go"]);
  });

  it("admits at once and still counts in flight on a service without a gate", () => {
    const meter = new ServiceMeter("svc", "");
    const route = { resilience: { gate: null, priorityHeader: null } as unknown as ServiceResilience };
    const log: string[] = [];
    const seat = new AdmissionSeat(holder("a", log), route, meter);
    seat.ask({});
    expect([log, meter.inFlight]).toEqual([["a go"], 1]);
    seat.leave();
    expect(meter.inFlight).toBe(0);
  });
});
