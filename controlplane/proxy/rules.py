"""nftables rules of the service proxy, as text for ``nft -f`` — pure and table-driven tested.

The layout copies kube-proxy's nftables mode (one ``ip`` table per node, ``cpx-<id>``, in the
node's network namespace):

- map ``service-ips``: ``clusterIP . proto . port`` → ``goto svc-…`` (and external IPs →
  ``ext-…``); map ``node-ports``: ``proto . port`` → ``goto ext-…`` for NodePorts and the
  ports a LoadBalancer Service opens on the node (ServiceLB); both dispatched from
  ``nat-prerouting``/``nat-output`` through chain ``services``;
- ``svc-…``: masquerade for off-cluster and host clients, session affinity (a dynamic set per
  endpoint with the affinity timeout, ``update @set { ip saddr }``), then the balancing rule
  ``numgen random mod N vmap { 0 : goto sep-…, … }`` (random, the default) or ``numgen inc mod
  N`` (round-robin, chosen per Service by annotation);
- ``sep-…``: hairpin masquerade and ``dnat to ip:port``; ``ext-…``: the external traffic
  policy (Local: this node's endpoints only, client IP kept);
- no usable endpoints: ``no-endpoint-services``/``no-endpoint-nodeports`` → ``reject``;
  other ports of a cluster IP are rejected, unallocated cluster IPs dropped.

Each Service port's chains, sets and map elements form a ``Fragment``; a sync sends the
difference between the programmed and the wanted fragments (``diff_script``) in one
transaction, a full sync replaces the whole table. Neighbours: ``model.py`` (input),
``policy.py`` (NetworkPolicy fragments in the same table), ``proxier.py`` (runs them).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

from controlplane.network import addressing as A
from controlplane.proxy.model import Endpoint, ServicePort

MASQ_MARK = "0x4000"


def h8(s: str) -> str:
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:8]


@dataclass
class Fragment:
    """Everything one owner (a Service port, the policy engine) adds to the table."""

    chains: dict[str, list[str]] = field(default_factory=dict)  # name -> rule bodies, in order
    sets: dict[str, str] = field(default_factory=dict)  # name -> declaration body
    elements: dict[str, dict[str, str]] = field(default_factory=dict)  # map/set -> {key: verdict ("" for sets)}

    def element(self, container: str, key: str, verdict: str = "") -> None:
        self.elements.setdefault(container, {})[key] = verdict


@dataclass(frozen=True)
class TableContext:
    """What rule generation needs to know about the node."""

    table: str
    node: str
    nets: A.ClusterNetworks
    node_link: str = A.NODE_LINK


def skeleton(ctx: TableContext) -> list[str]:
    """The static part of the table: maps, sets, base chains and their fixed rules."""
    t = f"ip {ctx.table}"
    svc_cidr = ctx.nets.service_cidr
    return [
        f"add table {t}",
        f"add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map {t} node-ports {{ type inet_proto . inet_service : verdict ; }}",
        f"add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; }}",
        f"add set {t} cluster-ips {{ type ipv4_addr ; }}",
        f"add chain {t} reject-chain",
        f"add rule {t} reject-chain reject",
        f"add chain {t} mark-for-masquerade",
        f"add rule {t} mark-for-masquerade meta mark set meta mark | {MASQ_MARK}",
        f"add chain {t} masquerading {{ type nat hook postrouting priority srcnat ; policy accept ; }}",
        f"add rule {t} masquerading meta mark & {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading meta mark set meta mark ^ {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add chain {t} services",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @node-ports",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}",
        f"add rule {t} nat-prerouting jump services",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; policy accept ; }}",
        f"add rule {t} nat-output jump services",
        f"add chain {t} service-endpoints-check",
        f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services",
        f"add chain {t} nodeport-endpoints-check",
        f"add rule {t} nodeport-endpoints-check fib daddr type local meta l4proto . th dport vmap @no-endpoint-nodeports",
        f"add chain {t} cluster-ips-check",
        f"add rule {t} cluster-ips-check ip daddr @cluster-ips reject",
        f"add rule {t} cluster-ips-check ip daddr {svc_cidr} drop",
        f"add chain {t} filter-input {{ type filter hook input priority -110 ; policy accept ; }}",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add chain {t} filter-forward {{ type filter hook forward priority -110 ; policy accept ; }}",
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add chain {t} filter-output {{ type filter hook output priority -110 ; policy accept ; }}",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        # NetworkPolicy (policy.py fills the maps): egress of the source pod, then ingress of the target
        f"add map {t} pod-ingress {{ type ipv4_addr : verdict ; }}",
        f"add map {t} pod-egress {{ type ipv4_addr : verdict ; }}",
        f"add chain {t} policy-egress {{ type filter hook forward priority 0 ; policy accept ; }}",
        f"add rule {t} policy-egress ct state established,related accept",
        f"add rule {t} policy-egress ip saddr vmap @pod-egress",
        f"add chain {t} policy-ingress {{ type filter hook forward priority 10 ; policy accept ; }}",
        f"add rule {t} policy-ingress ct state established,related accept",
        f"add rule {t} policy-ingress ip daddr vmap @pod-ingress",
    ]


# -- one Service port ------------------------------------------------------------------------

def _id(sp: ServicePort) -> str:
    return f"{h8(sp.key)}-{sp.namespace}/{sp.name}/{sp.protocol}/{sp.port_name or sp.port}"


def sep_chain(sp: ServicePort, ep: Endpoint) -> str:
    return f"sep-{h8(sp.key + '|' + ep.ip + ':' + str(ep.port))}-{sp.namespace}/{sp.name}/{sp.protocol}/" \
           f"{sp.port_name or sp.port}__{ep.ip}/{ep.port}"


def affinity_set(sp: ServicePort, ep: Endpoint) -> str:
    return f"aff-{h8(sp.key + '|' + ep.ip + ':' + str(ep.port))}"


def _dispatch(sp: ServicePort, eps: list[Endpoint]) -> list[str]:
    """Session affinity lookups, then the balancing rule."""
    rules = []
    if sp.affinity_timeout:
        rules += [f"ip saddr @{affinity_set(sp, e)} goto {sep_chain(sp, e)}" for e in eps]
    if len(eps) == 1:
        rules.append(f"goto {sep_chain(sp, eps[0])}")
    else:
        gen = "inc" if sp.algorithm == "round-robin" else "random"
        arms = " , ".join(f"{i} : goto {sep_chain(sp, e)}" for i, e in enumerate(eps))
        rules.append(f"numgen {gen} mod {len(eps)} vmap {{ {arms} }}")
    return rules


def service_fragment(sp: ServicePort, ctx: TableContext) -> Fragment:
    f = Fragment()
    sid = _id(sp)
    cidr = ctx.nets.cluster_cidr
    proto, port = sp.protocol, sp.port
    cluster_eps = sp.cluster_endpoints(ctx.node)
    ext_eps = sp.external_endpoints(ctx.node) if sp.externally_reachable else []
    all_eps = {(e.ip, e.port): e for e in cluster_eps + ext_eps}
    if sp.externally_reachable and sp.external_local:
        all_eps.update({(e.ip, e.port): e for e in sp.usable(None)})  # pods/host use cluster-wide
    for e in all_eps.values():
        name = sep_chain(sp, e)
        rules = [f"ip saddr {e.ip} jump mark-for-masquerade"]
        if sp.affinity_timeout:
            aff = affinity_set(sp, e)
            f.sets[aff] = f"{{ type ipv4_addr ; flags dynamic,timeout ; timeout {sp.affinity_timeout}s ; }}"
            rules.append(f"update @{aff} {{ ip saddr }}")
        rules.append(f"meta l4proto {proto} dnat to {e.ip}:{e.port}")
        f.chains[name] = rules
    svc = f"svc-{sid}"
    if sp.cluster_ip:
        f.element("cluster-ips", sp.cluster_ip)
        key = f"{sp.cluster_ip} . {proto} . {port}"
        if cluster_eps:
            f.chains[svc] = [f"ip saddr != {cidr} jump mark-for-masquerade",
                             f'iifname "{ctx.node_link}" jump mark-for-masquerade'] + _dispatch(sp, cluster_eps)
            f.element("service-ips", key, f"goto {svc}")
        else:
            f.element("no-endpoint-services", key, "goto reject-chain")
    if not sp.externally_reachable:
        return f
    ext = f"ext-{sid}"
    ext_keys = [("node-ports", f"{proto} . {sp.node_port}")] if sp.node_port else []
    if sp.load_balancer_port:
        ext_keys.append(("node-ports", f"{proto} . {port}"))
    ext_ip_keys = [f"{ip} . {proto} . {port}" for ip in sp.external_ips]
    if not ext_eps and not (sp.external_local and sp.usable(None)):
        for m, k in ext_keys:
            f.element("no-endpoint-nodeports", k, "goto reject-chain")
        for k in ext_ip_keys:
            f.element("no-endpoint-services", k, "goto reject-chain")
        return f
    if sp.external_local:
        all_name = f"all-{sid}"
        f.chains[all_name] = _dispatch(sp, sp.usable(None))
        rules = [f"ip saddr {cidr} goto {all_name}",  # from pods (and the host's link): cluster-wide
                 "fib saddr type local jump mark-for-masquerade",
                 f"fib saddr type local goto {all_name}"]
        if ext_eps:
            loc = f"loc-{sid}"
            f.chains[loc] = _dispatch(sp, ext_eps)
            rules.append(f"goto {loc}")
        else:
            rules.append("drop")  # Local with no local endpoint: kube-proxy drops
        f.chains[ext] = rules
    else:
        target = svc if (ext_eps == cluster_eps and svc in f.chains) else f"all-{sid}"
        if target != svc:
            f.chains[target] = _dispatch(sp, ext_eps)
        f.chains[ext] = ["jump mark-for-masquerade", f"goto {target}"]
    for m, k in ext_keys:
        f.element(m, k, f"goto {ext}")
    for k in ext_ip_keys:
        f.element("service-ips", k, f"goto {ext}")
    return f


# -- scripts ---------------------------------------------------------------------------------

def _elem(t: str, container: str, key: str, verdict: str) -> str:
    return f"add element {t} {container} {{ {key}{' : ' + verdict if verdict else ''} }}"


def full_script(ctx: TableContext, fragments: dict[str, Fragment]) -> str:
    """Replace the whole table in one transaction (first sync, recovery, periodic resync)."""
    t = f"ip {ctx.table}"
    out = [f"add table {t}", f"delete table {t}"] + skeleton(ctx)
    for fr in fragments.values():
        for name, decl in fr.sets.items():
            out.append(f"add set {t} {name} {decl}")
        for name in fr.chains:
            out.append(f"add chain {t} {name}")
    for fr in fragments.values():
        for name, rules in fr.chains.items():
            out += [f"add rule {t} {name} {r}" for r in rules]
        for container, elems in fr.elements.items():
            out += [_elem(t, container, k, v) for k, v in elems.items()]
    return "\n".join(out) + "\n"


def diff_script(ctx: TableContext, changes: dict[str, tuple[Fragment | None, Fragment | None]]) -> str:
    """The transaction turning each owner's old fragment into its new one. Order: element
    deletions, chain flushes, chain and set deletions, then set/chain creation, rules and new
    elements — every reference is gone before what it points to is deleted."""
    t = f"ip {ctx.table}"
    del_elems: list[str] = []
    flushes: list[str] = []
    del_chains: list[str] = []
    del_sets: list[str] = []
    add_sets: list[str] = []
    add_chains: list[str] = []
    add_rules: list[str] = []
    add_elems: list[str] = []
    for old, new in changes.values():
        old = old or Fragment()
        new = new or Fragment()
        for container, elems in old.elements.items():
            nel = new.elements.get(container, {})
            del_elems += [f"delete element {t} {container} {{ {k} }}" for k, v in elems.items()
                          if nel.get(k) != v]
        for container, elems in new.elements.items():
            oel = old.elements.get(container, {})
            add_elems += [_elem(t, container, k, v) for k, v in elems.items() if oel.get(k) != v]
        recreated = {n for n, d in new.sets.items() if n in old.sets and old.sets[n] != d}
        for name, decl in new.sets.items():
            if name not in old.sets or name in recreated:
                add_sets.append(f"add set {t} {name} {decl}")
        del_sets += [f"delete set {t} {n}" for n in old.sets if n not in new.sets or n in recreated]
        for name, body in new.chains.items():
            if name not in old.chains:
                add_chains.append(f"add chain {t} {name}")
            elif old.chains[name] == body and not any(f"@{s} " in r or r.endswith(f"@{s}") for s in recreated
                                                     for r in body):
                continue
            else:
                flushes.append(f"flush chain {t} {name}")
            add_rules += [f"add rule {t} {name} {r}" for r in body]
        for name in old.chains:
            if name not in new.chains:
                flushes.append(f"flush chain {t} {name}")
                del_chains.append(f"delete chain {t} {name}")
    out = del_elems + flushes + del_chains + del_sets + add_sets + add_chains + add_rules + add_elems
    return "\n".join(out) + ("\n" if out else "")


# -- the host side ---------------------------------------------------------------------------

def host_script(table: str, host_link: str, node_link_address: str, host_address: str,
                node_ports: set[tuple[str, int]], published: set[tuple[str, int, int]]) -> str:
    """The proxy's table on the host: ``127.0.0.1:<NodePort/LoadBalancer/hostPort>`` to the
    node's link address, and the host address's published ports to loopback (only those)."""
    t = f"ip {table}"
    out = [f"add table {t}", f"delete table {t}", f"add table {t}",
           f"add set {t} node-ports {{ type inet_proto . inet_service ; }}",
           f"add chain {t} nat-output {{ type nat hook output priority -100 ; policy accept ; }}",
           f"add rule {t} nat-output ip daddr 127.0.0.1 meta l4proto . th dport @node-ports dnat to {node_link_address}",
           f"add chain {t} nat-prerouting {{ type nat hook prerouting priority dstnat ; policy accept ; }}"]
    out += [f"add element {t} node-ports {{ {p} . {n} }}" for p, n in sorted(node_ports)]
    out += [f'add rule {t} nat-prerouting iifname "{host_link}" ip daddr {host_address} {p} dport {n} '
            f"dnat to 127.0.0.1:{lo}" for p, n, lo in sorted(published)]
    return "\n".join(out) + "\n"
