"""One node's pod network: the node's own network namespace joined to the host by a veth
link, a bridge inside it for the pods (through the CNI plugins), and the host routes.

    host netns                         node netns cpn-<id>                 pod netns cpp-<h>
    ───────────                        ───────────────────                 ─────────────────
    cph<id>  .253/32  ── veth ──  host0 .252/31                            eth0 10.42.3.7/24
    route 10.42.3.0/24 via .252        cni0 10.42.3.1/24 (bridge) ── veth ── (bridge plugin)
    unreachable 10.42/16, 10.43/16     routes 10.42/16 and 10.43/16 via .253
    table cph-<id> (forward/input      ip_forward=1, br_netfilter on, proxy_arp on cni0
    filter, masquerade)                tables: the proxy's cpx-<id>, portmap's (CNI)

Pods have a default route to their bridge; the node namespace has no default route, so
nothing a pod sends can leave the machine (docs/networking.md "Safety"). The host forwards
only between our links (per-device ``forwarding=1`` on ``cph<id>``; the global
``net.ipv4.ip_forward`` is left alone) and drops what a link sends to non-cluster addresses.
``start`` installs the unreachable safety routes (before anything else), ``setup(pod_cidr)``
builds the namespace and link, ``add_pod``/``remove_pod`` run the CNI plugins, ``teardown``
removes everything (the namespace takes its links, bridge, plugin rules and routes with it).
Neighbours: ``runtime/runc.py`` (sandboxes), ``agent`` (start/setup/teardown),
``controlplane.proxy`` (programs the node namespace and the host for Services).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane import hostcleanup
from controlplane.log import get_logger
from controlplane.network import addressing as A
from controlplane.network import cni, routes
from controlplane.network.hostcmd import (
    CommandError, NETNS_DIR, delete_table, ip, ip_json, netns_exists, nft, run, sysctl,
)

log = get_logger(__name__)


@dataclass
class NodeNetworkConfig:
    root: Path  # this node's state directory (CNI state lives under it)
    node: str
    nets: A.ClusterNetworks
    api_url: str  # names the cluster (with the CIDRs) in route tags when cluster_id is empty
    cluster_id: str = ""  # ``routes.cluster_id``: the cluster CA's key hash
    mtu: int = 1500
    component: int = 0  # 0 agent, 1 standalone proxy (route member bit)


@dataclass
class PodAttachment:
    netns: str
    netns_path: str
    ip: str
    result: dict[str, Any] = field(default_factory=dict)


class NodeNetwork:
    def __init__(self, cfg: NodeNetworkConfig) -> None:
        self.cfg = cfg
        self.root = Path(cfg.root).resolve()
        self.iid = A.instance_id(self.root, cfg.node)
        self.netns = A.netns_name(self.iid)
        self.host_link = A.host_link_name(self.iid)
        self.host_table = A.host_table_name(self.iid)
        self.tag = cfg.nets.cluster_tag(cfg.cluster_id or cfg.api_url)
        self.member = A.member_id(self.iid, cfg.component)
        self.state_dir = self.root / "cni"
        self.addrs: A.NodeAddresses | None = None
        self._lock = asyncio.Lock()
        self._started = False

    # -- names others need ---------------------------------------------------------------
    @property
    def netns_path(self) -> str:
        return str(NETNS_DIR / self.netns)

    def _state_file(self) -> Path:
        return self.root / "network.json"

    def _conflist(self) -> dict[str, Any]:
        assert self.addrs is not None
        a = self.addrs
        return cni.pod_conflist(f"cp-{self.iid}", str(a.pod_cidr), str(a.gateway), str(a.range_start),
                                str(a.range_end), str(self.state_dir / "ipam"), A.BRIDGE, self.cfg.mtu)

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Check the CIDRs are ours to use, then install the unreachable safety routes."""
        previous = load_state(self.root)
        old_tag = previous.get("tag") if previous else None
        if isinstance(old_tag, int) and old_tag != self.tag:
            # this member's routes from before the cluster's name changed (the API URL, before
            # route tags came from the CA): ours, under the old tag
            for r in await routes.routes_of_member(old_tag, self.member):
                await routes.delete_route(r)
        await routes.check_free(self.cfg.nets, self.tag)
        await routes.add_unreachable(self.cfg.nets, self.tag, self.member)
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_state()
        self._started = True
        log.info("safety routes installed", cluster_cidr=str(self.cfg.nets.cluster_cidr),
                 service_cidr=str(self.cfg.nets.service_cidr), tag=self.tag)

    def _write_state(self) -> None:
        st = {"node": self.cfg.node, "cluster_cidr": str(self.cfg.nets.cluster_cidr),
              "service_cidr": str(self.cfg.nets.service_cidr), "node_mask": self.cfg.nets.node_mask,
              "api_url": self.cfg.api_url, "cluster_id": self.cfg.cluster_id, "tag": self.tag, "member": self.member,
              "pod_cidr": str(self.addrs.pod_cidr) if self.addrs else None}
        self._state_file().write_text(json.dumps(st))

    async def setup(self, pod_cidr: str) -> None:
        """Build (or rebuild) the node namespace, its link to the host and the host rules."""
        async with self._lock:
            addrs = A.NodeAddresses.parse(pod_cidr)
            if not addrs.pod_cidr.subnet_of(self.cfg.nets.cluster_cidr):
                raise ValueError(f"pod CIDR {pod_cidr} is not inside the cluster CIDR {self.cfg.nets.cluster_cidr}")
            if not self._started:
                await self.start()
            previous = load_state(self.root)
            self.addrs = addrs
            if previous and previous.get("pod_cidr") == str(addrs.pod_cidr) and netns_exists(self.netns) \
                    and await _link_exists(self.host_link):
                # an agent restart: the pods that outlived it keep their interfaces and addresses
                # (host-local's reservations are on disk); the host side is applied again
                self._write_state()
                await self._host_side(addrs)
                log.info("node network re-adopted", netns=self.netns, pod_cidr=pod_cidr, link=self.host_link)
                return
            self._write_state()
            await self._remove_node_namespace()
            # no pod survives a rebuild: stale IPAM reservations and cached results go too
            await asyncio.to_thread(shutil.rmtree, self.state_dir, True)
            try:
                await self._build(addrs)
            except BaseException:
                await self._remove_node_namespace()
                raise
            log.info("node network ready", netns=self.netns, pod_cidr=pod_cidr, link=self.host_link)

    async def _build(self, a: A.NodeAddresses) -> None:
        nets, ns, hl = self.cfg.nets, self.netns, self.host_link
        await ip("netns", "add", ns)
        await ip("link", "set", "lo", "up", netns=ns)
        await sysctl("net.ipv4.ip_forward", "1", netns=ns)
        await self._br_netfilter()
        # the pod bridge exists before the first pod so it can proxy ARP for the host's end
        await ip("link", "add", A.BRIDGE, "type", "bridge", netns=ns)
        await ip("link", "set", A.BRIDGE, "up", netns=ns)
        await sysctl(f"net.ipv4.conf.{A.BRIDGE}.proxy_arp", "1", netns=ns)
        await sysctl(f"net.ipv4.neigh.{A.BRIDGE}.proxy_delay", "0", netns=ns)
        # the link to the host
        await ip("link", "add", hl, "type", "veth", "peer", "name", A.NODE_LINK, "netns", ns)
        await sysctl(f"net.ipv6.conf.{hl}.disable_ipv6", "1", check=False)
        await ip("addr", "add", f"{a.host_link_address}/32", "dev", hl)
        await ip("link", "set", hl, "up")
        await sysctl(f"net.ipv4.conf.{hl}.forwarding", "1")
        await sysctl(f"net.ipv4.conf.{hl}.route_localnet", "1")
        await ip("addr", "add", f"{a.node_link_address}/31", "dev", A.NODE_LINK, netns=ns)
        await ip("link", "set", A.NODE_LINK, "up", netns=ns)
        # node namespace routes: the rest of the cluster via the host. Service IPs too, so that
        # what the proxy does not DNAT reaches its forward-hook checks (reject/drop); without a
        # proxy the host drops it (its forward rule admits only cluster addresses)
        await ip("route", "add", str(nets.cluster_cidr), "via", str(a.host_link_address), "dev", A.NODE_LINK, netns=ns)
        await ip("route", "add", str(nets.service_cidr), "via", str(a.host_link_address), "dev", A.NODE_LINK, netns=ns)
        await self._host_side(a)

    async def _host_side(self, a: A.NodeAddresses) -> None:
        """The host's routes to the node (tagged as ours) and the link's host rules; idempotent."""
        nets, hl = self.cfg.nets, self.host_link
        metric = str(A.route_metric(A.METRIC_VIA_NODE, self.tag, self.member))
        proto = str(A.ROUTE_PROTO)
        await ip("route", "replace", f"{a.node_link_address}/32", "dev", hl, "scope", "link", "proto", proto,
                 "metric", metric)
        await ip("route", "replace", str(a.pod_cidr), "via", str(a.node_link_address), "dev", hl, "src",
                 str(a.host_link_address), "proto", proto, "metric", metric)
        await ip("route", "replace", str(nets.service_cidr), "via", str(a.node_link_address), "dev", hl, "src",
                 str(a.host_link_address), "proto", proto, "metric", metric)
        await nft(self._host_rules(a))

    async def _br_netfilter(self) -> None:
        """Bridged pod-to-pod packets must pass netfilter (Service replies, NetworkPolicy)."""
        if not Path("/proc/sys/net/bridge").exists():
            await run("modprobe", "br_netfilter", check=False)
        try:
            await sysctl("net.bridge.bridge-nf-call-iptables", "1", netns=self.netns)
        except CommandError as e:
            log.warning("br_netfilter unavailable: same-node Service replies and NetworkPolicy may not work",
                        error=str(e))

    def _host_rules(self, a: A.NodeAddresses) -> str:
        t, hl, cidr = self.host_table, self.host_link, self.cfg.nets.cluster_cidr
        return "\n".join([
            f"add table ip {t}",
            f"flush table ip {t}",
            # nothing from the node leaves through the host except to cluster addresses
            f"add chain ip {t} forward {{ type filter hook forward priority filter ; policy accept ; }}",
            f"add rule ip {t} forward iifname \"{hl}\" ip daddr != {cidr} counter drop",
            # the host itself: answers, and what the proxy published (DNAT to loopback)
            f"add chain ip {t} input {{ type filter hook input priority filter ; policy accept ; }}",
            f"add rule ip {t} input iifname \"{hl}\" ct state established,related accept",
            f"add rule ip {t} input iifname \"{hl}\" ct status dnat accept",
            f"add rule ip {t} input iifname \"{hl}\" icmp type {{ echo-request, destination-unreachable }} accept",
            f"add rule ip {t} input iifname \"{hl}\" counter drop",
            # host connections redirected from 127.0.0.1 (NodePort, LoadBalancer) leave with the link address
            f"add chain ip {t} postrouting {{ type nat hook postrouting priority srcnat ; policy accept ; }}",
            f"add rule ip {t} postrouting oifname \"{hl}\" ip saddr 127.0.0.0/8 masquerade",
        ]) + "\n"

    async def _remove_node_namespace(self) -> None:
        if netns_exists(self.netns):
            await ip("netns", "del", self.netns, check=False)  # takes host0 and so cph<id> with it
        await ip("link", "del", self.host_link, check=False)
        await delete_table("ip", self.host_table)
        for r in await routes.routes_of_member(self.tag, self.member):
            if r.get("type", "unicast") == "unicast":
                await routes.delete_route(r)

    async def teardown(self) -> None:
        """Remove the namespace, link, host rules and every route of this member."""
        async with self._lock:
            await self._remove_node_namespace()
            await routes.remove_unreachable(self.cfg.nets, self.tag, self.member)
            await asyncio.to_thread(shutil.rmtree, self.state_dir, True)
            # (network.json stays: it names what to check for leftovers, see ``_leftovers``)
            self._started = False
            log.info("node network removed", netns=self.netns)

    # -- pods ----------------------------------------------------------------------------
    def _result_file(self, uid: str) -> Path:
        return self.state_dir / "results" / f"{uid}.json"

    async def add_pod(self, uid: str, port_mappings: list[dict[str, Any]] | None = None) -> PodAttachment:
        if self.addrs is None:
            raise RuntimeError("the node network is not set up yet (no pod CIDR)")
        ns = A.pod_netns_name(uid)
        if netns_exists(ns):
            await self.remove_pod(uid)
        await ip("netns", "add", ns)
        path = str(NETNS_DIR / ns)
        rc = {"portMappings": port_mappings} if port_mappings else None
        inv = cni.Invocation(container_id=uid, netns_path=path, ifname="eth0", runtime_config=rc, exec_netns=self.netns)
        try:
            await cni.add(cni.LOOPBACK, cni.Invocation(container_id=uid, netns_path=path, ifname="lo"))
            result = await cni.add(self._conflist(), inv)
        except BaseException:
            await cni.delete(self._conflist(), inv, None)
            await ip("netns", "del", ns, check=False)
            raise
        addr = cni.first_ipv4(result)
        if addr is None:
            await cni.delete(self._conflist(), inv, result)
            await ip("netns", "del", ns, check=False)
            raise OSError(f"CNI ADD gave pod {uid} no IPv4 address: {result}")
        f = self._result_file(uid)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps({"result": result, "runtimeConfig": rc}))
        return PodAttachment(ns, path, addr, result)

    async def remove_pod(self, uid: str) -> None:
        ns = A.pod_netns_name(uid)
        path = str(NETNS_DIR / ns)
        f = self._result_file(uid)
        saved: dict[str, Any] = {}
        try:
            saved = json.loads(f.read_text())
        except (OSError, ValueError):
            pass
        if self.addrs is not None and netns_exists(self.netns):
            inv = cni.Invocation(container_id=uid, netns_path=path, ifname="eth0",
                                 runtime_config=saved.get("runtimeConfig"), exec_netns=self.netns)
            errs = await cni.delete(self._conflist(), inv, saved.get("result"))
            if errs:
                log.warning("CNI DEL reported errors", pod_uid=uid, errors=errs)
        if netns_exists(ns):
            await ip("netns", "del", ns, check=False)
        f.unlink(missing_ok=True)


