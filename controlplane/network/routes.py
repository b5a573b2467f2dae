"""The host's safety routes: before any pod or Service address exists, ``unreachable``
routes for the whole cluster and service CIDRs go into the host's main table, so a packet to
an address nobody holds is refused on this machine instead of following the default route
off it. Routes for what exists (a node's pod CIDR via its link) are more specific and win.

Every route we add carries protocol ``ROUTE_PROTO`` and a metric encoding the cluster tag (from
``cluster_id``: the cluster CA's key hash, so all servers and agents of a cluster share it) and
the member (``addressing.route_metric``); each member (agent or standalone proxy of a node)
adds its own copy and removes only its own, so the routes stay while any member runs.
``check_free`` refuses to start when another instance (or anything else) already routes an
overlapping prefix. Neighbours: ``node.py`` (agent), ``controlplane.proxy`` (standalone proxy),
``cmd/up.py`` (checks before starting anything).
"""

from __future__ import annotations

import ipaddress

from controlplane.log import get_logger
from controlplane.network import addressing as A
from controlplane.network.hostcmd import CommandError, ip, ip_json
from controlplane.pki import servertoken

log = get_logger(__name__)


def cluster_id(ca_pem: bytes | None, fallback: str) -> str:
    """What names a cluster in route tags (``ClusterNetworks.cluster_tag``): the hash of its CA's
    public key (the one a ``K10`` join token carries), the same for every server and agent of
    the cluster whichever apiserver they talk to; ``fallback`` (the API URL) without a CA."""
    if ca_pem:
        try:
            return servertoken.ca_hash(ca_pem)
        except ValueError:
            pass
    return fallback


class CIDRInUse(RuntimeError):
    """A CIDR this instance needs is already routed on the host by someone else."""


def _describe(r: dict) -> str:
    parts = [r.get("type", "unicast"), r.get("dst", "?")]
    if r.get("dev"):
        parts += ["dev", r["dev"]]
    if r.get("protocol"):
        parts += ["proto", str(r["protocol"])]
    if r.get("metric") is not None:
        parts += ["metric", str(r["metric"])]
    return " ".join(parts)


async def check_free(nets: A.ClusterNetworks, tag: int) -> None:
    """Raise ``CIDRInUse`` if the cluster or service CIDR overlaps a route that is not ours."""
    routes = await ip_json("route", "show", "table", "all")
    bad = A.route_conflicts(routes, [nets.cluster_cidr, nets.service_cidr], tag)
    if bad:
        raise CIDRInUse(
            f"the cluster CIDR {nets.cluster_cidr} or service CIDR {nets.service_cidr} is already routed on this "
            f"host by someone else ({'; '.join(_describe(r) for r in bad[:3])}); choose others with "
            f"--cluster-cidr/--service-cidr")


async def add_unreachable(nets: A.ClusterNetworks, tag: int, member: int) -> None:
    metric = str(A.route_metric(A.METRIC_UNREACHABLE, tag, member))
    for net in (nets.cluster_cidr, nets.service_cidr):
        await ip("route", "replace", "unreachable", str(net), "proto", str(A.ROUTE_PROTO), "metric", metric)


async def remove_unreachable(nets: A.ClusterNetworks, tag: int, member: int) -> None:
    metric = str(A.route_metric(A.METRIC_UNREACHABLE, tag, member))
    for net in (nets.cluster_cidr, nets.service_cidr):
        await ip("route", "del", "unreachable", str(net), "proto", str(A.ROUTE_PROTO), "metric", metric, check=False)


async def ours(nets: A.ClusterNetworks, tag: int) -> list[dict]:
    """Every route of this cluster on the host (for leftover checks and cleanup)."""
    out = []
    for r in await ip_json("route", "show", "table", "main"):
        dst = r.get("dst", "")
        if str(r.get("protocol")) != str(A.ROUTE_PROTO) or A.metric_tag(int(r.get("metric") or 0)) != tag:
            continue
        try:
            net = ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False)
        except ValueError:
            continue
        if net.overlaps(nets.cluster_cidr) or net.overlaps(nets.service_cidr):
            out.append(r)
    return out


async def routes_of_member(tag: int, member: int) -> list[dict]:
    out = []
    for r in await ip_json("route", "show", "table", "main"):
        m = int(r.get("metric") or 0)
        if str(r.get("protocol")) == str(A.ROUTE_PROTO) and A.metric_tag(m) == tag and (m & 0xFFF) == member:
            out.append(r)
    return out


async def delete_route(r: dict) -> None:
    args = ["route", "del"]
    if r.get("type") and r["type"] != "unicast":
        args.append(r["type"])
    args.append(r["dst"])
    if r.get("dev"):
        args += ["dev", r["dev"]]
    args += ["proto", str(A.ROUTE_PROTO), "metric", str(r.get("metric") or 0)]
    try:
        await ip(*args)
    except CommandError as e:
        log.debug("route already gone", route=_describe(r), error=str(e))


def pick_free(count: int = 2, supernet: str = A.PICK_SUPERNET, prefix: int = 16,
              exclude: tuple[str, ...] = ()) -> list[str]:
    """``count`` random /``prefix`` networks inside ``supernet`` that no host route overlaps
    (``up --pick-cidrs``, benchmarks, tests). Synchronous: call it before starting anything."""
    import json
    import random
    import subprocess

    out = subprocess.run(["ip", "-j", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    routed = []
    for r in json.loads(out or "[]"):
        dst = r.get("dst", "")
        if dst in ("", "default") or ":" in dst:
            continue
        try:
            routed.append(ipaddress.ip_network(dst if "/" in dst else dst + "/32", strict=False))
        except ValueError:
            continue
    taken = [ipaddress.ip_network(e) for e in exclude]
    free = [n for n in ipaddress.ip_network(supernet).subnets(new_prefix=prefix)
            if not any(n.overlaps(r) for r in routed + taken)]
    if len(free) < count:
        raise CIDRInUse(f"fewer than {count} free /{prefix} networks left in {supernet}")
    return [str(n) for n in random.SystemRandom().sample(free, count)]
