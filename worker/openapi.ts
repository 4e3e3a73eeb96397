/**
 * @module
 * The OpenAPI 3.1 document, generated from the same valibot schemas the Worker validates with
 * (`openapi-schemas.ts`) and the list of operations (`openapi-operations.ts`).
 */
import { toJsonSchema } from "@valibot/to-json-schema";
import { CURSOR_MAX_LENGTH, NEXT_CURSOR_HEADER, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX } from "../schema/paging.ts";
import { OPERATIONS } from "./openapi-operations.ts";
import { SCHEMAS, type SchemaName } from "./openapi-schemas.ts";

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: SchemaName) => ({ content: { "application/json": { schema: ref(name) } } });
const errors = {
  "400": { description: "Invalid input; `error.field` names the field", ...json("Error") },
  "401": { description: "Missing or invalid token (service tokens are refused here)", ...json("Error") },
  "403": { description: "Not allowed for this token", ...json("Error") },
  "404": { description: "No such resource", ...json("Error") },
  "409": { description: "Conflicts with the resource's state", ...json("Error") },
};

/** The `limit`/`cursor` parameters and next-page headers of a paged list. */
function paging(withoutLimit: string) {
  return {
    parameters: [
      {
        name: "limit",
        in: "query",
        required: false,
        description: `Page size. Without limit and cursor: ${withoutLimit}. With a cursor but no limit: ${PAGE_LIMIT_DEFAULT}.`,
        schema: { type: "integer", minimum: 1, maximum: PAGE_LIMIT_MAX },
      },
      {
        name: "cursor",
        in: "query",
        required: false,
        description: `Opaque: the previous page's ${NEXT_CURSOR_HEADER} header (or its Link rel="next")`,
        schema: { type: "string", maxLength: CURSOR_MAX_LENGTH },
      },
    ],
    headers: {
      Link: {
        description: 'RFC 8288 `<…>; rel="next"`: the next page\'s URL; absent on the last page',
        schema: { type: "string" },
      },
      [NEXT_CURSOR_HEADER]: {
        description: "The next page's cursor; absent on the last page",
        schema: { type: "string" },
      },
    },
  };
}

let cached: unknown = null;

export function openApiDocument(): unknown {
  if (cached) return cached;
  const schemas = Object.fromEntries(
    Object.entries(SCHEMAS).map(([name, schema]) => {
      const { $schema: _ignored, ...body } = toJsonSchema(schema, { errorMode: "ignore" }) as Record<string, unknown>;
      return [name, body];
    }),
  );
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, ops] of Object.entries(OPERATIONS)) {
    const params = [...path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
      schema: { type: "string" },
    }));
    paths[path] = Object.fromEntries(
      Object.entries(ops).map(([method, op]) => {
        const paged = op.paged === undefined ? null : paging(op.paged);
        const parameters = [...params, ...(paged?.parameters ?? [])];
        return [
          method,
          {
            tags: [op.tag],
            summary: op.summary,
            ...(parameters.length ? { parameters } : {}),
            ...(op.body ? { requestBody: { required: true, ...json(op.body) } } : {}),
            ...(op.auth === false ? { security: [] } : {}),
            responses: {
              [op.status ?? "200"]: {
                description: "Success",
                ...(paged ? { headers: paged.headers } : {}),
                ...(op.response ? json(op.response) : {}),
              },
              ...errors,
            },
          },
        ];
      }),
    );
  }
  cached = {
    openapi: "3.1.0",
    info: { title: "Gateplane API", version: "1", description: "Control plane for inference gateways." },
    servers: [{ url: "/" }],
    security: [{ bearer: [] }],
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } }, schemas },
    paths,
  };
  return cached;
}
