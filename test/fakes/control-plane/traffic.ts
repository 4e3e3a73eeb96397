/**
 * @module
 * What the gateways' agents reported of each service's LLM traffic, for the CLI's fake control
 * plane: windows per gateway replica, turned into the service's `traffic` (merged) and each gateway
 * replica's by `schema/traffic.ts`, the functions the GatewayObject's view uses. As the object, the
 * merged traffic is null until every gateway replica of the service reported.
 */
import type { Service } from "../../../schema/service-api.ts";
import { type LlmWindows, mergedTraffic, trafficOf } from "../../../schema/traffic.ts";

export class FakeTraffic {
  /** service → gateway replica number → its last report. */
  readonly #reports = new Map<string, Map<number, LlmWindows>>();

  /** Records one gateway replica's report for the service and updates what the service shows. */
  report(service: Service, replicaNum: number, windows: LlmWindows): void {
    let reports = this.#reports.get(service.name);
    if (!reports) {
      reports = new Map();
      this.#reports.set(service.name, reports);
    }
    reports.set(replicaNum, windows);
    this.show(service);
  }

  /** Sets `traffic` on the service and on each of its gateway replicas (after they were rebuilt). */
  show(service: Service): void {
    const reports = this.#reports.get(service.name);
    for (const r of service.gateway_replicas) {
      const windows = reports?.get(r.replica_num);
      r.traffic = windows ? trafficOf(windows) : null;
    }
    const all = service.gateway_replicas.map((r) => reports?.get(r.replica_num));
    const complete = all.length > 0 && all.every((w) => w !== undefined);
    service.traffic = complete ? mergedTraffic(all as LlmWindows[]) : null;
  }

  forget(service: string): void {
    this.#reports.delete(service);
  }
}
