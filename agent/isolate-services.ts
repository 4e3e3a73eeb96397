/**
 * @module
 * One service the proxy cannot serve must not freeze the gateway: the document's envelope (version,
 * gateway, entrypoint, tokens, ACME) is validated as a whole, but each service is validated on its
 * own. A refused service keeps its last good state when the applied document had one (a bad update
 * must not take a running service down, as Envoy keeps a NACKed resource's previous version), and is
 * left out when it is new. Every refusal is reported with the service's name and field, so the ACK
 * tells the control plane which services this host does not serve as configured.
 */
import * as v from "valibot";
import { normalizeHost, parseDocument } from "../proxy/routes.ts";
import { MAX_REPORT_TEXT, type ServiceRejection } from "../schema/agent-protocol.ts";
import { ConfigDocument, type ConfigService } from "../schema/config-document.ts";
import { formatIssue, fromValibot } from "../schema/issues.ts";

/** The document with its services unchecked: what must hold for any of it to be applied. */
const Envelope = v.object({ ...ConfigDocument.entries, services: v.array(v.unknown()) });

export type IsolationResult =
  | { ok: true; document: ConfigDocument; rejected: ServiceRejection[] }
  | { ok: false; error: string };

/**
 * Splits `candidate` into the document to apply and the services refused. `previous` is the
 * applied document, whose services stand in for refused ones of the same name.
 */
export function isolateServices(candidate: unknown, previous: ConfigDocument | null): IsolationResult {
  const envelope = v.safeParse(Envelope, candidate);
  if (!envelope.success) {
    return { ok: false, error: `invalid config document: ${fromValibot(envelope.issues).map(formatIssue).join("; ")}` };
  }
  const base = { ...envelope.output, services: [] as ConfigService[] };
  try {
    // The envelope's own rules (the entrypoint's host) concern every service: refused as a whole.
    parseDocument(base);
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
  const accepted: ConfigService[] = [];
  // The accepted services' names and hosts: a clash is a lookup, not a walk (10,000 services).
  const taken = { names: new Set<string>(), hosts: new Set<string>() };
  const accept = (service: ConfigService) => {
    accepted.push(service);
    taken.names.add(service.name);
    taken.hosts.add(normalizeHost(service.host));
  };
  const rejected: ServiceRejection[] = [];
  const refused: { name: string | null; error: string }[] = [];
  envelope.output.services.forEach((raw, i) => {
    const name = nameOf(raw);
    // The proxy's whole validation on a document of this service alone, then the clashes with the
    // services accepted before it (the first of two services with one host or name wins).
    let error: string | null = null;
    try {
      const service = parseDocument({ ...base, services: [raw] }).services[0]!;
      error = clash(service, taken);
      if (error === null) accept(service);
    } catch (e) {
      error = (e as Error).message.replace(/^configuration version \d+ rejected: /, "");
    }
    if (error !== null) refused.push({ name, error: error.replaceAll("services[0]", `services[${i}]`) });
  });
  for (const { name, error } of refused) {
    const last = name === null ? undefined : previous?.services.find((s) => s.name === name);
    const kept = last !== undefined && clash(last, taken) === null;
    if (kept) accept(last);
    rejected.push({
      service: name ?? "(unnamed)",
      error: truncate(error),
      kept,
    });
  }
  return { ok: true, document: { ...base, services: accepted }, rejected };
}

function nameOf(raw: unknown): string | null {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === "string" && name.length > 0 && name.length <= 200 ? name : null;
}

function clash(service: ConfigService, taken: { names: Set<string>; hosts: Set<string> }): string | null {
  const host = normalizeHost(service.host);
  if (taken.names.has(service.name)) return `name: ${service.name} is already another service's name`;
  if (taken.hosts.has(host)) return `host: ${host} is already another service's host`;
  return null;
}

const truncate = (text: string) => (text.length > MAX_REPORT_TEXT ? `${text.slice(0, MAX_REPORT_TEXT - 1)}…` : text);
