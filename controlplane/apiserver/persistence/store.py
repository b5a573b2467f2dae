"""Typed CRUD of API objects over the storage ``Backend``, with Kubernetes' error mapping.

``ObjectStore`` reads and writes objects by ``ResourceInfo`` (key layout and stored form in
``codec.py``): create (409 AlreadyExists), compare-and-set update and delete (``ConflictError``
for the caller to retry, 404), and ``guaranteed_update``, the read-modify-write loop
(kube-apiserver's GuaranteedUpdate) that may start from the watch cache's copy. Every write
goes through ``group_commit.GroupCommitter``. Neighbours: ``storage.interface`` below, the
endpoints (through the strategies' write paths) above, ``watchcache`` beside.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import loads
from controlplane.apiserver.persistence.codec import decode, encode, object_key
from controlplane.apiserver.persistence.group_commit import GroupCommitter, write_one
from controlplane.apiserver.persistence.leases import LeaseManager
from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, WriteOp,
)

MAX_CAS_RETRIES = 16

Mutator = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]
# A hint for the current stored version (raw JSON with resourceVersion, rv): the watch cache's copy.
Suggestion = Callable[[], tuple[bytes, int] | None]


# etcd's default --max-request-bytes: kube-apiserver passes etcd's "request is too large" on as
# a 500 without a reason. Checked here, before a write joins a group-committed transaction
# (one oversized write must not fail the others batched with it); the overhead approximates
# the framing of the raft proposal around key and value.
MAX_REQUEST_BYTES = 1536 * 1024
REQUEST_OVERHEAD = 64


def check_request_size(key: str, value: bytes) -> None:
    if len(key) + len(value) + REQUEST_OVERHEAD > MAX_REQUEST_BYTES:
        raise errors.ApiError(500, "", "etcdserver: request is too large")


class ObjectStore:
    """Typed CRUD over the Backend with Kubernetes' error mapping."""

    def __init__(self, backend: Backend, *, group_commit: bool = True,
                 stale: Callable[[str], bool] | None = None) -> None:
        """``stale(key)``: whether the stored value was written with an old encryption key
        (``encryption.backend.EncryptingBackend.is_stale``), so an unchanged update still writes."""
        self.backend = backend
        self.committer = GroupCommitter(backend) if group_commit else None
        self.leases = LeaseManager(backend)
        self._stale = stale

    async def _lease(self, info: ResourceInfo) -> int:
        """The lease a write of ``info`` attaches to: its strategy's time to live (0: none)."""
        ttl = getattr(info.strategy, "ttl_seconds", None)
        return await self.leases.lease_for(int(ttl)) if ttl else 0

    def is_stale(self, info: ResourceInfo, namespace: str | None, name: str) -> bool:
        return self._stale is not None and self._stale(object_key(info, namespace, name))

    async def close(self) -> None:
        if self.committer is not None:
            await self.committer.close()

    async def _write(self, op: WriteOp) -> KeyValue:
        if op.value is not None:
            check_request_size(op.key, op.value)
        if self.committer is not None:
            return await self.committer.submit(op)
        return await write_one(self.backend, op)

    async def get(self, info: ResourceInfo, namespace: str | None, name: str) -> tuple[dict[str, Any], KeyValue]:
        kv = await self.backend.get(object_key(info, namespace, name))
        if kv is None:
            raise errors.not_found(info.plural, name, info.group)
        return decode(kv), kv

    async def get_or_none(self, info: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any] | None:
        kv = await self.backend.get(object_key(info, namespace, name))
        return decode(kv) if kv is not None else None

    async def create(self, info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace"), meta["name"])
        try:
            kv = await self._write(WriteOp("create", key, encode(obj), lease=await self._lease(info)))
        except KeyExistsError:
            raise errors.already_exists(info.plural, meta["name"], info.group) from None
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def update(self, info: ResourceInfo, obj: dict[str, Any], expected_rv: int) -> dict[str, Any]:
        """CAS write; ConflictError propagates so callers can retry or report 409."""
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace"), meta["name"])
        try:
            kv = await self._write(WriteOp("update", key, encode(obj), expected_rv, await self._lease(info)))
        except KeyNotFoundError:
            raise errors.not_found(info.plural, meta["name"], info.group) from None
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def delete(self, info: ResourceInfo, obj: dict[str, Any], expected_rv: int = 0) -> dict[str, Any]:
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace"), meta["name"])
        try:
            kv = await self._write(WriteOp("delete", key, b"", expected_rv))
        except KeyNotFoundError:
            raise errors.not_found(info.plural, meta["name"], info.group) from None
        out = loads(kv.value) if kv.value else obj
        out.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        return out

    async def guaranteed_update(self, info: ResourceInfo, namespace: str | None, name: str,
                                mutate: Mutator, suggest: Suggestion | None = None, *, want_old: bool = True,
                                ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Read-modify-write retried on CAS conflicts (like Kubernetes' GuaranteedUpdate).

        ``mutate(current)`` returns the new object, or None for "nothing to write". It may raise
        ``ApiError`` (e.g. a 409 when the caller's own resourceVersion precondition fails).
        ``suggest()`` may offer the watch cache's copy for the first try (as kube-apiserver
        does): a stale copy only costs a retry from etcd, since the write compares the
        revision, and an error or a "nothing to write" from the mutation on it is re-checked
        against etcd before it reaches the client. Returns (old, new-or-None); ``want_old=False``
        skips decoding ``old`` (None then; the binding never reads it: one decode less per pod)."""
        hint = suggest() if suggest is not None else None
        for _ in range(MAX_CAS_RETRIES):
            if hint is not None:
                raw, rev = hint
                hint = None
                current, old = loads(raw), (loads(raw) if want_old else None)
                try:
                    new = await mutate(current)
                except errors.ApiError:
                    continue  # maybe stale: decide on what etcd holds
                if new is None:
                    continue  # "nothing to write" is decided on what etcd holds, too
            else:
                current, kv = await self.get(info, namespace, name)
                rev = kv.mod_revision
                old = loads(kv.value) if want_old else None
                if old is not None:
                    old.setdefault("metadata", {})["resourceVersion"] = str(rev)
                new = await mutate(current)
            if new is None:
                return old, None
            try:
                return old, await self.update(info, new, rev)
            except ConflictError:
                continue
        raise errors.conflict(info.plural, name, "too many concurrent writers; try again", info.group)
