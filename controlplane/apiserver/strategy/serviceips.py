"""Service clusterIP and nodePort allocation, kept in etcd so restarts and concurrent writers
never hand out one address or port twice (kube-apiserver's ipallocator/portallocator).

Each allocation is one key (``/registry/core/serviceipallocations/<ip>``,
``…/servicenodeportallocations/<port>``) created with create-if-absent, its value the owning
Service (``namespace/name``): taking is atomic, and taking again for the same owner succeeds
(a retried read-modify-write). Rules, with Kubernetes' messages:

- clusterIP: from the service CIDR (``--service-cidr``, 10.43.0.0/16 by default); a requested
  one must be inside it (``provided IP is not in the valid range``) and free (``provided IP is
  already allocated``); dynamic ones come from the upper part of the range first, the lower
  band (min(max(16, size/16), 256) addresses) staying for requested ones such as
  ``kubernetes`` (.1) and ``kube-dns`` (.10) — Kubernetes' ServiceIPStaticSubrange; immutable.
- nodePort (NodePort, and LoadBalancer unless ``allocateLoadBalancerNodePorts: false``): in
  30000-32767 (``provided port is not in the valid range``), free (``provided port is already
  allocated``); kept across updates, released when a port or the type goes away.
- ``repair_loop`` (the primary apiserver, at start and every 3 minutes, as Kubernetes' repair
  controllers): allocations no Service holds on two passes in a row are freed (an update that
  failed after allocating), Services' allocations missing from storage are taken again.
Called by the Service strategy's hooks (``service.py``); one allocator per server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, object_key, resource_prefix,
)

NODE_PORT_RANGE = (30000, 32767)
REPAIR_INTERVAL = 180.0  # seconds between repair passes (kube-apiserver's 3 minutes)
_NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _owner(svc: dict[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return f'{meta.get("namespace")}/{meta.get("name")}'


def wants_node_ports(spec: dict[str, Any]) -> bool:
    t = spec.get("type") or "ClusterIP"
    if t == "NodePort":
        return True
    return t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False


def has_cluster_ip(spec: dict[str, Any]) -> bool:
    ip = spec.get("clusterIP")
    return (spec.get("type") or "ClusterIP") != "ExternalName" and ip != "None"


class ServiceIPAllocator:
    def __init__(self, backend: Backend, cidr: str) -> None:
        self.backend = backend
        self.net = ipaddress.ip_network(cidr)
        size = self.net.num_addresses
        self.static_band = min(max(16, size // 16), 256) if size > 16 else 0
        self._rand = random.Random()
        self._leaked: dict[str, int] = {}  # allocations the last repair found unheld (key -> revision)

    def _key(self, ip: str) -> str:
        return object_key("core", "serviceipallocations", None, ip)

    def _port_key(self, port: int) -> str:
        return object_key("core", "servicenodeportallocations", None, str(port))

    async def _take(self, key: str, owner: str) -> bool:
        try:
            await self.backend.create(key, owner.encode())
            return True
        except KeyExistsError:
            cur = await self.backend.get(key)
            return cur is not None and cur.value.decode(errors="replace") == owner

    async def _free(self, key: str, owner: str | None = None) -> None:
        try:
            if owner is not None:
                cur = await self.backend.get(key)
                if cur is None or cur.value.decode(errors="replace") != owner:
                    return
            await self.backend.delete(key)
        except KeyNotFoundError:
            pass

    # -- cluster IPs ------------------------------------------------------------------------------
    async def _cluster_ip(self, svc: dict[str, Any], *, dry: bool) -> None:
        spec = svc.setdefault("spec", {})
        owner = _owner(svc)
        requested = spec.get("clusterIP")
        if requested:
            try:
                ip = ipaddress.ip_address(requested)
            except ValueError:
                raise self._invalid(svc, "spec.clusterIPs[0]", requested,
                                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)") from None
            if ip not in self.net:
                raise self._ips_invalid(svc, requested, f"the provided IP ({requested}) is not in the valid range. "
                                        f"The range of valid IPs is {self.net}")
            if not dry and not await self._take(self._key(requested), owner):
                raise self._ips_invalid(svc, requested, "provided IP is already allocated")
        else:
            requested = str(self.net.network_address + self.static_band + 1) if dry else await self._random_ip(owner)
            spec["clusterIP"] = requested
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    async def _random_ip(self, owner: str) -> str:
        size = self.net.num_addresses
        bands = [(max(2, self.static_band), size - 1), (2, max(2, self.static_band))]
        for lo, hi in bands:
            if hi <= lo:
                continue
            for _ in range(64):
                ip = str(self.net.network_address + self._rand.randrange(lo, hi))
                if await self._take(self._key(ip), owner):
                    return ip
        raise errors.ApiError(500, "InternalError", f"failed to allocate a service IP: range {self.net} is full")

    # -- node ports -------------------------------------------------------------------------------
    async def _node_ports(self, svc: dict[str, Any], keep: dict[tuple[Any, str], int], *, dry: bool) -> list[int]:
        """Take the node ports ``svc`` asks for (or keeps); returns those newly taken."""
        spec = svc.get("spec") or {}
        owner = _owner(svc)
        taken: list[int] = []
        lo, hi = NODE_PORT_RANGE
        for i, p in enumerate(spec.get("ports") or []):
            if not isinstance(p, dict):
                continue
            want = p.get("nodePort")
            kept = keep.get((p.get("port"), p.get("protocol", "TCP")))
            if want:
                if not isinstance(want, int) or not lo <= want <= hi:
                    raise self._invalid(svc, f"spec.ports[{i}].nodePort", want,
                                        f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}")
                if want == kept or dry:
                    continue
                if not await self._take(self._port_key(want), owner):
                    raise self._invalid(svc, f"spec.ports[{i}].nodePort", want, "provided port is already allocated")
                taken.append(want)
            elif kept:
                p["nodePort"] = kept
            elif not dry:
                p["nodePort"] = await self._random_port(owner)
                taken.append(p["nodePort"])
        return taken

    async def _random_port(self, owner: str) -> int:
        lo, hi = NODE_PORT_RANGE
        for _ in range(128):
            port = self._rand.randint(lo, hi)
            if await self._take(self._port_key(port), owner):
                return port
        raise errors.ApiError(500, "InternalError", "failed to allocate a node port: range is full")

    # -- the strategy's entry points ----------------------------------------------------------------
    async def allocate(self, svc: dict[str, Any], *, dry: bool) -> None:
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if has_cluster_ip(spec):
            await self._cluster_ip(svc, dry=dry)
        if wants_node_ports(spec):
            try:
                await self._node_ports(svc, {}, dry=dry)
            except errors.ApiError:
                if not dry:
                    await self.release(svc)  # the clusterIP and any port taken so far
                raise

    async def update(self, old: dict[str, Any], new: dict[str, Any], *, dry: bool) -> None:
        """clusterIP is immutable (an update that omits it keeps it); node ports are kept,
        taken for new ports or a new NodePort/LoadBalancer type, released when they go."""
        old_spec, new_spec = old.get("spec") or {}, new.setdefault("spec", {})
        new_spec.setdefault("type", old_spec.get("type") or "ClusterIP")
        old_ip = old_spec.get("clusterIP") if has_cluster_ip(old_spec) else None
        if not has_cluster_ip(new_spec):
            if old_ip and new_spec.get("type") == "ExternalName":
                if not dry:
                    await self._free(self._key(old_ip), _owner(old))
                new_spec.pop("clusterIP", None)
                new_spec.pop("clusterIPs", None)
        elif old_ip:
            if not new_spec.get("clusterIP"):
                new_spec["clusterIP"] = old_ip
                new_spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
            elif new_spec.get("clusterIP") != old_ip:
                raise errors.invalid("Service", (new.get("metadata") or {}).get("name", ""), [
                    {"reason": "FieldValueInvalid", "field": "spec.clusterIPs[0]",
                     "message": f'Invalid value: []string{{"{new_spec.get("clusterIP")}"}}: may not change once set'}])
        else:  # ExternalName (or headless) -> ClusterIP: a new address
            await self._cluster_ip(new, dry=dry)
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p["nodePort"]
                     for p in old_spec.get("ports") or [] if isinstance(p, dict) and p.get("nodePort")}
        if wants_node_ports(new_spec):
            await self._node_ports(new, old_ports if wants_node_ports(old_spec) else {}, dry=dry)
        elif old_ports and (old_spec.get("type") or "ClusterIP") in _NODE_PORT_TYPES:
            for p in new_spec.get("ports") or []:  # the type no longer has node ports: drop them
                if isinstance(p, dict):
                    p.pop("nodePort", None)
        kept = {p.get("nodePort") for p in new_spec.get("ports") or [] if isinstance(p, dict)} \
            if wants_node_ports(new_spec) else set()
        if not dry:
            for port in set(old_ports.values()) - kept:
                await self._free(self._port_key(int(port)), _owner(old))

    async def release(self, svc: dict[str, Any]) -> None:
        spec = svc.get("spec") or {}
        owner = _owner(svc)
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            await self._free(self._key(ip), owner)
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and port.get("nodePort"):
                await self._free(self._port_key(int(port["nodePort"])), owner)

    async def repair(self) -> tuple[int, int]:
        """One pass of Kubernetes' repair controllers (``ipallocator/controller/repair.go``,
        ``portallocator/controller/repair.go``): an allocation a stored Service holds but whose
        key is missing (a restored etcd) is taken again for it; an allocation no Service holds
        is freed only when the previous pass found it leaked too (unchanged), so a create that
        allocated but has not written its Service yet is never robbed. Returns (restored, freed)."""
        held: dict[str, str] = {}
        for kv in (await self.backend.list(resource_prefix("core", "services"))).items:
            try:
                svc = json.loads(kv.value)
            except ValueError:
                continue
            spec, owner = svc.get("spec") or {}, _owner(svc)
            ip = spec.get("clusterIP")
            if ip and ip != "None":
                try:
                    if ipaddress.ip_address(ip) in self.net:
                        held[self._key(ip)] = owner
                except ValueError:
                    pass
            for p in spec.get("ports") or []:
                if isinstance(p, dict) and isinstance(p.get("nodePort"), int):
                    held[self._port_key(p["nodePort"])] = owner
        present: dict[str, int] = {}
        for resource in ("serviceipallocations", "servicenodeportallocations"):
            for kv in (await self.backend.list(resource_prefix("core", resource))).items:
                present[kv.key] = kv.mod_revision
        restored = freed = 0
        for key, owner in held.items():
            if key not in present:
                try:
                    await self.backend.create(key, owner.encode())
                    restored += 1
                except KeyExistsError:
                    pass
        suspects = {k: rev for k, rev in present.items() if k not in held}
        for key, rev in suspects.items():
            if self._leaked.get(key) == rev:
                try:
                    await self.backend.delete(key, expected_mod_revision=rev)
                    freed += 1
                except (KeyNotFoundError, ConflictError):
                    pass  # taken again meanwhile
        self._leaked = {k: rev for k, rev in suspects.items() if self._leaked.get(k) != rev}
        return restored, freed

    async def repair_loop(self, stop: asyncio.Event, interval: float = REPAIR_INTERVAL) -> None:
        """``repair`` at start and every ``interval`` seconds (the primary apiserver runs it)."""
        from controlplane.log import get_logger

        log = get_logger(__name__)
        while not stop.is_set():
            try:
                restored, freed = await self.repair()
                if restored or freed:
                    log.info("service allocations repaired", restored=restored, freed=freed)
            except Exception as e:  # noqa: BLE001 - storage trouble: next pass
                log.warning("service allocation repair failed", error=str(e))
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass

    @staticmethod
    def _ips_invalid(svc: dict[str, Any], ip: str, msg: str) -> errors.ApiError:
        """Kubernetes 1.32's wording for a cluster IP it cannot allocate."""
        return errors.invalid("Service", (svc.get("metadata") or {}).get("name", ""), [
            {"reason": "FieldValueInvalid", "field": "spec.clusterIPs",
             "message": f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: {msg}'}])

    @staticmethod
    def _invalid(svc: dict[str, Any], field: str, value: Any, msg: str) -> errors.ApiError:
        rendered = f'"{value}"' if isinstance(value, str) else str(value)
        return errors.invalid("Service", (svc.get("metadata") or {}).get("name", ""), [
            {"reason": "FieldValueInvalid", "field": field, "message": f"Invalid value: {rendered}: {msg}"}])
