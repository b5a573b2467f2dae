"""Pure address plan of the cluster network: CIDRs, the per-node addresses, host-level names
and the route tags that say which instance owns a route.

Everything an instance creates on the host is named from here, from its data dir and node
name (never from the hostname alone), so two control planes on one machine never meet:

- node network namespace ``cpn-<id>``, host end of its link ``cph<id>`` (``<id>`` = 10 hex
  of sha256(root, node)); pod namespaces ``cpp-<hash of pod uid>``;
- nftables tables ``cph-<id>`` (the link's host-side rules, owned by the agent) and
  ``cpx-<id>`` (the service proxy, one in the node namespace and one on the host);
- routes carry protocol ``ROUTE_PROTO`` and a metric that encodes the cluster tag (a hash of
  the apiserver URL and the CIDRs) and the member (node + component), see ``route_metric``.

Per node (``NodeAddresses``) for a pod CIDR such as 10.42.3.0/24: the bridge gateway .1, pods
.2-.251, and a /31 link to the host: .252 in the node namespace, .253 on the host. The last
/24 of the cluster CIDR is never given to a node: its last usable address (10.42.255.254 by
default) is the *host address*, a virtual address through which pods reach services the host
runs on loopback (the apiserver, the cluster DNS); see docs/networking.md.
Neighbours: ``node.py`` (creates all this), ``controllers/nodeipam.py`` (hands out pod CIDRs),
``proxy/`` and ``dns/`` (read the CIDRs).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CLUSTER_CIDR = "10.42.0.0/16"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"
DEFAULT_NODE_MASK = 24
DEFAULT_DOMAIN = "cluster.local"
ROUTE_PROTO = 211  # our routes' rtm_protocol (iproute2 shows it as "proto 211")
# route metrics: high bits say what the route is; then 16 bits of cluster tag, 12 of member
METRIC_VIA_NODE = 0xE0000000
METRIC_UNREACHABLE = 0xF0000000
PICK_SUPERNET = "10.64.0.0/10"  # tests, benchmarks and `up --pick-cidrs` draw CIDRs here (never the defaults)


def short_hash(*parts: str, n: int = 10) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:n]


def instance_id(root: Path | str, node: str) -> str:
    """10 hex characters naming one node of one instance on this host."""
    return short_hash(str(Path(root).resolve()), node)


def netns_name(iid: str) -> str:
    return f"cpn-{iid}"


def host_link_name(iid: str) -> str:
    return f"cph{iid}"  # 13 characters: within IFNAMSIZ


def host_table_name(iid: str) -> str:
    return f"cph-{iid}"


def proxy_table_name(iid: str) -> str:
    return f"cpx-{iid}"


def pod_netns_name(uid: str) -> str:
    return f"cpp-{short_hash(uid)}"


# EndpointSlices that publish a loopback service of the host at the host address (the apiserver's
# `kubernetes` Service, the cluster DNS) carry this managed-by label; the annotation maps their
# port names to the loopback ports when those differ ("dns=45123,dns-tcp=45123")
HOST_SERVICES_MANAGER = "host-services.controlplane.io"
LOOPBACK_PORTS_ANNOTATION = "networking.controlplane.io/loopback-ports"

NODE_LINK = "host0"  # the node namespace's end of the link to the host
BRIDGE = "cni0"  # the pod bridge inside the node namespace


@dataclass(frozen=True)
class ClusterNetworks:
    """The instance-wide CIDRs."""

    cluster_cidr: ipaddress.IPv4Network
    service_cidr: ipaddress.IPv4Network
    node_mask: int = DEFAULT_NODE_MASK

    @classmethod
    def parse(cls, cluster_cidr: str = DEFAULT_CLUSTER_CIDR, service_cidr: str = DEFAULT_SERVICE_CIDR,
              node_mask: int = DEFAULT_NODE_MASK) -> "ClusterNetworks":
        c = ipaddress.ip_network(cluster_cidr, strict=True)
        s = ipaddress.ip_network(service_cidr, strict=True)
        if not isinstance(c, ipaddress.IPv4Network) or not isinstance(s, ipaddress.IPv4Network):
            raise ValueError("only IPv4 CIDRs are supported")
        if c.overlaps(s):
            raise ValueError(f"cluster CIDR {c} overlaps service CIDR {s}")
        if not c.prefixlen < node_mask <= 28:
            raise ValueError(f"node mask /{node_mask} must be longer than the cluster CIDR /{c.prefixlen} and at most /28")
        if s.num_addresses < 16:
            raise ValueError(f"service CIDR {s} is too small")
        return cls(c, s, node_mask)

    @property
    def host_address(self) -> ipaddress.IPv4Address:
        """The virtual address of the host's loopback services (last usable of the cluster CIDR)."""
        return self.cluster_cidr.broadcast_address - 1

    @property
    def kubernetes_service_ip(self) -> ipaddress.IPv4Address:
        return self.service_cidr.network_address + 1

    @property
    def dns_service_ip(self) -> ipaddress.IPv4Address:
        return self.service_cidr.network_address + 10

    def node_subnets(self) -> list[ipaddress.IPv4Network]:
        """Pod CIDRs nodes may get: every /node_mask but the one holding the host address."""
        return [n for n in self.cluster_cidr.subnets(new_prefix=self.node_mask) if self.host_address not in n]

    def cluster_tag(self, api_url: str) -> int:
        """16 bits naming this cluster in route metrics (same for all its nodes on this host)."""
        return int(short_hash(api_url.rstrip("/"), str(self.cluster_cidr), str(self.service_cidr), n=4), 16)


