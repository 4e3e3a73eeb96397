/**
 * A fake Microsoft identity platform + Azure Resource Manager for tests. The token endpoint checks
 * what Entra ID checks for the client-credentials grant: the client secret, or a client assertion
 * whose RS256 signature verifies with the registered certificate's public key (node:crypto,
 * independently of the jose code that signs it), whose `x5t` is that certificate's thumbprint and
 * whose audience, issuer, subject and lifetime are right. ARM calls need the bearer token it
 * issued and an api-version; resources (resource groups, NSGs, virtual networks, public IPs, NICs,
 * VMs) are state, with ARM's references checked (NIC → subnet/IP, VM → NIC, in-use deletes
 * refused), long-running operations answered through `Azure-AsyncOperation` / `Location`, and
 * `deleteOption: Delete` honoured. `POST /__control` injects faults, `GET /__state` lists resources.
 */
import { createHash, randomBytes, randomUUID, verify, X509Certificate } from "node:crypto";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { selfSignedCertificate } from "../tls/self-signed.ts";

export interface AzureFaults {
  throttle: number;
  fail: number;
  delay_calls: number;
  delay_ms: number;
  /** Polls a long-running operation stays InProgress. */
  operation_polls: number;
  /** The next VM create operation fails with this code (e.g. SkuNotAvailable). */
  fail_vm_with: string;
}

export interface FakeAzure {
  url: string;
  tenantId: string;
  clientId: string;
  clientSecret: string;
  subscriptionId: string;
  certificate: { private_key_pem: string; certificate_pem: string };
  faults: AzureFaults;
  resources(type?: string): { id: string; type: string; name: string; body: any }[];
  stop(): Promise<void>;
}

type Resource = { id: string; type: string; name: string; body: any };

function clientCertificate(): { private_key_pem: string; certificate_pem: string } {
  const { key, cert } = selfSignedCertificate({ commonName: "gateplane-test", days: 2 });
  return { private_key_pem: key, certificate_pem: cert };
}

const VM_SIZES = new Set(["Standard_B1s", "Standard_B1ms", "Standard_B2s", "Standard_D2s_v5"]);
const b64url = (s: string) => Buffer.from(s, "base64url");

