/**
 * @module
 * `--help` of the account commands (see `account-commands.ts`); `help.ts` merges them into HELP.
 */

export const ACCOUNT_COMMANDS_SUMMARY = `  user [whoami]          Show who the token belongs to
  user list|create NAME  List users, or create one and their first API token (global admin)
  token [list]|create|revoke
                         Your API tokens (or --user's): list, create one, revoke one
  project [list]|create|get
                         List, create (global admin) or show projects
  member [list]|add|remove
                         The project's members and their roles (admin, member)
  backend [list]|set|unset
                         The project's cloud backends' credentials
  dns [get]|set|unset    The project's DNS provider (cloudflare) credentials
  events                 The project's audit trail and gateway events`;

const SECRETS = `Secrets are never taken from the command line (other users see it in ps, and shell history
keeps it): they come from a file (- reads stdin) or an environment variable you name.`;

export const ACCOUNT_HELP = {
  user: `Usage: gateplane user [whoami] [--json]
       gateplane user list [--json]
       gateplane user create NAME [--json]

Commands:
  whoami                 Show the user the API token belongs to (the default)
  list                   List users (needs a global admin token)
  create NAME            Create a user (needs a global admin token); prints the user's first API
                         token once. Add them to a project with gateplane member add NAME.

Options:
  --json                 print JSON
  -h, --help             Show this help`,

  token: `Usage: gateplane token [list] [--user NAME] [--json]
       gateplane token create [--user NAME] [--description TEXT] [--json]
       gateplane token revoke ID [-y]

API tokens (gpt_…) act as their user on the control plane's API. A token is shown once, when
it is created; only its hash is kept.

Commands:
  list                   Your tokens, or --user NAME's (global admin), the default: ids, when
                         created, last used and revoked, descriptions; never the secrets
  create                 Create a token for yourself, or for --user NAME (global admin)
  revoke ID              Revoke a token (its id from list); it is refused from then on

Options:
  --user NAME            list, create: whose tokens (default: the caller)
  --description TEXT     create: a note to tell tokens apart (up to 200 characters)
  --json                 list, create: print JSON (create's includes the token)
  -y, --yes              revoke: do not ask for confirmation
  -h, --help             Show this help`,

  project: `Usage: gateplane project [list] [--json]
       gateplane project create NAME [--json]
       gateplane project get [NAME] [--json]

Commands:
  list                   The projects you belong to, with your role (the default)
  create NAME            Create a project (needs a global admin token)
  get [NAME]             Show a project (default: the configured one, -p)

Options:
  --json                 print JSON
  -h, --help             Show this help`,

  member: `Usage: gateplane member [list] [--json]
       gateplane member add USER [--role admin|member]
       gateplane member remove USER [-y]

The project's members (-p or the configured project). admin manages members, credentials and
settings; member uses gateways and services.

Commands:
  list                   List members and their roles (the default)
  add USER               Add a user, or change their role (project admin)
  remove USER            Remove a user from the project (project admin)

Options:
  --role ROLE            add: admin or member (default member)
  --json                 list, add: print JSON
  -y, --yes              remove: do not ask for confirmation
  -h, --help             Show this help`,

  backend: `Usage: gateplane backend [list] [--json]
       gateplane backend set TYPE (--credentials-file PATH | --credentials-env NAME)
       gateplane backend unset TYPE [-y]

Cloud credentials per backend type (aws, gcp, azure, kubernetes), stored encrypted; the control
plane never shows them again. The credentials are a JSON object, the body of
PUT /projects/:project/backends/:type (see docs/cloud-backends.md).

Commands:
  list                   Which backends are configured (the default)
  set TYPE               Save TYPE's credentials (project admin)
  unset TYPE             Remove TYPE's credentials (project admin)

Options:
  --credentials-file PATH  set: read the JSON from PATH; - reads stdin
  --credentials-env NAME   set: read the JSON from the environment variable NAME
  --json                 list, set: print JSON
  -y, --yes              unset: do not ask for confirmation
  -h, --help             Show this help

${SECRETS}`,

  dns: `Usage: gateplane dns [get] [PROVIDER] [--json]
       gateplane dns set cloudflare --zone-id ID --token-env NAME [--api-endpoint URL]
       gateplane dns set cloudflare --credentials-file PATH|- | --credentials-env NAME
       gateplane dns unset cloudflare [-y]

With a DNS provider's credentials, the project's gateways create and remove their own wildcard
DNS records; without them the CLI only says which records to create. PROVIDER: cloudflare.

Commands:
  get [PROVIDER]         Whether the provider is configured (the default; PROVIDER: cloudflare)
  set PROVIDER           Save the provider's credentials (project admin)
  unset PROVIDER         Remove them (project admin)

Options:
  --token-env NAME       set: the API token (Zone › DNS › Edit) is in the environment variable NAME
  --zone-id ID           set: the zone's 32-character hex id
  --api-endpoint URL     set: the provider's API root (default https://api.cloudflare.com/client/v4)
  --credentials-file PATH  set: a JSON object {api_token, zone_id, api_endpoint?}; - reads stdin
  --credentials-env NAME   set: the same JSON object in the environment variable NAME
  --json                 get, set: print JSON
  -y, --yes              unset: do not ask for confirmation
  -h, --help             Show this help

${SECRETS}`,

  events: `Usage: gateplane events [--gateway NAME] [--type TYPE] [--limit N] [--json]

The project's audit trail (who planned, applied, deleted what) and the gateways' typed events
(gateway.status, service.scaling, …; docs/api.md#events lists them), oldest first.

Options:
  --gateway NAME         only this gateway's
  --type TYPE            only events of this type
  --limit N              the newest N (default 100), fetched page by page
  --json                 print JSON ({project, events})
  -h, --help             Show this help`,
} as const;
