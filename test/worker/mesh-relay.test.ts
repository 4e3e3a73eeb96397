/**
 * The mesh relay through the real GatewayObject: a gateway replica's digest reaches the gateway's
 * other replica as sent, not the sender; a digest over the bounds closes the sender's socket as any
 * bad message does, and reaches nobody.
 */
import { describe, expect, it } from "vitest";
import { CLOSE_CODES, type ServerMessage } from "../../schema/agent-protocol.ts";
import { MAX_DIGEST_ROUTES, type MeshDigest } from "../../schema/mesh.ts";
import { connectAgent, newProject, runningGateway, waitFor } from "./helpers.ts";

function digests(ws: WebSocket): MeshDigest[] {
  const out: MeshDigest[] = [];
  ws.addEventListener("message", (e) => {
    const m = JSON.parse(e.data as string) as ServerMessage;
    if (m.type === "mesh") out.push(m.digest);
  });
  return out;
}

describe("mesh relay", () => {
  it("relays a replica's digest to the gateway's other replicas only", async () => {
    const project = await newProject();
    const [t0, t1] = await runningGateway(project, "gw-mesh", 2);
    const a = await connectAgent(t0!);
    const b = await connectAgent(t1!);
    const atA = digests(a.ws);
    const atB = digests(b.ws);
    const digest: MeshDigest = {
      routes: [{ s: "llm", r: "llm-0", b: 4, h: [1, 2, 3, 4] }],
      charges: [{ z: "zone", k: 42, n: 3 }],
      sampled_out: 0,
    };
    a.send({ type: "mesh", digest });
    await waitFor("relayed", async () => atB.length === 1);
    expect(atB[0]).toEqual(digest);
    expect(atA).toEqual([]);

    const closed = new Promise<number>((resolve) => a.ws.addEventListener("close", (e) => resolve(e.code)));
    a.send({ type: "mesh", digest: { ...digest, routes: Array(MAX_DIGEST_ROUTES + 1).fill(digest.routes[0]) } });
    expect(await closed).toBe(CLOSE_CODES.BAD_MESSAGE);
    expect(atB).toHaveLength(1);
  });
});
