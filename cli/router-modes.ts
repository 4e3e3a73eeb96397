/**
 * @module
 * How services whose router is `sglang` are balanced, as the gateways' agents report it: through
 * the external SGLang Model Gateway, or by the proxy's built-in policies (with the reason). Printed
 * under the table by `gateway get` and `service get`; nothing when there is nothing to say.
 */
import type { Gateway } from "../schema/api.ts";
import type { Service } from "../schema/service-api.ts";

const mode = (m: { mode: string; reason: string | null }) => (m.reason ? `${m.mode} (${m.reason})` : m.mode);

/** One line per gateway replica whose agent reported router modes. */
export function gatewayRouterLines(gateway: Pick<Gateway, "replicas">): string[] {
  const lines = [...gateway.replicas]
    .sort((a, b) => a.replica_num - b.replica_num)
    .filter((r) => (r.routers ?? []).length > 0)
    .map((r) => `  replica=${r.replica_num}: ${(r.routers ?? []).map((x) => `${x.service} ${mode(x)}`).join("; ")}`);
  return lines.length > 0 ? ["", "Router modes:", ...lines] : [];
}

/** `Router: external` when every gateway replica agrees, else one entry per replica. */
export function serviceRouterLines(service: Pick<Service, "gateway_replicas">): string[] {
  const reports = [...service.gateway_replicas]
    .sort((a, b) => a.replica_num - b.replica_num)
    .flatMap((r) => (r.router ? [{ replica: r.replica_num, text: mode(r.router) }] : []));
  if (reports.length === 0) return [];
  const same = reports.every((r) => r.text === reports[0]!.text);
  if (same && reports.length === service.gateway_replicas.length) return ["", `Router: ${reports[0]!.text}`];
  return ["", `Router: ${reports.map((r) => `replica=${r.replica} ${r.text}`).join("; ")}`];
}
