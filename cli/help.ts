/**
 * @module
 * `--help` texts and `--version`. Kept next to each other so the grammar is documented in one place.
 */
import { readFileSync } from "node:fs";
import { SERVICE_TOKEN_HELP } from "./commands/service-token.ts";
import { ACCOUNT_COMMANDS_SUMMARY, ACCOUNT_HELP } from "./help-accounts.ts";

const CONNECTION = `Connection options (any command):
  --api-url URL          Control plane URL (env GATEPLANE_URL); --url is never this one: it is
                         a replica's (service replica add) or a webhook endpoint's
  --token TOKEN          API token (env GATEPLANE_TOKEN)
  -p, --project NAME     Project (env GATEPLANE_PROJECT)

Settings not given as options or environment variables are read from the JSON file
$GATEPLANE_CONFIG, else the nearest .gateplane/config.json above the current directory
(\`npm start\` writes one), else ~/.gateplane/config.json.`;

export const HELP = {
  main: `Usage: gateplane [connection options] <command> [options]

Manage Gateplane gateways and the services on them, described in *.dstack.yml files
(type: gateway or type: service).

Commands:
  apply -f FILE          Create or update the gateway or service a configuration describes
  delete -f FILE         Delete the gateway or service a configuration describes
  gateway [list]         List gateways
  gateway get NAME       Show a gateway
  gateway delete NAME    Delete a gateway
  gateway update NAME    Change a gateway (--set-default)
  service [list]         List services
  service get NAME       Show a service
  service delete NAME    Delete a service
  service replica add|remove|list NAME
                         Register, remove or list a service's replica endpoints
  webhook [list]         List webhook endpoints
  webhook add|get|update|delete|deliveries|redeliver|ping
                         Manage webhook endpoints, their delivery log, test pings
  acme [get|set|unset]   Show or change the project's ACME settings (CA, EAB)
${ACCOUNT_COMMANDS_SUMMARY}
  service-token [list]|create|revoke
                         Tokens that open the project's auth: true services (not the API)

Options:
  -h, --help             Show help (also: gateplane <command> --help)
  --version              Show the version

${CONNECTION}`,

  apply: `Usage: gateplane apply -f FILE [-y] [--force] [-d] [-n NAME] [-v]

Creates the gateway or service FILE describes (its type: gateway or type: service), or
updates it after confirmation.

A gateway is updated in place when only domain, default or replicas change, otherwise
re-created: the control plane checks the new configuration first (a refusal changes nothing),
then deletes the old gateway and creates the new one; apply follows it until it runs. A
re-create also deletes the gateway's services, which are listed before the question.

A service is updated in place unless it moves to another gateway, which re-creates it (its
registered replicas have to be registered again). Nothing is provisioned: apply prints where
the service is served; replicas are registered with gateplane service replica add.

Options:
  -f, --file FILE        The configuration file (*.dstack.yml)
  -y, --yes              Do not ask for confirmation
  --force                Apply even if the resource changed since the plan, or nothing changed
                         (an unchanged gateway is re-created, an unchanged service re-applied)
  -d, --detach           Do not wait for the gateway to be provisioned
  -n, --name NAME        Override the configuration's name
  -v, --verbose          Show more columns (gateways: CREATED, ERROR; services: MODEL, CREATED,
                         and TTFT P90, TOK/S OUT once traffic is reported)
  -h, --help             Show this help

${CONNECTION}`,

  delete: `Usage: gateplane delete -f FILE [-y]

Deletes the gateway or service FILE names. A gateway's deletion continues in the background;
a service leaves its gateway at once. Deleting a gateway also deletes its services and their
replica registrations: they are listed before the question, and yes (or -y) deletes them too.

Options:
  -f, --file FILE        The configuration file (*.dstack.yml)
  -y, --yes              Do not ask for confirmation
  -h, --help             Show this help

${CONNECTION}`,

  gateway: `Usage: gateplane gateway [list] [-w] [-v] [--json]
       gateplane gateway get NAME [--json]
       gateplane gateway delete NAME [-y]
       gateplane gateway update NAME --set-default

Commands:
  list                   List the project's gateways (the default)
  get NAME               Show one gateway whole: replicas (agent, config applied or rejected),
                         services, certificates, router, DNS records
  delete NAME            Delete a gateway, with its services (listed before the question);
                         deletion continues in the background
  update NAME            Change a gateway in place

Options:
  -w, --watch            list: refresh every 2 seconds until Ctrl-C
  -v, --verbose          list: show CREATED and ERROR columns
  --json                 list, get: print JSON ({project, gateways} for list)
  --format plain|json    list: same as --json when json
  -y, --yes              delete: do not ask for confirmation
  --set-default          update: make the gateway the project's default
  -h, --help             Show this help

${CONNECTION}`,

  service: `Usage: gateplane service [list] [-v [--window S]] [--json]
       gateplane service get NAME [-v] [--window S] [--json]
       gateplane service delete NAME [-y]
       gateplane service replica add NAME --id ID --url URL [--role prefill|decode] [--bootstrap-port N]
       gateplane service replica remove NAME ID
       gateplane service replica list NAME [--json]

A service NAME is served by its gateway at <NAME>.<gateway domain>. Create or change one with
gateplane apply -f FILE (type: service). Its replicas are endpoints registered at run time by
whatever runs them; the gateway routes to those registered, nothing else.

Commands:
  list                   List the project's services (the default)
  get NAME               Show one service, with its LLM traffic over all gateway replicas and
                         per replica: requests, errors, tokens/s, TTFT, ITL, TPOT and duration
  delete NAME            Delete a service; it leaves its gateway at once
  replica add NAME       Register a replica endpoint, or change its URL; for prefill/decode
                         disaggregation (router pd_disaggregation: true) with --role prefill|decode,
                         and a prefill worker's --disaggregation-bootstrap-port as --bootstrap-port
  replica remove NAME ID Remove a replica endpoint
  replica list NAME      List a service's replica endpoints

CONFIG shows the gateway configuration version that includes the service's current state and
whether the gateway's replicas applied it: applied, pending (in sync/all) or rejected: <error>.
Traffic is what the gateway measured over the last 30, 60 or 300 seconds (percentiles p50, p90,
p99 from histograms merged across gateway replicas); "not reported yet" until every running
gateway replica has reported.

Options:
  -v, --verbose          list, get: show MODEL and CREATED columns, and TTFT P90 and TOK/S OUT
                         once traffic is reported
  --window 30|60|300     get, list -v: the traffic window in seconds (default 60)
  --json                 list, get, replica list: print JSON ({project, services} for list)
  --format plain|json    list: same as --json when json
  -y, --yes              delete: do not ask for confirmation
  --id ID                replica add: the replica's id (1-128 of letters, digits, . _ : -)
  --url URL              replica add: where it listens, http(s)://host:port[/prefix]
  -h, --help             Show this help

${CONNECTION}`,

  webhook: `Usage: gateplane webhook [list] [--json]
       gateplane webhook add --url URL --events TYPES [--secret-env NAME|--secret-file PATH]
                             [--description D]
       gateplane webhook get ID [--json]
       gateplane webhook update ID [--url URL] [--events TYPES] [--enable|--disable]
                                   [--rotate-secret|--secret-env NAME|--secret-file PATH]
                                   [--description D]
       gateplane webhook delete ID [-y]
       gateplane webhook deliveries ID [--state pending|delivered|failed] [--json]
       gateplane webhook redeliver ID DELIVERY
       gateplane webhook ping ID

Webhook endpoints receive the project's events as signed POSTs (see docs/webhooks.md for the
payload, headers and how to verify the Gateplane-Signature header).

Commands:
  list                   List the project's webhook endpoints (the default)
  add                    Register an endpoint; prints its signing secret once
  get ID                 Show one endpoint
  update ID              Change an endpoint; --enable re-enables one that was disabled
  delete ID              Delete an endpoint and its delivery log
  deliveries ID          Show the delivery log, newest first
  redeliver ID DELIVERY  Send a delivery again now (same event id)
  ping ID                Send a signed test event now; fails unless the endpoint answers 2xx

Options:
  --url URL              add, update: the endpoint, https:// (http:// only for loopback)
  --events TYPES         add, update: comma-separated event types, prefix.* patterns or *
                         (e.g. gateway.*,service.scaling)
  --secret-env NAME      add, update: use the signing secret (24+ characters) in the environment
                         variable NAME instead of a generated one
  --secret-file PATH     add, update: the same, read from PATH (- for stdin); never the secret
                         itself on the command line (other users see it in ps)
  --rotate-secret        update: generate a new secret; the old one also signs for 24 h
  --enable, --disable    update: resume or stop deliveries
  --state STATE          deliveries: only pending, delivered or failed ones
  --json                 print JSON
  -y, --yes              delete: do not ask for confirmation
  -h, --help             Show this help

${CONNECTION}`,
  "service-token": `${SERVICE_TOKEN_HELP}

${CONNECTION}`,
  acme: `Usage: gateplane acme [get] [--json]
       gateplane acme set [--directory URL] [--eab-kid KID] [--email ADDRESS]
       gateplane acme unset

The project's ACME settings, used by its gateways with certificate: {type: lets-encrypt}. A
gateway's certificate.acme_server overrides the directory; the EAB is sent only to gateways
that use the project's directory. set replaces every setting (an option left out is cleared).

Commands:
  get                    Show the settings (the HMAC key is never shown)
  set                    Save the settings; the project's gateways get them at once
  unset                  Back to Let's Encrypt without EAB

Options:
  --directory URL        set: the CA's https:// ACME directory (default: Let's Encrypt)
  --eab-kid KID          set: External Account Binding key id; the HMAC key (base64url) is read
                         from GATEPLANE_ACME_EAB_HMAC_KEY, never from the command line
  --email ADDRESS        set: contact address registered with the ACME account
  --json                 get: print JSON
  -h, --help             Show this help

${CONNECTION}`,
  ...(Object.fromEntries(Object.entries(ACCOUNT_HELP).map(([name, text]) => [name, `${text}\n\n${CONNECTION}`])) as {
    [K in keyof typeof ACCOUNT_HELP]: string;
  }),
} as const;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}
