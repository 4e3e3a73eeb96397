/**
 * @module
 * DNS automation inside a GatewayObject: makes the provider's records match the gateway's
 * `dns_records` (none once it is being deleted or failed), remembering in the object's own
 * SQLite which records it made, so it only ever deletes its own. A create first looks for an
 * identical record (adopts it), so a lost answer never leaves a duplicate. Without the project's
 * DNS credentials it does nothing: the API and CLI keep telling users which records to create.
 */

import { loadSealed } from "../../core/db/sealed-settings.ts";
import type { Env } from "../../core/env.ts";
import type { Gateway } from "../../schema/api.ts";
import type { DnsRecord } from "../../schema/dns.ts";
import { type CloudflareDnsCredentials, dnsCredentialType } from "../../schema/dns-automation.ts";
import { cloudTimeoutMs } from "../backends/clouds/worker-settings.ts";
import { cloudflareDns } from "./cloudflare-api.ts";

interface ManagedRow {
  record_id: string;
  name: string;
  type: string;
  content: string;
}

export interface DnsSyncResult {
  /** False when the provider could not be brought in line; try again later. */
  ok: boolean;
  message: string | null;
}

const key = (r: { name: string; type: string; content: string }) => `${r.type} ${r.name} ${r.content}`;

export class DnsAutomation {
  constructor(
    private readonly sql: SqlStorage,
    private readonly env: Pick<Env, "DB" | "CREDENTIALS_KEY" | "CLOUD_API_TIMEOUT_MS">,
    private readonly event: (message: string) => void,
  ) {}

  /** Creates this part's tables; the GatewayObject calls it with every other part's (see `migrateStorage`). */
  migrate(): void {
    this.sql.exec(
      "CREATE TABLE IF NOT EXISTS dns_managed (record_id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, content TEXT NOT NULL)",
    );
    this.sql.exec("CREATE TABLE IF NOT EXISTS dns_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
  }

  private managed(): ManagedRow[] {
    return this.sql.exec("SELECT * FROM dns_managed").toArray() as unknown as ManagedRow[];
  }

  private getState(k: string): string | null {
    const row = this.sql.exec("SELECT value FROM dns_state WHERE key = ?", k).toArray()[0] as
      | { value: string }
      | undefined;
    return row?.value ?? null;
  }

  private setState(k: string, value: string | null): void {
    if (value === null) this.sql.exec("DELETE FROM dns_state WHERE key = ?", k);
    else this.sql.exec("INSERT OR REPLACE INTO dns_state (key, value) VALUES (?, ?)", k, value);
  }

  /** Failed releases in a row (the gateway's deletion waits for a few). */
  get releaseFailures(): number {
    return Number(this.getState("release_failures") ?? 0);
  }

  private async credentials(projectId: string): Promise<CloudflareDnsCredentials | null> {
    return (await loadSealed(this.env, projectId, dnsCredentialType("cloudflare"))) as CloudflareDnsCredentials | null;
  }

  /**
   * Brings the provider in line with `gateway` (null or `releasing`: no records). Cheap when
   * nothing changed: no credentials are read and no API is called.
   */
  async sync(projectId: string, gateway: Gateway | null, releasing: boolean): Promise<DnsSyncResult> {
    const records: DnsRecord[] =
      releasing || !gateway || gateway.to_be_deleted || gateway.status === "failed" ? [] : gateway.dns_records;
    // Cloudflare calls a record's value its content.
    const wanted = records.map((r) => ({ name: r.name, type: r.type, content: r.value }));
    const managed = this.managed();
    const wantedKeys = new Set(wanted.map(key));
    const managedKeys = new Set(managed.map(key));
    const stale = managed.filter((r) => !wantedKeys.has(key(r)));
    const missing = wanted.filter((r) => !managedKeys.has(key(r)));
    if (stale.length === 0 && missing.length === 0) return this.settled(releasing);

    let creds: CloudflareDnsCredentials | null;
    try {
      creds = await this.credentials(projectId);
    } catch (e) {
      return this.failed(releasing, `reading the DNS credentials failed: ${String(e)}`);
    }
    if (!creds) {
      // Not (or no longer) automated: forget records we cannot reach; the user owns DNS again.
      if (stale.length > 0) this.sql.exec("DELETE FROM dns_managed");
      return this.settled(releasing);
    }
    const api = cloudflareDns(creds, cloudTimeoutMs(this.env));
    try {
      for (const r of stale) {
        await api.remove(r.record_id);
        this.sql.exec("DELETE FROM dns_managed WHERE record_id = ?", r.record_id);
        this.event(`DNS record ${r.name} ${r.type} ${r.content} removed from Cloudflare`);
      }
      for (const r of missing) {
        const found = await api.find(r);
        const made = found ?? (await api.create(r, `Gateplane gateway ${gateway?.project_name}/${gateway?.name}`));
        this.sql.exec(
          "INSERT OR REPLACE INTO dns_managed (record_id, name, type, content) VALUES (?, ?, ?, ?)",
          made.id,
          r.name,
          r.type,
          r.content,
        );
        this.event(`DNS record ${r.name} ${r.type} ${r.content} ${found ? "adopted" : "created"} in Cloudflare`);
      }
    } catch (e) {
      return this.failed(releasing, e instanceof Error ? e.message : String(e));
    }
    return this.settled(releasing);
  }

  private settled(releasing: boolean): DnsSyncResult {
    if (releasing) this.setState("release_failures", null);
    this.setState("last_error", null);
    return { ok: true, message: null };
  }

  private failed(releasing: boolean, message: string): DnsSyncResult {
    // One event per distinct failure: the alarm may run every few seconds.
    if (this.getState("last_error") !== message) this.event(`DNS automation failed: ${message}`);
    this.setState("last_error", message);
    if (releasing) this.setState("release_failures", String(this.releaseFailures + 1));
    return { ok: false, message };
  }

  /** Records left behind when a deletion stops waiting for the provider. */
  abandon(): void {
    for (const r of this.managed())
      this.event(`DNS record ${r.name} ${r.type} ${r.content} left in Cloudflare: remove it by hand`);
  }
}
