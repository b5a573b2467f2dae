"""Object <-> storage glue: how API objects become etcd values and back.

Values are compact JSON with ``apiVersion``, ``kind`` and ``metadata`` first and *without*
``metadata.resourceVersion`` (that is the key's ``mod_revision``). Because ``metadata`` is always
the third top-level key, ``with_rv`` can splice the resourceVersion into stored bytes without a
decode/encode round trip: lists and watch events are assembled from stored bytes directly.

Neighbours: ``storage.interface.Backend`` below (through ``storage.keys`` for key layout), the
handlers above (they call ``ObjectStore`` for every read-modify-write), ``watchcache`` beside.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Awaitable, Callable

import ujson

from controlplane.apiserver import errors
from controlplane.apiserver.group_commit import GroupCommitter, write_one
from controlplane.apiserver.registry import ResourceInfo
from controlplane.machinery.timestamps import now_rfc3339  # noqa: F401 - the handlers import it from here
from controlplane.storage import keys
from controlplane.storage.interface import (
    Backend, ConflictError, KeyExistsError, KeyNotFoundError, KeyValue, WriteOp,
)

_META = b'"metadata":{'
MAX_CAS_RETRIES = 16


def new_uid() -> str:
    return str(uuid.uuid4())


_GEN_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def generate_name(prefix: str) -> str:
    """Kubernetes' generateName: prefix + 5 random characters from its alphabet."""
    return prefix + "".join(secrets.choice(_GEN_ALPHABET) for _ in range(5))


def dumps(obj: Any) -> bytes:
    return ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False).encode()


def loads(data: bytes | str) -> Any:
    return ujson.loads(data)


def encode(obj: dict[str, Any]) -> bytes:
    """Stored form: apiVersion, kind, metadata (without resourceVersion) first."""
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if "name" not in meta:
        meta["name"] = ""
    ordered: dict[str, Any] = {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""),
                               "metadata": meta}
    for k, v in obj.items():
        if k not in ordered:
            ordered[k] = v
    return dumps(ordered)


def with_rv(value: bytes, rv: int) -> bytes:
    """Stored bytes with ``metadata.resourceVersion`` spliced in (see module docstring)."""
    i = value.find(_META)
    if i < 0:  # not written by encode(): fall back to a round trip
        obj = loads(value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
        return dumps(obj)
    j = i + len(_META)
    return b"%s\"resourceVersion\":\"%d\",%s" % (value[:j], rv, value[j:])


def decode(kv: KeyValue) -> dict[str, Any]:
    obj = loads(kv.value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
    return obj


def object_key(info: ResourceInfo, namespace: str | None, name: str) -> str:
    return keys.object_key(info.key_group, info.plural, namespace if info.namespaced else None, name)


def prefix(info: ResourceInfo, namespace: str | None = None) -> str:
    return keys.resource_prefix(info.key_group, info.plural, namespace if info.namespaced else None)


def parse_rv(value: Any, *, what: str = "resourceVersion") -> int:
    if value in (None, ""):
        return 0
    try:
        rv = int(value)
    except (TypeError, ValueError):
        raise errors.bad_request(f"invalid {what}: {value!r}") from None
    if rv < 0:
        raise errors.bad_request(f"invalid {what}: {value!r}")
    return rv


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
