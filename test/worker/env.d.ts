import type { Env } from "../../core/env.ts";

declare module "cloudflare:test" {
  interface ProvidedEnv extends Env {
    MIGRATIONS: D1Migration[];
    /** Fault-injection control of the local host daemon used by these tests. */
    FAULTS_URL: string;
    /** The webhook receiver of test/worker/global-setup-webhooks.ts. */
    WEBHOOK_RECEIVER_URL: string;
    /** The AWS fake (test/fakes/aws), started by global-setup-aws.ts. */
    AWS_FAKE_URL: string;
    /** Fake clouds started by global-setup-clouds.ts. */
    GCP_FAKE_URL: string;
    KUBERNETES_FAKE_URL: string;
    KUBERNETES_TLS_FAKE_URL: string;
    AZURE_FAKE_URL: string;
    CLOUDFLARE_FAKE_URL: string;
  }
}