async def _link_exists(name: str) -> bool:
    return bool(await ip_json("link", "show", "dev", name))


def load_state(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(root).resolve() / "network.json").read_text())
    except (OSError, ValueError):
        return None


async def cleanup(root: Path, node: str) -> None:
    """Remove what a killed agent left (``controlplane agent cleanup``): from its state file."""
    st = load_state(root)
    if st is None:
        return
    nets = A.ClusterNetworks.parse(st["cluster_cidr"], st["service_cidr"], int(st.get("node_mask") or 24))
    nn = NodeNetwork(NodeNetworkConfig(root=Path(root), node=node, nets=nets, api_url=st.get("api_url") or "",
                                       cluster_id=st.get("cluster_id") or ""))
    if st.get("pod_cidr"):
        nn.addrs = A.NodeAddresses.parse(st["pod_cidr"])
    results = nn.state_dir / "results"
    uids = {f.stem for f in results.glob("*.json")} if results.exists() else set()
    for sb in (Path(root) / "runtime" / "pods").glob("*/sandbox.json"):  # (ADD may not have finished)
        try:
            uids.add(json.loads(sb.read_text())["uid"])
        except (OSError, ValueError, KeyError):
            continue
    for uid in sorted(uids):
        await nn.remove_pod(uid)
    await nn.teardown()
    # a standalone proxy of this node (member bit 1) may have been killed too: its routes and
    # the proxy's host table (the one in the node namespace went with the namespace)
    await routes.remove_unreachable(nets, nn.tag, A.member_id(nn.iid, 1))
    await delete_table("ip", A.proxy_table_name(nn.iid))


