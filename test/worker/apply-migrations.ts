import { applyD1Migrations, env } from "cloudflare:test";

// Idempotent: the pool shares storage across files (isolatedStorage is off for DO alarms).
await applyD1Migrations(env.DB, env.MIGRATIONS);
