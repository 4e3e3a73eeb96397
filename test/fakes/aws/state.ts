/**
 * The fake's resources, per region, seeded on first use: a default VPC with two public subnets
 * (route 0.0.0.0/0 → internet gateway) and two private ones (main route table, no such route) in
 * AZs `a` and `b`, and Canonical's Ubuntu images next to a look-alike from another owner.
 */
import { randomBytes } from "node:crypto";

export const ACCOUNT = "123456789012";
export const CANONICAL = "099720109477";
export const hex = (n: number) =>
  randomBytes(Math.ceil(n / 2))
    .toString("hex")
    .slice(0, n);

export interface Tag {
  key: string;
  value: string;
}
export interface Vpc {
  id: string;
  region: string;
  cidr: string;
  isDefault: boolean;
}
export interface Subnet {
  id: string;
  region: string;
  vpcId: string;
  az: string;
  cidr: string;
}
export interface RouteTable {
  id: string;
  region: string;
  vpcId: string;
  main: boolean;
  subnetIds: string[];
  routes: { destination: string; gatewayId: string }[];
}
export interface Image {
  id: string;
  region: string;
  owner: string;
  name: string;
  architecture: "x86_64" | "arm64";
  created: string;
}
export interface Permission {
  protocol: string;
  from: number;
  to: number;
  cidr: string;
}
export interface SecurityGroup {
  id: string;
  region: string;
  vpcId: string;
  name: string;
  description: string;
  ingress: Permission[];
  tags: Tag[];
}
export type InstanceStateName = "pending" | "running" | "shutting-down" | "terminated";
export const STATE_CODES: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  "shutting-down": 32,
  terminated: 48,
};
export interface Instance {
  id: string;
  region: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  state: InstanceStateName;
  describes: number;
  subnetId: string;
  vpcId: string;
  az: string;
  privateIp: string;
  publicIp: string | null;
  groupIds: string[];
  clientToken: string;
  fingerprint: string;
  userData: string;
  tags: Tag[];
  volumeTags: Tag[];
  launchTime: string;
  metadataHttpTokens: string;
  rootVolumeGb: number | null;
}
export interface LoadBalancer {
  arn: string;
  region: string;
  name: string;
  dnsName: string;
  scheme: string;
  type: string;
  vpcId: string;
  subnetIds: string[];
  securityGroups: string[];
  tags: Tag[];
  created: string;
}
export interface TargetGroup {
  arn: string;
  region: string;
  name: string;
  protocol: string;
  port: number;
  vpcId: string;
  targetType: string;
  healthCheckPath: string;
  matcher: string;
  targets: { id: string; port: number }[];
  tags: Tag[];
}
export interface Listener {
  arn: string;
  region: string;
  lbArn: string;
  port: number;
  protocol: string;
  certificateArn: string | null;
  sslPolicy: string | null;
  action:
    | { type: "forward"; targetGroupArn: string }
    | { type: "redirect"; protocol: string; port: string; statusCode: string };
}

export class FakeAwsState {
  readonly vpcs: Vpc[] = [];
  readonly subnets: Subnet[] = [];
  readonly routeTables: RouteTable[] = [];
  readonly images: Image[] = [];
  readonly securityGroups: SecurityGroup[] = [];
  readonly instances: Instance[] = [];
  readonly loadBalancers: LoadBalancer[] = [];
  readonly targetGroups: TargetGroup[] = [];
  readonly listeners: Listener[] = [];
  /** ACM certificates that exist, by ARN (a listener with another one fails CertificateNotFound). */
  readonly certificates = new Set<string>();
  private readonly seeded = new Set<string>();
  private ipCounter = 10;

  region(region: string): void {
    if (this.seeded.has(region)) return;
    this.seeded.add(region);
    const vpc = this.addVpc(region, true, [
      { az: "a", public: true },
      { az: "b", public: true },
      { az: "a", public: false },
      { az: "b", public: false },
    ]);
    void vpc;
    const image = (name: string, architecture: Image["architecture"], created: string, owner = CANONICAL) =>
      this.images.push({ id: `ami-${hex(17)}`, region, owner, name, architecture, created });
    image("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250101", "x86_64", "2025-01-02T00:00:00.000Z");
    image("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20260301", "x86_64", "2026-03-02T00:00:00.000Z");
    image("ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20260301", "arm64", "2026-03-02T00:00:00.000Z");
    image("ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-20260401", "x86_64", "2026-04-02T00:00:00.000Z");
    // Newest of all, same name pattern, wrong owner: only the owner filter keeps it out.
    image(
      "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261201",
      "x86_64",
      "2026-12-02T00:00:00.000Z",
      "111122223333",
    );
  }

  /** A VPC with the given subnets; public ones share a route table with an internet gateway route. */
  addVpc(region: string, isDefault: boolean, subnets: { az: string; public: boolean }[]) {
    this.region(region);
    const n = this.vpcs.length;
    const vpc: Vpc = { id: `vpc-${hex(17)}`, region, cidr: `10.${n}.0.0/16`, isDefault };
    this.vpcs.push(vpc);
    const main: RouteTable = {
      id: `rtb-${hex(17)}`,
      region,
      vpcId: vpc.id,
      main: true,
      subnetIds: [],
      routes: [{ destination: vpc.cidr, gatewayId: "local" }],
    };
    const pub: RouteTable = {
      id: `rtb-${hex(17)}`,
      region,
      vpcId: vpc.id,
      main: false,
      subnetIds: [],
      routes: [
        { destination: vpc.cidr, gatewayId: "local" },
        { destination: "0.0.0.0/0", gatewayId: `igw-${hex(17)}` },
      ],
    };
    this.routeTables.push(main, pub);
    const created = subnets.map((s, i) => {
      const subnet: Subnet = {
        id: `subnet-${hex(17)}`,
        region,
        vpcId: vpc.id,
        az: `${region}${s.az}`,
        cidr: `10.${n}.${i}.0/24`,
      };
      this.subnets.push(subnet);
      if (s.public) pub.subnetIds.push(subnet.id);
      return { ...subnet, public: s.public };
    });
    return { vpc, subnets: created };
  }

  nextIp(prefix: string): string {
    this.ipCounter++;
    return `${prefix}.${Math.floor(this.ipCounter / 250)}.${this.ipCounter % 250}`;
  }

  isPublicSubnet(subnetId: string): boolean {
    const subnet = this.subnets.find((s) => s.id === subnetId);
    const own = this.routeTables.find((t) => t.subnetIds.includes(subnetId));
    const table = own ?? this.routeTables.find((t) => t.main && t.vpcId === subnet?.vpcId);
    return !!table?.routes.some((r) => r.destination === "0.0.0.0/0" && r.gatewayId.startsWith("igw-"));
  }

  /** What tests assert on: everything that costs money or would be left behind. */
  snapshot() {
    return {
      instances: this.instances.map(({ userData, fingerprint, ...i }) => ({ ...i, userData })),
      securityGroups: this.securityGroups,
      loadBalancers: this.loadBalancers,
      targetGroups: this.targetGroups,
      listeners: this.listeners,
      vpcs: this.vpcs,
      images: this.images,
      subnets: this.subnets.map((s) => ({ ...s, public: this.isPublicSubnet(s.id) })),
    };
  }
}
