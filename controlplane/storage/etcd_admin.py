"""etcd's cluster and maintenance APIs, for ``controlplane up`` (joining servers) and
``controlplane etcd-snapshot``: member list/add/promote/remove, a member's status (who leads,
its raft index) and snapshots, over etcd's gRPC API (etcd3aio's Cluster and Maintenance
services) with the etcd CA's client certificate.

Not part of the storage ``Backend`` (the apiserver never manages membership): used by the
command layer only. k3s does the same through clientv3 (``pkg/etcd``): a joining server adds
itself as a *learner* (no vote, so an unstarted member never costs the cluster its quorum),
starts etcd with ``--initial-cluster-state existing`` and is promoted once its log caught up.

API (``tls``: ``(ca, cert, key)`` file paths or None; ``endpoint``: one client URL):
    await members(endpoints, tls) -> list[Member]
    await add_learner(endpoints, tls, peer_url) -> (Member, list[Member])
    await promote(endpoints, tls, member_id)             # EtcdAdminError while not in sync
    await remove(endpoints, tls, member_id)
    await status(endpoint, tls) -> MemberStatus          # leader id, member id, raft index, db size
    await leader(endpoints, tls) -> Member | None
    await save_snapshot(endpoint, tls, path) -> int      # bytes written (atomic rename)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

import grpc

from controlplane.storage.etcd_rpc import EtcdError

from etcd3aio.client import Etcd3Client  # noqa: E402 - imported (and sys.path restored) by etcd_rpc

TLS = tuple[str, str, str] | None


class EtcdAdminError(Exception):
    """A cluster or maintenance call failed (the member is unreachable, not in sync, ...)."""


@dataclass
class Member:
    id: int
    name: str
    peer_urls: list[str] = field(default_factory=list)
    client_urls: list[str] = field(default_factory=list)
    is_learner: bool = False

    @property
    def started(self) -> bool:
        """A member added but never started has no name and no client URLs yet."""
        return bool(self.name)

    def as_dict(self) -> dict[str, Any]:
        return {"id": f"{self.id:x}", "name": self.name, "peerURLs": self.peer_urls,
                "clientURLs": self.client_urls, "isLearner": self.is_learner}


@dataclass
class MemberStatus:
    member_id: int
    leader: int
    raft_index: int
    raft_term: int
    db_size: int
    is_learner: bool
    version: str


def _host_port(url: str) -> str:
    for scheme in ("https://", "http://"):
        if url.startswith(scheme):
            url = url[len(scheme):]
    return url.rstrip("/")


def _member(m: Any) -> Member:
    return Member(int(m.ID), m.name, list(m.peerURLs), list(m.clientURLs), bool(m.isLearner))


class _Client:
    """One etcd3aio client over ``endpoints`` for the length of a ``with`` block."""

    def __init__(self, endpoints: Sequence[str], tls: TLS, attempts: int = 1) -> None:
        kw: dict[str, Any] = {}
        if tls is not None:
            ca, cert, key = tls
            kw = {"ca_cert": Path(ca).read_bytes(), "cert_chain": Path(cert).read_bytes(),
                  "cert_key": Path(key).read_bytes(), "tls_server_name": "localhost"}
        self.client = Etcd3Client([_host_port(e) for e in endpoints], rpc_max_attempts=attempts, **kw)

    async def __aenter__(self) -> Etcd3Client:
        await self.client.connect()
        return self.client

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.close()


def _error(op: str, e: BaseException) -> EtcdAdminError:
    if isinstance(e, grpc.aio.AioRpcError):
        return EtcdAdminError(f"etcd {op}: {e.code().name}: {e.details()}")
    return EtcdAdminError(f"etcd {op}: {e}")


async def members(endpoints: Sequence[str], tls: TLS, timeout: float = 5.0) -> list[Member]:
    async with _Client(endpoints, tls, attempts=3) as c:
        try:
            resp = await c.cluster.member_list(timeout=timeout)
        except (grpc.aio.AioRpcError, EtcdError) as e:
            raise _error("member list", e) from e
    return [_member(m) for m in resp.members]


async def add_learner(endpoints: Sequence[str], tls: TLS, peer_url: str,
                      timeout: float = 10.0) -> tuple[Member, list[Member]]:
    """Add a learner with ``peer_url`` (the cluster keeps its quorum until it is promoted)."""
    async with _Client(endpoints, tls) as c:
        try:
            resp = await c.cluster.member_add([peer_url], is_learner=True, timeout=timeout)
        except (grpc.aio.AioRpcError, EtcdError) as e:
            raise _error("member add", e) from e
    return _member(resp.member), [_member(m) for m in resp.members]


async def promote(endpoints: Sequence[str], tls: TLS, member_id: int, timeout: float = 10.0) -> None:
    async with _Client(endpoints, tls) as c:
        try:
            await c.cluster.member_promote(member_id, timeout=timeout)
        except (grpc.aio.AioRpcError, EtcdError) as e:
            raise _error("member promote", e) from e


async def remove(endpoints: Sequence[str], tls: TLS, member_id: int, timeout: float = 10.0) -> None:
    async with _Client(endpoints, tls) as c:
        try:
            await c.cluster.member_remove(member_id, timeout=timeout)
        except (grpc.aio.AioRpcError, EtcdError) as e:
            raise _error("member remove", e) from e


async def status(endpoint: str, tls: TLS, timeout: float = 3.0) -> MemberStatus:
    """The status of the one member at ``endpoint``."""
    async with _Client([endpoint], tls) as c:
        try:
            r = await c.maintenance.status(timeout=timeout)
        except (grpc.aio.AioRpcError, EtcdError) as e:
            raise _error("status", e) from e
    return MemberStatus(int(r.header.member_id), int(r.leader), int(r.raftIndex), int(r.raftTerm), int(r.dbSize),
                        bool(getattr(r, "isLearner", False)), r.version)


async def leader(endpoints: Sequence[str], tls: TLS) -> Member | None:
    """The member leading now (asked of the first endpoint that answers), None without one."""
    for ep in endpoints:
        try:
            st = await status(ep, tls)
        except EtcdAdminError:
            continue
        if not st.leader:
            continue
        for m in await members([ep], tls):
            if m.id == st.leader:
                return m
    return None


async def _snapshot_chunks(c: Etcd3Client, timeout: float) -> AsyncIterator[bytes]:
    async for chunk in c.maintenance.snapshot(timeout=timeout):
        yield chunk


async def save_snapshot(endpoint: str, tls: TLS, path: Path, timeout: float = 300.0) -> int:
    """Stream etcd's snapshot of ``endpoint``'s backend into ``path`` (written to a temporary
    file beside it, fsynced and renamed: a crash never leaves a truncated snapshot)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    size = 0
    async with _Client([endpoint], tls) as c:
        try:
            with open(tmp, "wb") as f:
                async for chunk in _snapshot_chunks(c, timeout):
                    f.write(chunk)
                    size += len(chunk)
                f.flush()
                os.fsync(f.fileno())
        except (grpc.aio.AioRpcError, EtcdError) as e:
            tmp.unlink(missing_ok=True)
            raise _error("snapshot", e) from e
    os.replace(tmp, path)
    return size
