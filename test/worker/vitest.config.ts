import { generateKeyPairSync, randomBytes } from "node:crypto";
import path from "node:path";
import { defineWorkersProject, readD1Migrations } from "@cloudflare/vitest-pool-workers/config";
import { freePort } from "../support/ports.ts";
import { installPoolPatches } from "./pool-patches.ts";

const root = path.resolve(__dirname, "../..");
// Before the pool starts: it loads its runtime modules through fs.readFileSync (see the module).
installPoolPatches();

// The global setup runs in this process (vitest resets process.env for it, so a global carries
// these) and starts the host daemon's fault proxy on this port.
const shared = globalThis as { gpPool?: { port: number; token: string } };
shared.gpPool ??= { port: await freePort(), token: randomBytes(16).toString("hex") };
const pool = shared.gpPool;
const daemonUrl = `http://127.0.0.1:${pool.port}`;
// The webhook receiver's port, chosen the same way (test/worker/global-setup-webhooks.ts).
const receiver = globalThis as { gpWebhooks?: { port: number } };
receiver.gpWebhooks ??= { port: await freePort() };
const receiverPort = receiver.gpWebhooks.port;
// The AWS fake's port (test/worker/global-setup-aws.ts), chosen here for the same reason.
const awsShared = globalThis as { gpAws?: { port: number } };
awsShared.gpAws ??= { port: await freePort() };
const awsFake = awsShared.gpAws;
const sharedClouds = globalThis as {
  gpClouds?: { gcp: number; kubernetes: number; kubernetesTls: number; azure: number; cloudflare: number };
};
sharedClouds.gpClouds ??= {
  gcp: await freePort(),
  kubernetes: await freePort(),
  kubernetesTls: await freePort(),
  azure: await freePort(),
  cloudflare: await freePort(),
};
const clouds = sharedClouds.gpClouds;
const signingKey = JSON.stringify({
  ...generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "jwk" }),
  kid: "test",
  alg: "ES256",
});

export default defineWorkersProject(async () => ({
  test: {
    name: "worker",
    // As in the node project: one shared runtime on a loaded machine makes a 0.3 s test take seconds.
    testTimeout: 30_000,
    include: [path.join(root, "test/worker/**/*.test.ts")],
    // Absolute: as a project of the root config, this config's own directory is the root.
    setupFiles: [path.join(root, "test/worker/apply-migrations.ts"), path.join(root, "test/worker/park-objects.ts")],
    globalSetup: [
      path.join(root, "test/worker/global-setup.ts"),
      path.join(root, "test/worker/global-setup-webhooks.ts"),
      path.join(root, "test/worker/global-setup-aws.ts"),
      path.join(root, "test/worker/global-setup-clouds.ts"),
    ],
    poolOptions: {
      workers: {
        singleWorker: true,
        isolatedStorage: false,
        wrangler: { configPath: path.join(root, "wrangler.toml") },
        miniflare: {
          bindings: {
            MIGRATIONS: await readD1Migrations(path.join(root, "migrations")),
            ADMIN_TOKEN: "gpa_test_admin_token_0123456789abcdef",
            CREDENTIALS_KEY: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            AGENT_SIGNING_KEY: signingKey,
            LOCAL_HOST_DAEMON_URL: daemonUrl,
            LOCAL_HOST_DAEMON_TOKEN: pool.token,
            FAULTS_URL: `${daemonUrl}/__faults`,
            PUBLIC_URL: "http://127.0.0.1:8787",
            WEBHOOK_RECEIVER_URL: `http://127.0.0.1:${receiverPort}`,
            WEBHOOK_ATTEMPT_TIMEOUT_MS: "2000",
            AWS_FAKE_URL: `http://127.0.0.1:${awsFake.port}`,
            AGENT_PACKAGE_URL: "https://downloads.gateplane.test/gateplane-0.1.0.tgz",
            CLOUD_API_TIMEOUT_MS: "3000",
            // The fake clouds answer at once: poll their operations and retry their faults without
            // the seconds a real cloud needs (production leaves both unset: 2 s and 0.5 s).
            CLOUD_POLL_INTERVAL_MS: "50",
            CLOUD_RETRY_DELAY_MS: "20",
            // A fake host moves on at each describe: look at it every 250 ms, not every 2 s (not
            // faster: one runtime serves every test, and a provisioning gateway's alarm is work).
            CLOUD_PROVISION_POLL_MS: "250",
            GCP_FAKE_URL: `http://127.0.0.1:${clouds.gcp}`,
            KUBERNETES_FAKE_URL: `http://127.0.0.1:${clouds.kubernetes}`,
            KUBERNETES_TLS_FAKE_URL: `https://127.0.0.1:${clouds.kubernetesTls}`,
            AZURE_FAKE_URL: `http://127.0.0.1:${clouds.azure}`,
            CLOUDFLARE_FAKE_URL: `http://127.0.0.1:${clouds.cloudflare}/client/v4`,
          },
        },
      },
    },
  },
}));
