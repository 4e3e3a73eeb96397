/**
 * @module
 * `gateplane webhook [list|add|get|update|delete|deliveries|redeliver|ping]`: a project's webhook
 * endpoints, their delivery log, and test pings. The control plane validates everything and names
 * the field; the CLI only checks that the options a subcommand needs are there.
 */
import type { UpdateWebhookRequest } from "../../schema/webhooks.ts";
import { connectionOf, type GlobalValues, parseCommandArgs, takePositionals } from "../args.ts";
import type { Context } from "../context.ts";
import { CliError, UsageError } from "../errors.ts";
import { refuseSecretFlags, secretFromEnv, secretFromFile } from "../secrets.ts";
import { renderKeyValues } from "../text-table.ts";
import { deliveriesTable, webhookStatus, webhooksTable } from "../webhooks-table.ts";
import { confirmed } from "./confirm.ts";

const JSON_OPTIONS = { json: { type: "boolean" }, format: { type: "string" } } as const;

const SUBCOMMANDS = {
  list: { options: JSON_OPTIONS, positionals: [] },
  add: {
    options: {
      url: { type: "string" },
      events: { type: "string" },
      "secret-env": { type: "string" },
      "secret-file": { type: "string" },
      description: { type: "string" },
      ...JSON_OPTIONS,
    },
    positionals: [],
  },
  get: { options: JSON_OPTIONS, positionals: ["ID"] },
  update: {
    options: {
      url: { type: "string" },
      events: { type: "string" },
      description: { type: "string" },
      enable: { type: "boolean" },
      disable: { type: "boolean" },
      "secret-env": { type: "string" },
      "secret-file": { type: "string" },
      "rotate-secret": { type: "boolean" },
      ...JSON_OPTIONS,
    },
    positionals: ["ID"],
  },
  delete: { options: { yes: { type: "boolean", short: "y" } }, positionals: ["ID"] },
  deliveries: { options: { state: { type: "string" }, ...JSON_OPTIONS }, positionals: ["ID"] },
  redeliver: { options: JSON_OPTIONS, positionals: ["ID", "DELIVERY"] },
  ping: { options: JSON_OPTIONS, positionals: ["ID"] },
} as const;

type Subcommand = keyof typeof SUBCOMMANDS;

export interface WebhookArgs {
  subcommand: Subcommand;
  id: string | undefined;
  delivery: string | undefined;
  /** `add`'s body, or `update`'s changes. */
  body: Record<string, unknown>;
  state: string | undefined;
  /** add, update: where the chosen signing secret is read from (never the command line). */
  secretSource?: { env: string } | { file: string };
  help: boolean;
  json: boolean;
  yes: boolean;
  global: GlobalValues;
}

/** A signing secret must not be on the command line (`ps`, shell history); see secrets.ts. */
const SECRET_FLAGS = { "--secret": "give --secret-env NAME or --secret-file PATH (- for stdin)" };

export function parseWebhookArgs(args: readonly string[]): WebhookArgs {
  const first = args[0];
  if (first === "add" || first === "update") refuseSecretFlags(`webhook ${first}`, args, SECRET_FLAGS);
  const explicit = first !== undefined && !first.startsWith("-");
  if (explicit && !(first in SUBCOMMANDS)) {
    throw new UsageError(
      `gateplane webhook: unknown command '${first}'; expected ${Object.keys(SUBCOMMANDS).join(", ")}`,
    );
  }
  const subcommand: Subcommand = explicit ? (first as Subcommand) : "list";
  const command = `webhook ${subcommand}`;
  const spec = SUBCOMMANDS[subcommand];
  const { values, positionals } = parseCommandArgs(command, explicit ? args.slice(1) : args, spec.options);
  const o = values as Record<string, string | boolean | undefined>;
  const [id, delivery] = takePositionals(command, positionals, spec.positionals);
  const parsed: WebhookArgs = {
    subcommand,
    id,
    delivery,
    body: {},
    state: stringOf(o.state),
    help: o.help === true,
    json: o.json === true || o.format === "json",
    yes: o.yes === true,
    global: connectionOf(o),
  };
  if (parsed.help) return parsed;
  const missing = spec.positionals.slice(positionals.length);
  if (missing.length > 0) {
    throw new UsageError(
      `gateplane ${command}: ${missing.join(" and ")} ${missing.length > 1 ? "are" : "is"} required`,
    );
  }
  if (o.format !== undefined && o.format !== "plain" && o.format !== "json") {
    throw new UsageError(`gateplane ${command}: --format must be plain or json, got '${o.format}'`);
  }
  const events = typeof o.events === "string" ? splitList(o.events) : undefined;
  if (o["secret-env"] !== undefined && o["secret-file"] !== undefined) {
    throw new UsageError(`gateplane ${command}: give --secret-env or --secret-file, not both`);
  }
  if (typeof o["secret-env"] === "string") parsed.secretSource = { env: o["secret-env"] };
  if (typeof o["secret-file"] === "string") parsed.secretSource = { file: o["secret-file"] };
  if (subcommand === "add") {
    if (o.url === undefined) throw new UsageError(`gateplane ${command}: --url URL is required`);
    if (events === undefined) throw new UsageError(`gateplane ${command}: --events TYPES is required (e.g. gateway.*)`);
    parsed.body = { url: o.url, events, description: stringOf(o.description) };
  }
  if (subcommand === "update") {
    if (o.enable === true && o.disable === true) {
      throw new UsageError(`gateplane ${command}: give --enable or --disable, not both`);
    }
    const changes: UpdateWebhookRequest = {
      url: stringOf(o.url),
      events,
      description: stringOf(o.description),
      enabled: o.enable === true ? true : o.disable === true ? false : undefined,
      rotate_secret: o["rotate-secret"] === true ? true : undefined,
    };
    parsed.body = changes;
    if (Object.values(changes).every((value) => value === undefined) && !parsed.secretSource) {
      throw new UsageError(
        `gateplane ${command}: nothing to change; pass --url, --events, --description, --enable, --disable, --secret-env, --secret-file or --rotate-secret`,
      );
    }
  }
  // JSON.stringify leaves undefined fields out, so the request carries only what was given.
  parsed.body = Object.fromEntries(Object.entries(parsed.body).filter(([, value]) => value !== undefined));
  return parsed;
}

