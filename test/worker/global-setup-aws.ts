/**
 * Starts the AWS fake (EC2, ELBv2, STS on one URL) for the Workers-pool tests, on the port the
 * config chose; the GatewayObject reaches it through the `endpoint_url` credential option.
 */
import { startFakeAws } from "../fakes/aws/server.ts";

export const AWS_TEST_KEY = { access_key_id: "AKIAGATEPLANETEST001", secret_access_key: "gateplane-test-secret-0123" };
export const AWS_TEST_ROLE = "arn:aws:iam::123456789012:role/gateplane-test";

export default async function setup() {
  const shared = (globalThis as { gpAws?: { port: number } }).gpAws;
  if (!shared) throw new Error("test/worker/vitest.config.ts did not choose the AWS fake's port");
  const fake = await startFakeAws({
    port: shared.port,
    keys: { [AWS_TEST_KEY.access_key_id]: AWS_TEST_KEY.secret_access_key },
    roles: [AWS_TEST_ROLE],
    describesToRunning: 2,
  });
  return () => fake.close();
}
