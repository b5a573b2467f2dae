"""Pod networking: one network namespace per pod, joined to a per-node bridge by a veth pair.

Each node gets its own namespace ``cpn-<hash>`` holding a bridge ``br0`` with the gateway
address of the node's pod subnet; each pod namespace ``cpp-<hash>`` gets ``lo`` up and an
``eth0`` on that subnet (the pod IP). Only namespaces we create carry addresses, never the
host's. ``socket_in_netns`` opens a socket inside a pod namespace (probes, port checks).
Neighbours: ``runc.py`` (sandbox create/remove), the agent's prober.
"""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import ipaddress
import json
import os
import socket
import threading
from pathlib import Path

from controlplane import hostcleanup
from controlplane.log import get_logger

log = get_logger(__name__)
NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def _h(s: str, n: int = 10) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:n]


async def ip(*args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        "ip", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    if check and proc.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {err.decode().strip()}")
    return out.decode()


def default_subnet(node: str) -> ipaddress.IPv4Network:
    """A /24 under 10.200.0.0/13 derived from the node name (when no podCIDR is given)."""
    n = int(_h(node, 8), 16) % 2048
    return ipaddress.ip_network(f"10.{200 + n // 256}.{n % 256}.0/24")


class PodNetwork:
    """The node bridge namespace plus IP allocation for the pods of one node."""

    def __init__(self, node: str, subnet: str | None = None) -> None:
        self.node = node
        self.subnet = ipaddress.ip_network(subnet) if subnet else default_subnet(node)
        self.node_ns = f"cpn-{_h(node)}"
        self.gateway = str(next(self.subnet.hosts()))
        self._used: dict[str, str] = {}
        self._lock = asyncio.Lock()
        self._ready = False

    async def setup(self) -> None:
        async with self._lock:
            if self._ready:
                return
            if not (NETNS_DIR / self.node_ns).exists():
                await ip("netns", "add", self.node_ns)
            await ip("-n", self.node_ns, "link", "set", "lo", "up")
            if "br0" not in await ip("-n", self.node_ns, "-o", "link", "show", check=False):
                await ip("-n", self.node_ns, "link", "add", "br0", "type", "bridge")
                await ip("-n", self.node_ns, "addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", "br0")
            await ip("-n", self.node_ns, "link", "set", "br0", "up")
            self._ready = True

    def _allocate(self, uid: str) -> str:
        for host in list(self.subnet.hosts())[1:]:
            a = str(host)
            if a not in self._used.values():
                self._used[uid] = a
                return a
        raise OSError(f"pod subnet {self.subnet} exhausted")

    async def add_pod(self, uid: str) -> tuple[str, str]:
        """Create the pod namespace; returns (netns path, pod IP)."""
        await self.setup()
        ns = f"cpp-{_h(uid)}"
        veth = f"v{_h(uid, 12)}"
        async with self._lock:
            addr = self._used.get(uid) or self._allocate(uid)
        if (NETNS_DIR / ns).exists():
            await self.remove_pod(uid, release=False)
        await ip("netns", "add", ns)
        try:
            await ip("-n", ns, "link", "set", "lo", "up")
            await ip("-n", self.node_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            await ip("-n", self.node_ns, "link", "set", veth, "master", "br0", "up")
            await ip("-n", ns, "addr", "add", f"{addr}/{self.subnet.prefixlen}", "dev", "eth0")
            await ip("-n", ns, "link", "set", "eth0", "up")
            await ip("-n", ns, "route", "add", "default", "via", self.gateway)
        except OSError:
            await self.remove_pod(uid)
            raise
        return str(NETNS_DIR / ns), addr

    def adopt(self, uid: str, addr: str | None) -> None:
        """Keep the address of a pod re-adopted after an agent restart allocated."""
        if addr:
            self._used[uid] = addr

    async def remove_pod(self, uid: str, release: bool = True) -> None:
        ns = f"cpp-{_h(uid)}"
        if (NETNS_DIR / ns).exists():
            await ip("netns", "del", ns, check=False)  # deleting the ns removes its veth end
        await ip("-n", self.node_ns, "link", "del", f"v{_h(uid, 12)}", check=False)
        if release:
            self._used.pop(uid, None)

    async def teardown(self) -> None:
        if (NETNS_DIR / self.node_ns).exists():
            await ip("netns", "del", self.node_ns, check=False)
        self._ready = False


def socket_in_netns(netns_path: str, family: int = socket.AF_INET, type_: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket created inside ``netns_path`` (setns on this thread, then back). Blocking-free:
    call it via ``asyncio.to_thread``; the socket stays in that namespace wherever it is used."""
    with _setns_lock:
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        target = os.open(netns_path, os.O_RDONLY)
        try:
            if _libc.setns(target, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {netns_path}")
            try:
                return socket.socket(family, type_)
            finally:
                if _libc.setns(own, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back")
        finally:
            os.close(own)
            os.close(target)


def _instance_namespaces(inst: hostcleanup.Instance) -> list[str]:
    """The node namespace of the instance and the pod namespaces its sandboxes recorded."""
    names = [PodNetwork(inst.host_id).node_ns]
    for sb in (inst.runtime_root / "pods").glob("*/sandbox.json"):
        try:
            names.append(Path(json.loads(sb.read_text())["netns"]).name)
        except (OSError, ValueError, KeyError):
            continue
    return names


async def _down_remove(inst: hostcleanup.Instance) -> None:
    for ns in _instance_namespaces(inst):
        if (NETNS_DIR / ns).exists():
            await ip("netns", "del", ns, check=False)


hostcleanup.register("netns", _down_remove,
                     lambda inst: [f"netns {ns}" for ns in _instance_namespaces(inst) if (NETNS_DIR / ns).exists()],
                     order=30)
