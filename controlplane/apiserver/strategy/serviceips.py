"""Service clusterIP and nodePort allocation, kept in etcd so restarts and concurrent writers
never hand out one address or port twice (kube-apiserver's ipallocator/portallocator).

Each allocation is one key (``/registry/core/serviceipallocations/<ip>``,
``…/servicenodeportallocations/<port>``) created with create-if-absent, its value the owning
Service (``namespace/name``): taking is atomic, and taking again for the same owner succeeds
(a retried read-modify-write) without counting as newly taken. Rules, with Kubernetes' messages:

- clusterIP: from the service CIDR (``--service-cidr``, 10.43.0.0/16 by default); a requested
  one must be inside it (``provided IP is not in the valid range``) and free (``provided IP is
  already allocated``); dynamic ones come from the upper part of the range first, the lower
  band (min(max(16, size/16), 256) addresses) staying for requested ones such as
  ``kubernetes`` (.1) and ``kube-dns`` (.10) — Kubernetes' ServiceIPStaticSubrange; immutable.
- nodePort (NodePort, and LoadBalancer unless ``allocateLoadBalancerNodePorts: false``, which
  still honours requested ones): in 30000-32767 (``provided port is not in the valid range``),
  free (``provided port is already allocated``); which port gets which is ``nodeports``
  (kube-apiserver's ``initNodePorts``/``updateNodePorts``: ports sharing a number, such as
  53/TCP and 53/UDP, share one node port, allocated once); kept across updates, released
  (once) when no port holds it any more or the type goes away.
- healthCheckNodePort (a LoadBalancer with ``externalTrafficPolicy: Local``): from the same
  range, requested or any free one (failures are InternalErrors, as ``allocHealthCheckNodePort``),
  kept while the policy stays Local (a change is refused), released when it goes.
- One write's allocations are an ``Allocation`` (kube-apiserver's allocator transaction): what
  it took is given back at once when the write is not stored (validation refused it, a
  conflict made it retry), what it drops is released only once it is stored. A dry run
  checks requested values and shows portallocator's placeholders (32769, 32770, …).
- ``repair_loop`` (the primary apiserver, at start and every 3 minutes, as Kubernetes' repair
  controllers): allocations no Service holds on two passes in a row are freed (an apiserver
  that stopped between allocating and writing), Services' allocations missing from storage
  are taken again.
Called by the Service strategy's hooks (``service.py``); one allocator per server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.apiserver.strategy import nodeports as npa
from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, object_key, resource_prefix,
)

NODE_PORT_RANGE = (30000, 32767)
REPAIR_INTERVAL = 180.0  # seconds between repair passes (kube-apiserver's 3 minutes)
DRY_RUN_FIRST_PORT = 32769  # portallocator's dry-run AllocateNext: a dummy past the range


def _owner(svc: dict[str, Any]) -> str:
    meta = svc.get("metadata") or {}
    return f'{meta.get("namespace")}/{meta.get("name")}'


def has_cluster_ip(spec: dict[str, Any]) -> bool:
    ip = spec.get("clusterIP")
    return (spec.get("type") or "ClusterIP") != "ExternalName" and ip != "None"


def needs_health_check(spec: dict[str, Any]) -> bool:
    """``apiservice.NeedsHealthCheck``: a LoadBalancer with ``externalTrafficPolicy: Local``
    gets a ``healthCheckNodePort`` (kube-proxy serves its health check there)."""
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def _spec_node_ports(spec: dict[str, Any]) -> set[int]:
    return {p["nodePort"] for p in spec.get("ports") or [] if isinstance(p, dict) and isinstance(p.get("nodePort"), int)}


def held_ports(spec: dict[str, Any]) -> set[int]:
    """The node ports a stored Service holds: its ports' and its health check's."""
    out = _spec_node_ports(spec)
    if isinstance(spec.get("healthCheckNodePort"), int) and spec["healthCheckNodePort"]:
        out.add(spec["healthCheckNodePort"])
    return out


class Allocation:
    """One write's allocations, kube-apiserver's allocator transaction: what it took (freed at
    once when the write is not stored: ``finish(False)``, e.g. validation refused it) and
    what it gives back once stored (``finish(True)``: ports a type change dropped, the cluster
    IP of a Service turned ExternalName)."""

    def __init__(self, allocator: "ServiceIPAllocator", owner: str) -> None:
        self.allocator = allocator
        self.owner = owner
        self.taken: list[str] = []  # keys this write created
        self.release: list[str] = []  # keys freed when it is stored
        self.dry_ports: list[int] = []  # a dry run's ports (checked, never taken)

    async def finish(self, stored: bool) -> None:
        keys = self.release if stored else self.taken
        self.taken, self.release = [], []
        for key in keys:
            await self.allocator._free(key, self.owner)


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

    async def _take(self, key: str, owner: str) -> str | None:
        """``"new"`` when this call took the allocation, ``"held"`` when ``owner`` holds it
        already, None when someone else does."""
        try:
            await self.backend.create(key, owner.encode())
            return "new"
        except KeyExistsError:
            cur = await self.backend.get(key)
            return "held" if cur is not None and cur.value.decode(errors="replace") == owner else None

    async def _available(self, key: str, owner: str) -> bool:
        cur = await self.backend.get(key)
        return cur is None or cur.value.decode(errors="replace") == owner

    async def _claim(self, key: str, txn: Allocation, *, dry: bool) -> bool:
        """Take ``key`` for the write (a dry run only checks it is free)."""
        if dry:
            return await self._available(key, txn.owner)
        got = await self._take(key, txn.owner)
        if got == "new":
            txn.taken.append(key)
        return got is not None

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
    async def _cluster_ip(self, svc: dict[str, Any], txn: Allocation, *, dry: bool) -> None:
        spec = svc.setdefault("spec", {})
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
            if not await self._claim(self._key(requested), txn, dry=dry):
                raise self._ips_invalid(svc, requested, "provided IP is already allocated")
        else:
            requested = str(self.net.network_address + self.static_band + 1) if dry else await self._random_ip(txn)
            spec["clusterIP"] = requested
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")

    async def _random_ip(self, txn: Allocation) -> str:
        size = self.net.num_addresses
        bands = [(max(2, self.static_band), size - 1), (2, max(2, self.static_band))]
        for lo, hi in bands:
            if hi <= lo:
                continue
            for _ in range(64):
                ip = str(self.net.network_address + self._rand.randrange(lo, hi))
                if await self._take(self._key(ip), txn.owner) == "new":
                    txn.taken.append(self._key(ip))
                    return ip
        raise errors.ApiError(500, "InternalError", f"failed to allocate a service IP: range {self.net} is full")

    # -- node ports -------------------------------------------------------------------------------
    async def _claim_port(self, port: int, txn: Allocation, *, dry: bool) -> bool:
        """``Allocate(port)`` in the write's operation: a port it took already is taken."""
        if dry:
            if port in txn.dry_ports:
                return False
            txn.dry_ports.append(port)
        elif self._port_key(port) in txn.taken:
            return False
        return await self._claim(self._port_key(port), txn, dry=dry)

    def _port_op(self, svc: dict[str, Any], txn: Allocation, *, dry: bool) -> tuple[npa.Claim, npa.Next]:
        """``nodeports``' ``Allocate`` (Kubernetes' messages) and ``AllocateNext`` on ``txn``."""
        lo, hi = NODE_PORT_RANGE

        async def claim(port: Any) -> str | None:
            if not isinstance(port, int) or isinstance(port, bool) or not lo <= port <= hi:
                return f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
            if not await self._claim_port(port, txn, dry=dry):
                return "provided port is already allocated"
            return None

        async def next_port() -> int:
            return await self._next_port(txn, dry=dry)
        return claim, next_port

    async def _next_port(self, txn: Allocation, *, dry: bool) -> int:
        if dry:  # portallocator's dry run: one past the highest this operation saw, not looked up
            port = max(txn.dry_ports) + 1 if txn.dry_ports else DRY_RUN_FIRST_PORT
            txn.dry_ports.append(port)
            return port
        lo, hi = NODE_PORT_RANGE
        for _ in range(128):
            port = self._rand.randint(lo, hi)
            if await self._take(self._port_key(port), txn.owner) == "new":
                txn.taken.append(self._port_key(port))
                return port
        raise errors.ApiError(500, "InternalError", "failed to allocate a node port: range is full")

    async def _node_ports(self, svc: dict[str, Any], old_spec: dict[str, Any] | None, txn: Allocation, *,
                          dry: bool) -> None:
        """A create's (``old_spec`` None) or an update's node ports (``nodeports``)."""
        spec = svc.get("spec") or {}
        claim, next_port = self._port_op(svc, txn, dry=dry)
        try:
            if old_spec is None:
                await npa.init_node_ports(spec, claim, next_port)
            else:
                npa.patch_allocated_node_ports(old_spec, spec)
                await npa.update_node_ports(old_spec, spec, claim, next_port)
        except npa.NodePortInvalid as e:
            raise self._invalid(svc, e.field, e.value, e.message) from None
        except npa.DuplicateNodePort as e:
            raise errors.internal(str(e)) from None

    async def _health_check_port(self, svc: dict[str, Any], txn: Allocation, *, dry: bool) -> None:
        """``allocHealthCheckNodePort``: the requested ``healthCheckNodePort`` or any free one
        (its failures are kube-apiserver's InternalErrors, not field errors)."""
        spec = svc["spec"]
        want = spec.get("healthCheckNodePort")
        if not want:
            spec["healthCheckNodePort"] = await self._next_port(txn, dry=dry)
            return
        lo, hi = NODE_PORT_RANGE
        why = None
        if not isinstance(want, int) or not lo <= want <= hi:
            why = f"provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
        elif want in _spec_node_ports(spec) or not await self._claim_port(want, txn, dry=dry):
            why = "provided port is already allocated"
        if why:
            raise errors.internal(f"failed to allocate requested HealthCheck NodePort {want}: {why}")

    # -- the strategy's entry points ----------------------------------------------------------------
    async def allocate(self, svc: dict[str, Any], *, dry: bool) -> Allocation:
        """A create's cluster IP, node ports and health check port; ``finish(False)`` on the
        returned allocation gives back what it took when the create is not stored."""
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        txn = Allocation(self, _owner(svc))
        try:
            if has_cluster_ip(spec):
                await self._cluster_ip(svc, txn, dry=dry)
            if npa.needs_node_port(spec):
                await self._node_ports(svc, None, txn, dry=dry)
            if needs_health_check(spec):
                await self._health_check_port(svc, txn, dry=dry)
        except BaseException:
            await txn.finish(False)
            raise
        return txn

    async def update(self, old: dict[str, Any], new: dict[str, Any], *, dry: bool) -> Allocation:
        """kube-apiserver's ``allocateUpdate``: allocated values the update omits are kept
        (``patchAllocatedValues``); a changed cluster IP is left for validation to refuse; node
        ports and the health check port are taken for new ports, a NodePort/LoadBalancer type
        or ``externalTrafficPolicy: Local``. What the update gives back is released only once
        it is stored, what it took at once if it is not (``Allocation.finish``)."""
        txn = Allocation(self, _owner(old))
        try:
            await self._update(old, new, txn, dry=dry)
        except BaseException:
            await txn.finish(False)
            raise
        return txn

    async def _update(self, old: dict[str, Any], new: dict[str, Any], txn: Allocation, *, dry: bool) -> None:
        old_spec, new_spec = old.get("spec") or {}, new.setdefault("spec", {})
        new_spec.setdefault("type", old_spec.get("type") or "ClusterIP")
        old_needs_ip = (old_spec.get("type") or "ClusterIP") != "ExternalName"
        new_needs_ip = new_spec["type"] != "ExternalName"
        old_ip = old_spec.get("clusterIP") if old_needs_ip else None
        if old_ip and new_needs_ip:
            if not new_spec.get("clusterIP"):
                new_spec["clusterIP"] = old_ip
            if not new_spec.get("clusterIPs") and old_spec.get("clusterIPs"):
                new_spec["clusterIPs"] = old_spec["clusterIPs"]
            if new_spec["clusterIP"] != old_ip and new_spec.get("clusterIPs") == old_spec.get("clusterIPs"):
                new_spec["clusterIPs"] = [new_spec["clusterIP"]]  # normalizeClusterIPs: the singular changed
        elif new_needs_ip and has_cluster_ip(new_spec):  # from ExternalName: a new address
            await self._cluster_ip(new, txn, dry=dry)
        elif not new_needs_ip:
            new_spec.pop("clusterIP", None)
            new_spec.pop("clusterIPs", None)
        old_ports = set(npa.port_node_ports(old_spec))
        if npa.needs_node_port(new_spec):
            await self._node_ports(new, old_spec, txn, dry=dry)
        elif old_ports and npa.needs_node_port(old_spec) and set(npa.port_node_ports(new_spec)) <= old_ports:
            for p in new_spec.get("ports") or []:  # dropTypeDependentFields: the type has none now
                if isinstance(p, dict):
                    p.pop("nodePort", None)  # (others the update sets are validation's to refuse)
        if needs_health_check(old_spec) and needs_health_check(new_spec):
            if not new_spec.get("healthCheckNodePort"):
                new_spec["healthCheckNodePort"] = old_spec.get("healthCheckNodePort")
            elif new_spec["healthCheckNodePort"] != old_spec.get("healthCheckNodePort"):
                raise self._invalid(new, "spec.healthCheckNodePort", new_spec["healthCheckNodePort"],
                                    "cannot change healthCheckNodePort on loadBalancer service with "
                                    "externalTraffic=Local during update")
        elif needs_health_check(new_spec):
            await self._health_check_port(new, txn, dry=dry)
        if dry:
            return
        if old_ip and old_ip != "None" and not new_needs_ip:
            txn.release.append(self._key(old_ip))
        kept = (set(npa.port_node_ports(new_spec)) if npa.needs_node_port(new_spec) else set()) \
            | ({new_spec["healthCheckNodePort"]} if needs_health_check(new_spec) else set())
        old_held = old_ports | ({old_spec["healthCheckNodePort"]}
                                              if isinstance(old_spec.get("healthCheckNodePort"), int) else set())
        txn.release += [self._port_key(int(port)) for port in sorted(old_held - kept) if port]

    async def release(self, svc: dict[str, Any]) -> None:
        spec = svc.get("spec") or {}
        owner = _owner(svc)
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            await self._free(self._key(ip), owner)
        for port in held_ports(spec):
            await self._free(self._port_key(port), owner)

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
            for port in held_ports(spec):
                held[self._port_key(port)] = owner
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