/** `tls`: serve https with this key and certificate (Azure's SDK pipelines refuse bearer tokens over http). */
export async function startFakeAzure(
  options: { port?: number; tls?: { key: string; cert: string } } = {},
): Promise<FakeAzure> {
  const tenantId = randomUUID();
  const clientId = randomUUID();
  const subscriptionId = randomUUID();
  const clientSecret = `s~${randomBytes(24).toString("base64url")}`;
  const certificate = clientCertificate();
  const x509 = new X509Certificate(certificate.certificate_pem);
  const thumbprint = createHash("sha1").update(x509.raw).digest("base64url");
  const tokens = new Map<string, number>();
  const store = new Map<string, Resource>();
  const operations = new Map<string, { polls: number; done: () => { status: string; error?: unknown } }>();
  const faults: AzureFaults = {
    throttle: 0,
    fail: 0,
    delay_calls: 0,
    delay_ms: 0,
    operation_polls: 1,
    fail_vm_with: "",
  };
  let base = "";
  let ipCounter = 10;

  const send = (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}) =>
    res
      .writeHead(code, { "content-type": "application/json; charset=utf-8", ...headers })
      .end(body === undefined ? "" : JSON.stringify(body));
  const armError = (res: ServerResponse, code: number, errCode: string, message: string) =>
    send(res, code, { error: { code: errCode, message } });
  const aad = (res: ServerResponse, code: number, error: string, description: string) =>
    send(res, code, {
      error,
      error_description: `${description}\r\nTrace ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`,
      error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)],
    });

  function checkAssertion(assertion: string, tokenUrl: string): string | null {
    const parts = assertion.split(".");
    if (parts.length !== 3) return "AADSTS50027: JWT token is invalid or malformed.";
    let header: { alg?: string; x5t?: string };
    let claims: { aud?: string; iss?: string; sub?: string; exp?: number; nbf?: number; jti?: string };
    try {
      header = JSON.parse(b64url(parts[0]!).toString());
      claims = JSON.parse(b64url(parts[1]!).toString());
    } catch {
      return "AADSTS50027: JWT token is invalid or malformed.";
    }
    if (header.x5t !== thumbprint) {
      return `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${header.x5t}']`;
    }
    if (
      header.alg !== "RS256" ||
      !verify("RSA-SHA256", Buffer.from(`${parts[0]}.${parts[1]}`), x509.publicKey, b64url(parts[2]!))
    ) {
      return "AADSTS700027: Client assertion contains an invalid signature.";
    }
    if (claims.aud !== tokenUrl) return `AADSTS700016: The audience claim of the client assertion is not ${tokenUrl}.`;
    if (claims.iss !== clientId || claims.sub !== clientId)
      return "AADSTS700023: Client assertion issuer and subject must be the client id.";
    const now = Math.floor(Date.now() / 1000);
    if (!claims.exp || claims.exp < now) return "AADSTS700024: Client assertion is not within its valid time range.";
    if (claims.nbf && claims.nbf > now + 300)
      return "AADSTS700024: Client assertion is not within its valid time range.";
    if (!claims.jti) return "AADSTS700021: Client assertion needs a jti.";
    return null;
  }

  function token(req: IncomingMessage, res: ServerResponse, tenant: string, raw: string) {
    if (tenant !== tenantId) return aad(res, 400, "invalid_request", `AADSTS90002: Tenant '${tenant}' not found.`);
    const form = new URLSearchParams(raw);
    if (form.get("grant_type") !== "client_credentials")
      return aad(res, 400, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
    if (form.get("client_id") !== clientId) {
      return aad(
        res,
        400,
        "unauthorized_client",
        `AADSTS700016: Application with identifier '${form.get("client_id")}' was not found in the directory.`,
      );
    }
    const scope = form.get("scope") ?? "";
    if (scope !== `${base}/.default` && scope !== "https://management.azure.com/.default") {
      return aad(
        res,
        400,
        "invalid_scope",
        `AADSTS70011: The provided value for the input parameter 'scope' is not valid.`,
      );
    }
    const assertion = form.get("client_assertion");
    if (assertion) {
      if (form.get("client_assertion_type") !== "urn:ietf:params:oauth:client-assertion-type:jwt-bearer") {
        return aad(res, 400, "invalid_request", "AADSTS50012: Invalid client_assertion_type.");
      }
      const problem = checkAssertion(assertion, `${base}/${tenant}/oauth2/v2.0/token`);
      if (problem) return aad(res, 401, "invalid_client", problem);
    } else if (form.get("client_secret") !== clientSecret) {
      return aad(
        res,
        401,
        "invalid_client",
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
      );
    }
    void req;
    const t = `eyFake.${randomBytes(24).toString("base64url")}`;
    tokens.set(t, Date.now() + 3600_000);
    return send(res, 200, { token_type: "Bearer", expires_in: 3599, ext_expires_in: 3599, access_token: t });
  }

  /** A long-running operation whose end runs `finish` (after `operation_polls` polls). */
  function longRunning(finish: () => { status: string; error?: unknown }): Record<string, string> {
    const id = randomUUID();
    operations.set(id, { polls: 0, done: finish });
    return {
      "azure-asyncoperation": `${base}/subscriptions/${subscriptionId}/providers/Microsoft.Fake/operations/${id}?api-version=2023-09-01`,
      "retry-after": "1",
    };
  }

  const get = (id: string) => store.get(id.toLowerCase());
  const ref = (id: string | undefined) => (id ? get(id) : undefined);

  function put(res: ServerResponse, id: string, type: string, name: string, body: any) {
    const existing = get(id);
    const location = body?.location;
    if (!location)
      return armError(res, 400, "LocationRequired", "The location property is required for this definition.");
    const resource: Resource = {
      id,
      type,
      name,
      body: { ...body, id, name, type, properties: { ...(body.properties ?? {}) } },
    };
    const p = resource.body.properties;
    if (type === "Microsoft.Network/virtualNetworks") {
      for (const s of p.subnets ?? []) {
        const nsg = s.properties?.networkSecurityGroup?.id;
        if (nsg && !ref(nsg))
          return armError(
            res,
            400,
            "InvalidResourceReference",
            `Resource ${nsg} referenced by resource ${id} was not found.`,
          );
        s.id = `${id}/subnets/${s.name}`;
      }
    }
    if (type === "Microsoft.Network/publicIPAddresses") {
      p.ipAddress =
        existing?.body.properties.ipAddress ??
        `20.${(ipCounter >> 8) & 255}.${ipCounter++ & 255}.${(ipCounter % 200) + 10}`;
    }
    if (type === "Microsoft.Network/networkInterfaces") {
      const ipc = p.ipConfigurations?.[0]?.properties;
      const subnetId: string | undefined = ipc?.subnet?.id;
      const vnet = subnetId ? get(subnetId.replace(/\/subnets\/[^/]+$/i, "")) : undefined;
      if (!vnet?.body.properties.subnets?.some((s: { id: string }) => s.id.toLowerCase() === subnetId!.toLowerCase())) {
        return armError(
          res,
          400,
          "InvalidResourceReference",
          `Resource ${subnetId} referenced by resource ${id} was not found.`,
        );
      }
      const ipId: string | undefined = ipc.publicIPAddress?.id;
      if (ipId && !ref(ipId))
        return armError(
          res,
          400,
          "InvalidResourceReference",
          `Resource ${ipId} referenced by resource ${id} was not found.`,
        );
      const other = [...store.values()].find(
        (r) =>
          r.type === type &&
          r.id.toLowerCase() !== id.toLowerCase() &&
          r.body.properties.ipConfigurations?.[0]?.properties?.publicIPAddress?.id?.toLowerCase() ===
            ipId?.toLowerCase(),
      );
      if (ipId && other)
        return armError(res, 400, "PublicIPAddressInUse", `Resource ${ipId} is in use by ${other.id}.`);
      p.virtualMachine = existing?.body.properties.virtualMachine;
      ipc.privateIPAddress = `10.90.0.${store.size + 4}`;
    }
    if (type === "Microsoft.Compute/virtualMachines") {
      if (existing) {
        const before = JSON.stringify(existing.body.properties.osProfile);
        if (JSON.stringify(p.osProfile) !== before) {
          return armError(res, 409, "PropertyChangeNotAllowed", "Changing property 'osProfile' is not allowed.");
        }
        return send(res, 200, existing.body);
      }
      if (!VM_SIZES.has(p.hardwareProfile?.vmSize))
        return armError(
          res,
          409,
          "SkuNotAvailable",
          `The requested VM size '${p.hardwareProfile?.vmSize}' is not available in location '${location}'.`,
        );
      const img = p.storageProfile?.imageReference;
      if (
        img?.publisher !== "Canonical" ||
        !/^ubuntu-2[24]_04-lts$|^0001-com-ubuntu-server-jammy$/.test(img?.offer ?? "")
      ) {
        return armError(
          res,
          404,
          "PlatformImageNotFound",
          `The platform image '${img?.publisher}:${img?.offer}:${img?.sku}:${img?.version}' is not available.`,
        );
      }
      const custom: string = p.osProfile?.customData ?? "";
      if (custom.length > 87380 || Buffer.from(custom, "base64").toString("base64") !== custom) {
        return armError(
          res,
          400,
          "InvalidParameter",
          "Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.",
        );
      }
      const lc = p.osProfile?.linuxConfiguration;
      if (lc?.disablePasswordAuthentication && !lc.ssh?.publicKeys?.[0]?.keyData?.startsWith("ssh-rsa ")) {
        return armError(
          res,
          400,
          "InvalidParameter",
          "Destination path for SSH public keys is currently limited to its default value due to a known issue in Linux provisioning agent.",
        );
      }
      const nicId: string | undefined = p.networkProfile?.networkInterfaces?.[0]?.id;
      const nic = ref(nicId);
      if (!nic)
        return armError(
          res,
          400,
          "InvalidResourceReference",
          `Resource ${nicId} referenced by resource ${id} was not found.`,
        );
      if (nic.body.properties.virtualMachine)
        return armError(
          res,
          400,
          "NicInUse",
          `Network interface ${nicId} is used by existing VM ${nic.body.properties.virtualMachine.id}.`,
        );
      nic.body.properties.virtualMachine = { id };
      p.provisioningState = "Creating";
      p.vmId = randomUUID();
      store.set(id.toLowerCase(), resource);
      const failWith = faults.fail_vm_with;
      faults.fail_vm_with = "";
      const headers = longRunning(() => {
        if (failWith) {
          p.provisioningState = "Failed";
          return { status: "Failed", error: { code: failWith, message: `injected: ${failWith}` } };
        }
        p.provisioningState = "Succeeded";
        return { status: "Succeeded" };
      });
      return send(res, 201, resource.body, headers);
    }
    p.provisioningState = "Succeeded";
    store.set(id.toLowerCase(), resource);
    if (type === "Microsoft.Resources/resourceGroups") return send(res, existing ? 200 : 201, resource.body);
    return send(
      res,
      existing ? 200 : 201,
      resource.body,
      longRunning(() => ({ status: "Succeeded" })),
    );
  }

  function remove(res: ServerResponse, id: string, type: string) {
    const r = get(id);
    if (!r) return send(res, 204, undefined);
    if (type === "Microsoft.Network/networkInterfaces" && r.body.properties.virtualMachine) {
      return armError(
        res,
        400,
        "NicInUse",
        `Network Interface ${id} is used by existing resource ${r.body.properties.virtualMachine.id}. In order to delete the network interface, it must be dissociated from the resource.`,
      );
    }
    if (type === "Microsoft.Network/publicIPAddresses") {
      const user = [...store.values()].find(
        (x) =>
          x.body.properties.ipConfigurations?.[0]?.properties?.publicIPAddress?.id?.toLowerCase() === id.toLowerCase(),
      );
      if (user)
        return armError(
          res,
          400,
          "PublicIPAddressCannotBeDeleted",
          `Public IP address ${id} can not be deleted since it is still allocated to resource ${user.id}.`,
        );
    }
    if (type === "Microsoft.Compute/virtualMachines") {
      r.body.properties.provisioningState = "Deleting";
      const id0 = randomUUID();
      operations.set(id0, {
        polls: 0,
        done: () => {
          store.delete(id.toLowerCase());
          for (const n of r.body.properties.networkProfile?.networkInterfaces ?? []) {
            const nic = ref(n.id);
            if (!nic) continue;
            nic.body.properties.virtualMachine = undefined;
            if (n.properties?.deleteOption === "Delete") {
              store.delete(nic.id.toLowerCase());
              const ip = nic.body.properties.ipConfigurations?.[0]?.properties?.publicIPAddress;
              if (ip?.properties?.deleteOption === "Delete") store.delete(String(ip.id).toLowerCase());
            }
          }
          return { status: "Succeeded" };
        },
      });
      return send(res, 202, undefined, {
        location: `${base}/subscriptions/${subscriptionId}/providers/Microsoft.Fake/locations/x/operationResults/${id0}?api-version=2024-03-01`,
        "retry-after": "1",
      });
    }
    store.delete(id.toLowerCase());
    return send(res, 200, undefined);
  }

  async function arm(req: IncomingMessage, res: ServerResponse, url: URL, body: any) {
    const auth = req.headers.authorization ?? "";
    const exp = tokens.get(auth.startsWith("Bearer ") ? auth.slice(7) : "");
    if (!exp || exp < Date.now())
      return armError(res, 401, "InvalidAuthenticationToken", "The access token is invalid.");
    if (!url.searchParams.get("api-version"))
      return armError(
        res,
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
      );
    if (faults.delay_calls > 0) {
      faults.delay_calls--;
      await new Promise((r) => setTimeout(r, faults.delay_ms));
    }
    if (faults.throttle > 0) {
      faults.throttle--;
      return send(
        res,
        429,
        { error: { code: "TooManyRequests", message: "The request is being throttled." } },
        { "retry-after": "1" },
      );
    }
    if (faults.fail > 0) {
      faults.fail--;
      return armError(res, 500, "InternalServerError", "Encountered internal server error.");
    }
    const p = url.pathname;
    const op = /\/providers\/Microsoft\.Fake\/(?:operations|locations\/x\/operationResults)\/([^/]+)$/.exec(p);
    if (op && req.method === "GET") {
      const o = operations.get(op[1]!);
      if (!o) return armError(res, 404, "NotFound", "operation not found");
      o.polls++;
      const isLocation = p.includes("operationResults");
      if (o.polls < faults.operation_polls)
        return isLocation
          ? send(res, 202, undefined, { location: `${base}${p}${url.search}` })
          : send(res, 200, { status: "InProgress" });
      const result = o.done();
      o.done = () => result;
      return isLocation ? send(res, 200, undefined) : send(res, 200, result);
    }
    const m =
      /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)(?:\/providers\/(Microsoft\.\w+)\/(\w+)\/([^/]+))?$/i.exec(p);
    if (!m) return armError(res, 404, "InvalidResourceType", `The resource type could not be found for ${p}.`);
    const [, sub, group, ns, kind, name] = m;
    if (sub !== subscriptionId)
      return armError(res, 404, "SubscriptionNotFound", `The subscription '${sub}' could not be found.`);
    const rgId = `/subscriptions/${sub}/resourceGroups/${group}`;
    if (!ns) {
      if (req.method === "PUT") return put(res, rgId, "Microsoft.Resources/resourceGroups", group!, body);
      const rg = get(rgId);
      return rg
        ? send(res, 200, rg.body)
        : armError(res, 404, "ResourceGroupNotFound", `Resource group '${group}' could not be found.`);
    }
    if (!get(rgId)) return armError(res, 404, "ResourceGroupNotFound", `Resource group '${group}' could not be found.`);
    const type = `${ns}/${kind}`;
    const id = `${rgId}/providers/${type}/${name}`;
    if (req.method === "PUT") return put(res, id, type, name!, body);
    if (req.method === "DELETE") return remove(res, id, type);
    const r = get(id);
    if (!r)
      return armError(
        res,
        404,
        "ResourceNotFound",
        `The Resource '${type}/${name}' under resource group '${group}' was not found.`,
      );
    if (type === "Microsoft.Compute/virtualMachines" && url.searchParams.get("$expand") === "instanceView") {
      const power = r.body.properties.provisioningState === "Succeeded" ? "PowerState/running" : "PowerState/starting";
      return send(res, 200, {
        ...r.body,
        properties: {
          ...r.body.properties,
          instanceView: {
            statuses: [
              { code: `ProvisioningState/${r.body.properties.provisioningState.toLowerCase()}` },
              { code: power },
            ],
          },
        },
      });
    }
    return send(res, 200, r.body);
  }

  const handler: RequestListener = (req, res) => {
    let raw = "";
    req.on("data", (c) => {
      raw += c;
    });
    req.on("end", () => {
      const url = new URL(req.url ?? "/", base);
      if (url.pathname === "/__control") {
        if (req.method === "POST") Object.assign(faults, JSON.parse(raw || "{}"));
        return send(res, 200, faults);
      }
      if (url.pathname === "/__client")
        return send(res, 200, {
          tenant_id: tenantId,
          client_id: clientId,
          subscription_id: subscriptionId,
          client_secret: clientSecret,
          client_certificate: certificate,
        });
      if (url.pathname === "/__state") return send(res, 200, { resources: [...store.values()] });
      const t = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
      if (t && req.method === "POST") return token(req, res, t[1]!, raw);
      let body: unknown = null;
      try {
        body = raw ? JSON.parse(raw) : null;
      } catch {
        return armError(
          res,
          400,
          "InvalidRequestContent",
          "The request content was invalid and could not be deserialized.",
        );
      }
      arm(req, res, url, body).catch((e) => armError(res, 500, "InternalServerError", String(e)));
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  base = `${options.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    tenantId,
    clientId,
    clientSecret,
    subscriptionId,
    certificate,
    faults,
    resources: (type) => [...store.values()].filter((r) => !type || r.type === type),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
