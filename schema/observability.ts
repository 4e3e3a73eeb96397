/**
 * @module
 * `observability:` of a gateway: what its hosts export of the traffic they carry, beyond the
 * Prometheus metrics every host serves on its agent's loopback admin listener (`GET /metrics`).
 *
 * ```yaml
 * observability:
 *   metrics:
 *     public: true            # also GET /metrics on the gateway's address, with a service token
 *   access_log:
 *     destination: file       # stdout (default) or file: <state dir>/access.log
 *     max_size: 100MB         # rotation: the file is renamed .1 (… .N) past this size
 *     max_files: 5
 *   tracing:
 *     endpoint: http://otel-collector.internal:4318/v1/traces   # OTLP/HTTP, JSON encoding
 *     sample_ratio: 0.1       # of traces the gateway starts; a client's sampled flag is followed
 * ```
 *
 * Every part is optional and changes in place (a new configuration version, no re-create). The
 * access log's path is not configurable: the agent writes only under its own state directory.
 * The OTLP endpoint takes no headers: credentials in a configuration file would travel to every host
 * and into every plan; put a collector beside the gateway to add them.
 */
import * as v from "valibot";
import { expected, mapping, oneOf } from "./issues.ts";
import { text } from "./text.ts";
import { size } from "./units.ts";

export const ACCESS_LOG_DESTINATIONS = ["stdout", "file"] as const;
export const DEFAULT_ACCESS_LOG_MAX_SIZE = 100 * 1024 ** 2;
export const MIN_ACCESS_LOG_MAX_SIZE = 1024 ** 2;
export const MAX_ACCESS_LOG_MAX_SIZE = 100 * 1024 ** 3;
export const DEFAULT_ACCESS_LOG_MAX_FILES = 5;
export const MAX_ACCESS_LOG_MAX_FILES = 100;
export const DEFAULT_TRACE_SAMPLE_RATIO = 1;
export const MAX_TRACE_ENDPOINT_LENGTH = 2048;

function isHttpUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === "http:" || url.protocol === "https:") && url.username === "" && url.password === "";
  } catch {
    return false;
  }
}

const AccessLogInput = mapping({
  destination: v.optional(v.picklist(ACCESS_LOG_DESTINATIONS, oneOf(ACCESS_LOG_DESTINATIONS)), "stdout"),
  max_size: v.optional(
    v.pipe(size(MAX_ACCESS_LOG_MAX_SIZE, "100GB"), v.minValue(MIN_ACCESS_LOG_MAX_SIZE, "must be at least 1MB")),
    DEFAULT_ACCESS_LOG_MAX_SIZE,
  ),
  max_files: v.optional(
    v.pipe(
      v.number(expected("an integer")),
      v.integer(expected("an integer")),
      v.minValue(1, `expected an integer from 1 to ${MAX_ACCESS_LOG_MAX_FILES}`),
      v.maxValue(MAX_ACCESS_LOG_MAX_FILES, `expected an integer from 1 to ${MAX_ACCESS_LOG_MAX_FILES}`),
    ),
    DEFAULT_ACCESS_LOG_MAX_FILES,
  ),
});

const TracingInput = mapping({
  endpoint: v.pipe(
    text(expected("a URL")),
    v.maxLength(MAX_TRACE_ENDPOINT_LENGTH, `expected at most ${MAX_TRACE_ENDPOINT_LENGTH} characters`),
    v.check(isHttpUrl, "expected an http:// or https:// URL without credentials (OTLP/HTTP, e.g. …:4318/v1/traces)"),
  ),
  sample_ratio: v.optional(
    v.pipe(
      v.number(expected("a number from 0 to 1")),
      v.finite(expected("a number from 0 to 1")),
      v.minValue(0, "expected a number from 0 to 1"),
      v.maxValue(1, "expected a number from 0 to 1"),
    ),
    DEFAULT_TRACE_SAMPLE_RATIO,
  ),
});

const MetricsInput = mapping({
  public: v.optional(v.boolean(expected("true or false")), false),
});

/** `observability:` as written; `null` or absent means the defaults (metrics on loopback only). */
export const ObservabilityInput = v.nullable(
  mapping(
    {
      metrics: v.optional(v.nullable(MetricsInput)),
      access_log: v.optional(v.nullable(AccessLogInput)),
      tracing: v.optional(v.nullable(TracingInput)),
    },
    "a mapping or null",
  ),
);

/** What the proxy and agent act on (and the configuration document carries): every default applied. */
export const ObservabilityDocument = v.object({
  metrics: v.object({ public: v.boolean() }),
  access_log: v.nullable(
    v.object({
      destination: v.picklist(ACCESS_LOG_DESTINATIONS),
      max_size: v.pipe(
        v.number(),
        v.safeInteger(),
        v.minValue(MIN_ACCESS_LOG_MAX_SIZE),
        v.maxValue(MAX_ACCESS_LOG_MAX_SIZE),
      ),
      max_files: v.pipe(v.number(), v.safeInteger(), v.minValue(1), v.maxValue(MAX_ACCESS_LOG_MAX_FILES)),
    }),
  ),
  tracing: v.nullable(
    v.object({
      endpoint: v.pipe(v.string(), v.maxLength(MAX_TRACE_ENDPOINT_LENGTH), v.check(isHttpUrl)),
      sample_ratio: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
    }),
  ),
});
export type ObservabilityDocument = v.InferOutput<typeof ObservabilityDocument>;

export const DEFAULT_OBSERVABILITY: ObservabilityDocument = {
  metrics: { public: false },
  access_log: null,
  tracing: null,
};

/** The document form of a validated `observability:` (null or absent: the defaults). */
export function observabilityDocument(
  input: v.InferOutput<typeof ObservabilityInput> | undefined,
): ObservabilityDocument {
  if (!input) return DEFAULT_OBSERVABILITY;
  return {
    metrics: { public: input.metrics?.public ?? false },
    access_log: input.access_log
      ? {
          destination: input.access_log.destination,
          max_size: input.access_log.max_size,
          max_files: input.access_log.max_files,
        }
      : null,
    tracing: input.tracing ? { endpoint: input.tracing.endpoint, sample_ratio: input.tracing.sample_ratio } : null,
  };
}