@dataclass(frozen=True)
class NodeAddresses:
    """The addresses of one node's pod network, all inside its pod CIDR."""

    pod_cidr: ipaddress.IPv4Network

    @classmethod
    def parse(cls, pod_cidr: str) -> "NodeAddresses":
        n = ipaddress.ip_network(pod_cidr, strict=True)
        if not isinstance(n, ipaddress.IPv4Network) or n.prefixlen > 28:
            raise ValueError(f"pod CIDR {pod_cidr} must be IPv4 and at most /28")
        return cls(n)

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.network_address + 1

    @property
    def node_link_address(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.broadcast_address - 3  # even: .252 of a /24

    @property
    def host_link_address(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.broadcast_address - 2  # .253 of a /24

    @property
    def range_start(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.network_address + 2

    @property
    def range_end(self) -> ipaddress.IPv4Address:
        return self.pod_cidr.broadcast_address - 4


def member_id(iid: str, component: int = 0) -> int:
    """12 bits naming one node + component (0 agent, 1 standalone proxy) in route metrics."""
    return ((int(iid[:3], 16) & 0x7FF) << 1 | (component & 1)) & 0xFFF


def route_metric(kind: int, tag: int, member: int) -> int:
    return kind | (tag & 0xFFFF) << 12 | (member & 0xFFF)


def metric_tag(metric: int) -> int:
    return (metric >> 12) & 0xFFFF


def overlaps(a: str | ipaddress.IPv4Network, b: str | ipaddress.IPv4Network) -> bool:
    na = ipaddress.ip_network(a, strict=False) if isinstance(a, str) else a
    nb = ipaddress.ip_network(b, strict=False) if isinstance(b, str) else b
    return na.version == nb.version and na.overlaps(nb)  # type: ignore[arg-type]


def route_conflicts(routes: list[dict], cidrs: list[ipaddress.IPv4Network], tag: int) -> list[dict]:
    """Routes (``ip -j route show table all`` entries) that overlap ``cidrs`` and are not
    this cluster's own (protocol ``ROUTE_PROTO`` with our tag in the metric). Local-table
    entries (our own link addresses) and multicast/broadcast ones are never conflicts."""
    out = []
    for r in routes:
        if r.get("table") == "local" or r.get("type") in ("local", "broadcast", "multicast", "anycast"):
            continue
        dst = r.get("dst", "")
        if dst in ("default", "") or ":" in dst:
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
        except ValueError:
            continue
        if not any(net.overlaps(c) for c in cidrs):
            continue
        proto = r.get("protocol")
        ours = str(proto) in (str(ROUTE_PROTO),) and metric_tag(int(r.get("metric") or 0)) == tag
        if not ours:
            out.append(r)
    return out