# -- `controlplane down` and test teardown: the network of an instance ----------------------
def _roots(inst: hostcleanup.Instance) -> list[tuple[Path, str]]:
    """(agent root, node name) of every node network the instance's data dir records."""
    out = []
    for f in [*inst.data_dir.glob("*/network.json"), *inst.data_dir.glob("*/*/network.json")]:
        st = load_state(f.parent)
        if st and st.get("node"):
            out.append((f.parent.resolve(), st["node"]))
    return out


async def _down_remove(inst: hostcleanup.Instance) -> None:
    for root, node in _roots(inst):
        await cleanup(root, node)


def leftovers(root: Path, node: str) -> list[str]:
    """What the node network of ``root``/``node`` still has on the host (synchronous)."""
    import subprocess

    def run_json(*argv: str) -> Any:
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
        try:
            return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None
        except ValueError:
            return None

    iid = A.instance_id(root, node)
    out = []
    if netns_exists(A.netns_name(iid)):
        out.append(f"netns {A.netns_name(iid)}")
    if run_json("ip", "-j", "link", "show", "dev", A.host_link_name(iid)):
        out.append(f"link {A.host_link_name(iid)}")
    for t in (A.host_table_name(iid), A.proxy_table_name(iid)):
        if subprocess.run(["nft", "list", "table", "ip", t], capture_output=True, timeout=30).returncode == 0:
            out.append(f"nftables table ip {t}")
    st = load_state(root) or {}
    results = Path(root) / "cni" / "results"
    uids = {f.stem for f in results.glob("*.json")} if results.exists() else set()
    for sb in (Path(root) / "runtime" / "pods").glob("*/sandbox.json"):
        try:
            uids.add(json.loads(sb.read_text())["uid"])
        except (OSError, ValueError, KeyError):
            continue
    out += [f"netns {A.pod_netns_name(u)}" for u in sorted(uids) if netns_exists(A.pod_netns_name(u))]
    if st.get("api_url") or st.get("cluster_id"):
        nets = A.ClusterNetworks.parse(st["cluster_cidr"], st["service_cidr"], int(st.get("node_mask") or 24))
        tag = nets.cluster_tag(st.get("cluster_id") or st["api_url"])
        members = {A.member_id(iid, 0), A.member_id(iid, 1)}
        for r in run_json("ip", "-j", "route", "show", "table", "main") or []:
            m = int(r.get("metric") or 0)
            if str(r.get("protocol")) == str(A.ROUTE_PROTO) and A.metric_tag(m) == tag and (m & 0xFFF) in members:
                out.append(f"route {r.get('type', 'unicast')} {r.get('dst')} metric {m}")
    return out


hostcleanup.register("network", _down_remove,
                     lambda inst: [x for root, node in _roots(inst) for x in leftovers(root, node)], order=30)
