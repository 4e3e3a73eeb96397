/**
 * @module
 * `--help` texts and `--version`. Kept next to each other so the grammar is documented in one place.
 */
import { readFileSync } from "node:fs";

const CONNECTION = `Connection options (any command):
  --url URL              Control plane URL (env GATEPLANE_URL)
  --token TOKEN          API token (env GATEPLANE_TOKEN)
  -p, --project NAME     Project (env GATEPLANE_PROJECT)

Settings not given as options or environment variables are read from the JSON file
$GATEPLANE_CONFIG, else the nearest .gateplane/config.json above the current directory
(\`npm start\` writes one), else ~/.gateplane/config.json.`;

export const HELP = {
  main: `Usage: gateplane [connection options] <command> [options]

Manage Gateplane gateways described in *.dstack.yml files.

Commands:
  apply -f FILE          Create or update the gateway a configuration describes
  delete -f FILE         Delete the gateway a configuration describes
  gateway [list]         List gateways
  gateway get NAME       Show a gateway
  gateway delete NAME    Delete a gateway
  gateway update NAME    Change a gateway (--set-default)

Options:
  -h, --help             Show help (also: gateplane <command> --help)
  --version              Show the version

${CONNECTION}`,

  apply: `Usage: gateplane apply -f FILE [-y] [--force] [-d] [-n NAME] [-v]

Creates the gateway FILE describes, or updates it: in place when only domain, default or
replicas change, otherwise by deleting and re-creating it (after confirmation).

Options:
  -f, --file FILE        The configuration file (*.dstack.yml)
  -y, --yes              Do not ask for confirmation
  --force                Apply even if the gateway changed since the plan, or nothing changed
  -d, --detach           Do not wait for the gateway to be provisioned
  -n, --name NAME        Override the configuration's name
  -v, --verbose          Show CREATED and ERROR columns
  -h, --help             Show this help

${CONNECTION}`,

  delete: `Usage: gateplane delete -f FILE [-y]

Deletes the gateway FILE names. Deletion continues in the background.

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
  get NAME               Show one gateway
  delete NAME            Delete a gateway; deletion continues in the background
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
} as const;

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version?: string };
  return pkg.version ?? "unknown";
}
