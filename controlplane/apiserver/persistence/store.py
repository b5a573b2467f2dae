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
from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, WriteOp,
)

MAX_CAS_RETRIES = 16

Mutator = Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]]
# A hint for the current stored version (raw JSON with resourceVersion, rv): the watch cache's copy.
Suggestion = Callable[[], tuple[bytes, int] | None]


class ObjectStore:
    """Typed CRUD over the Backend with Kubernetes' error mapping."""

    def __init__(self, backend: Backend, *, group_commit: bool = True) -> None:
        self.backend = backend
        self.committer = GroupCommitter(backend) if group_commit else None

    async def close(self) -> None:
        if self.committer is not None:
            await self.committer.close()

    async def _write(self, op: WriteOp) -> KeyValue:
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
            kv = await self._write(WriteOp("create", key, encode(obj)))
        except KeyExistsError:
            raise errors.already_exists(info.plural, meta["name"], info.group) from None
        meta["resourceVersion"] = str(kv.mod_revision)
        return obj

    async def update(self, info: ResourceInfo, obj: dict[str, Any], expected_rv: int) -> dict[str, Any]:
        """CAS write; ConflictError propagates so callers can retry or report 409."""
        meta = obj["metadata"]
        key = object_key(info, meta.get("namespace"), meta["name"])
        try:
            kv = await self._write(WriteOp("update", key, encode(obj), expected_rv))
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
                                mutate: Mutator, suggest: Suggestion | None = None,
                                ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Read-modify-write retried on CAS conflicts (like Kubernetes' GuaranteedUpdate).

        ``mutate(current)`` returns the new object, or None for "nothing to write". It may raise
        ``ApiError`` (e.g. a 409 when the caller's own resourceVersion precondition fails).
        ``suggest()`` may offer the watch cache's copy for the first try (as kube-apiserver
        does): a stale copy only costs a retry from etcd, since the write compares the
        revision, and an error or a "nothing to write" from the mutation on it is re-checked
        against etcd before it reaches the client. Returns (old, new-or-None)."""
        hint = suggest() if suggest is not None else None
        for _ in range(MAX_CAS_RETRIES):
            if hint is not None:
                raw, rev = hint
                hint = None
                current, old = loads(raw), loads(raw)
                try:
                    new = await mutate(current)
                except errors.ApiError:
                    continue  # maybe stale: decide on what etcd holds
                if new is None:
                    continue  # "nothing to write" is decided on what etcd holds, too
            else:
                current, kv = await self.get(info, namespace, name)
                rev = kv.mod_revision
                old = loads(kv.value)
                old.setdefault("metadata", {})["resourceVersion"] = str(rev)
                new = await mutate(current)
            if new is None:
                return old, None
            try:
                return old, await self.update(info, new, rev)
            except ConflictError:
                continue
        raise errors.conflict(info.plural, name, "too many concurrent writers; try again", info.group)
