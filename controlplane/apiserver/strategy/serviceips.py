"""Service clusterIP (and nodePort) allocation, kept in etcd so restarts and concurrent
writers never hand out one address twice.

Each allocated IP is one key ``/registry/core/serviceipallocations/<ip>`` created with
create-if-absent (etcd's compare on create_revision): taking a free address is atomic.
Called by the Service strategy's hooks (``service.py``) on create, update and delete; nothing
else writes those keys. One allocator per server (``server.app.ApiServer.service_ips``).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from controlplane.apiserver.meta import errors
from controlplane.storage.interface import Backend, KeyExistsError, KeyNotFoundError, object_key

NODE_PORT_RANGE = (30000, 32767)


class ServiceIPAllocator:
    def __init__(self, backend: Backend, cidr: str) -> None:
        self.backend = backend
        self.net = ipaddress.ip_network(cidr)
        self._rand = random.Random()

    def _key(self, ip: str) -> str:
        return object_key("core", "serviceipallocations", None, ip)

    def _port_key(self, port: int) -> str:
        return object_key("core", "servicenodeportallocations", None, str(port))

    async def _take(self, key: str, owner: str) -> bool:
        try:
            await self.backend.create(key, owner.encode())
            return True
        except KeyExistsError:
            return False

    async def allocate(self, svc: dict[str, Any], *, dry: bool) -> None:
        spec = svc.setdefault("spec", {})
        meta = svc["metadata"]
        owner = f'{meta.get("namespace")}/{meta.get("name")}'
        svc_type = spec.setdefault("type", "ClusterIP")
        requested = spec.get("clusterIP")
        if requested == "None" or svc_type == "ExternalName":
            return
        if requested:
            try:
                ip = ipaddress.ip_address(requested)
            except ValueError:
                raise self._invalid(svc, "spec.clusterIP", requested, "must be a valid IP address") from None
            if ip not in self.net:
                raise self._invalid(svc, "spec.clusterIP", requested, f"provided IP is not in the valid range. The range of valid IPs is {self.net}")
            if not dry and not await self._take(self._key(requested), owner):
                raise self._invalid(svc, "spec.clusterIP", requested, "provided IP is already allocated")
        else:
            if dry:
                requested = str(self.net.network_address + 1)
            else:
                requested = await self._random_ip(owner)
            spec["clusterIP"] = requested
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if svc_type in ("NodePort", "LoadBalancer"):
            for port in spec.get("ports") or []:
                if not port.get("nodePort") and not dry:
                    port["nodePort"] = await self._random_port(owner)

    async def _random_ip(self, owner: str) -> str:
        size = self.net.num_addresses
        for _ in range(64):
            offset = self._rand.randrange(2, size - 1)
            ip = str(self.net.network_address + offset)
            if await self._take(self._key(ip), owner):
                return ip
        raise errors.ApiError(500, "InternalError", "failed to allocate a service IP: range is full")

    async def _random_port(self, owner: str) -> int:
        lo, hi = NODE_PORT_RANGE
        for _ in range(64):
            port = self._rand.randint(lo, hi)
            if await self._take(self._port_key(port), owner):
                return port
        raise errors.ApiError(500, "InternalError", "failed to allocate a node port")

    async def release(self, svc: dict[str, Any]) -> None:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            try:
                await self.backend.delete(self._key(ip))
            except KeyNotFoundError:
                pass
        for port in spec.get("ports") or []:
            if port.get("nodePort"):
                try:
                    await self.backend.delete(self._port_key(int(port["nodePort"])))
                except KeyNotFoundError:
                    pass

    def keep_immutable(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """clusterIP is immutable; an update that omits it keeps the allocated one."""
        old_spec, new_spec = old.get("spec") or {}, new.setdefault("spec", {})
        old_ip = old_spec.get("clusterIP")
        if old_ip and not new_spec.get("clusterIP"):
            new_spec["clusterIP"] = old_ip
            new_spec["clusterIPs"] = old_spec.get("clusterIPs") or [old_ip]
        elif old_ip and new_spec.get("clusterIP") != old_ip:
            raise self._invalid(new, "spec.clusterIP", new_spec.get("clusterIP"), "field is immutable")
        old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []}
        for p in new_spec.get("ports") or []:
            np = old_ports.get((p.get("port"), p.get("protocol", "TCP")))
            if np and not p.get("nodePort"):
                p["nodePort"] = np

    @staticmethod
    def _invalid(svc: dict[str, Any], field: str, value: Any, msg: str) -> errors.ApiError:
        return errors.invalid("Service", svc["metadata"].get("name", ""), [
            {"reason": "FieldValueInvalid", "field": field, "message": f'Invalid value: "{value}": {msg}'}])
