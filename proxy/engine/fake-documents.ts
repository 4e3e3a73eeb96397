/**
 * @module
 * Configuration documents for the engine scraper's tests: an LLM service (a `model`, no `engine:`)
 * with the given replicas, and the document that carries services; fields the scraper does not read
 * take plain defaults.
 */
import type { ConfigDocument, ConfigService } from "../../schema/config-document.ts";

export function service(name: string, replicas: [string, string][], extra: Partial<ConfigService> = {}): ConfigService {
  return {
    name,
    project: "p",
    host: `${name}.example.com`,
    https: false,
    hsts: null,
    auth: false,
    client_max_body_size: 0,
    read_timeout_ms: 1000,
    rate_limits: [],
    model: { name: "m", format: "openai", prefix: "/v1" },
    router: null,
    replicas: replicas.map(([id, url]) => ({ id, url })),
    usage: "as_requested",
    hold: null,
    ...extra,
  };
}

export function doc(...services: ConfigService[]): ConfigDocument {
  return {
    version: 1,
    gateway: { id: "g", name: "g", project: "p", domain: "example.com", router: null },
    services,
    entrypoint: null,
    service_tokens: [],
  } as unknown as ConfigDocument;
}