export async function webhook(ctx: Context, args: WebhookArgs): Promise<number> {
  const { project } = ctx.settings();
  const source = args.secretSource;
  if (source) {
    const command = `webhook ${args.subcommand}`;
    const secret =
      "env" in source
        ? secretFromEnv(command, "--secret-env", source.env, ctx.io)
        : await secretFromFile(command, "--secret-file", source.file, ctx.io);
    // A file's trailing newline (echo … > file) is not part of the secret.
    args.body.secret = secret.replace(/\r?\n$/, "");
  }
  const api = ctx.api();
  const now = ctx.io.now();
  const id = args.id!;
  switch (args.subcommand) {
    case "list": {
      const list = await api.listWebhooks(project);
      if (args.json) ctx.printJson(list);
      else ctx.printLines(webhooksTable(list.webhooks, now, ctx.style));
      return 0;
    }
    case "add": {
      const created = await api.createWebhook(project, args.body as never);
      if (args.json) return print(ctx, created);
      ctx.print(`Webhook ${created.id} created for ${created.url}`);
      ctx.print(`Signing secret (shown once; keep it to verify deliveries): ${created.secret}`);
      return 0;
    }
    case "get": {
      const found = await api.getWebhook(project, id);
      if (args.json) return print(ctx, found);
      ctx.printLines(
        renderKeyValues(
          [
            ["ID", found.id],
            ["URL", found.url],
            ["Events", found.events.join(", ")],
            ["Description", found.description ?? ""],
            ["Status", webhookStatus(found)],
            ["Last success", found.last_success_at ?? "never"],
            ["Created", found.created_at],
          ],
          ctx.style,
        ),
      );
      return 0;
    }
    case "update": {
      const updated = await api.updateWebhook(project, id, args.body);
      if (args.json) return print(ctx, updated);
      ctx.print(`Webhook ${updated.id} updated (${webhookStatus(updated)})`);
      if (updated.secret) {
        ctx.print(`New signing secret (shown once): ${updated.secret}`);
        ctx.print(`The previous secret also signs deliveries until ${updated.previous_secret_expires_at}`);
      }
      return 0;
    }
    case "delete": {
      const found = await api.getWebhook(project, id);
      ctx.printLines(webhooksTable([found], now, ctx.style));
      if (!(await confirmed(ctx, args.yes, `Delete the webhook ${found.id} and its delivery log?`))) return 0;
      await api.deleteWebhook(project, found.id);
      ctx.print(`Webhook ${found.id} deleted`);
      return 0;
    }
    case "deliveries": {
      const { deliveries } = await api.webhookDeliveries(project, id, args.state);
      if (args.json) return print(ctx, { webhook_id: id, deliveries });
      ctx.printLines(deliveriesTable(deliveries, now, ctx.style));
      return 0;
    }
    case "redeliver":
    case "ping": {
      const d =
        args.subcommand === "ping" ? await api.ping(project, id) : await api.redeliver(project, id, args.delivery!);
      if (args.json) {
        print(ctx, d);
      } else if (d.state === "delivered") {
        ctx.print(`Delivered ${d.event_type} ${d.event_id} to ${id}: HTTP ${d.last_status}`);
      }
      if (d.state === "delivered") return 0;
      const why = d.last_status !== null ? `HTTP ${d.last_status}` : (d.last_error ?? "no attempt was made");
      throw new CliError(`gateplane webhook ${args.subcommand}: delivery ${d.id} failed: ${why}`);
    }
  }
}

const splitList = (text: string) =>
  text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
const print = (ctx: Context, value: unknown) => {
  ctx.printJson(value);
  return 0;
};
const stringOf = (value: string | boolean | undefined) => (typeof value === "string" ? value : undefined);
