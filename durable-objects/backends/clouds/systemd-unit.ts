/**
 * @module
 * The agent's systemd unit as text, for renderers that cannot read files (the cloud-init renderer
 * must also run where there is no file system). `gateplane-agent.service` beside this file is the same
 * text, for installing by hand; a test keeps the two equal.
 */

export const AGENT_UNIT_NAME = "gateplane-agent.service";
export const AGENT_UNIT_PATH = `/etc/systemd/system/${AGENT_UNIT_NAME}`;
/** Where the unit reads the bootstrap document from (root, 0600). */
export const BOOTSTRAP_PATH = "/etc/gateplane/bootstrap.json";
export const AGENT_USER = "gateplane";
export const AGENT_BIN = "/usr/local/bin/gateplane-agent";
export const ADMIN_PORT = 9901;
/** The agent's V8 flags: the proxy's `LEAN_HEAP_FLAGS` (a part this one may not import; a test keeps them equal). */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--heap-growing-percent=50"];

export const AGENT_UNIT = `# Gateplane agent: runs the gateway's proxy on ports 80/443 and keeps its config in sync with the
# control plane. Installed by the cloud-init that the control plane's cloud backends render
# (durable-objects/backends/clouds/cloud-init.ts); the same text is systemd-unit.ts beside this
# file (a test keeps them equal).
#
# Needs: the system user "gateplane", Node.js and the gateplane package (/usr/local/bin/gateplane-agent),
# and the bootstrap document at /etc/gateplane/bootstrap.json (root, 0600).

[Unit]
Description=Gateplane gateway agent
Wants=network-online.target
After=network-online.target
# Never give up restarting: a gateway host has nothing better to do than run its agent.
StartLimitIntervalSec=0

[Service]
Type=simple
User=gateplane
Group=gateplane
# The bootstrap document stays root-only; systemd hands the service a private copy under %d.
LoadCredential=bootstrap.json:/etc/gateplane/bootstrap.json
# /var/lib/gateplane, owned by the service user: the agent token and the last good config.
StateDirectory=gateplane
StateDirectoryMode=0700
# Node with the proxy's lean heap flags (its configuration's copy would otherwise sit in V8's default
# 16 MiB semi-spaces and heap slack: docs/gateway-host.md#memory), found on systemd's PATH (the one
# the install script put in /usr/local/bin, or the system's of the same major); Node follows the
# bin's symlink.
ExecStart=/usr/bin/env node --max-semi-space-size=4 --heap-growing-percent=50 /usr/local/bin/gateplane-agent --user-data %d/bootstrap.json --state-dir /var/lib/gateplane --host 0.0.0.0 --http-port 80 --https-port 443 --admin-port 9901
Environment=NODE_ENV=production
Restart=always
RestartSec=2
# Signals to the agent only, and nothing else in the unit is killed when it stops or dies: the proxy
# runs as its own process (gateplane-proxy, started by the agent in its own session) and keeps serving
# while the agent restarts or is upgraded; the new agent reattaches to it (docs/gateway-host.md).
KillMode=process
TimeoutStopSec=30
# Ports 80 and 443 without root.
AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=true
UMask=0077
# One descriptor per client connection and per upstream connection: the default 1024 (dstack's
# gateways hit it, dstack issue #3984) caps a gateway at a few hundred concurrent requests.
LimitNOFILE=1048576
ProtectSystem=strict
ProtectHome=true
PrivateTmp=true
PrivateDevices=true
ProtectKernelTunables=true
ProtectKernelModules=true
ProtectControlGroups=true
RestrictSUIDSGID=true
LockPersonality=true

[Install]
WantedBy=multi-user.target
`;
