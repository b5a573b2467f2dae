"""The storage interface (after kine's Backend): everything the apiserver needs from a store.

The apiserver imports this module and nothing else of ``controlplane.storage``: the ``Backend``
contract, its errors, its value types and the key layout. Keys are
``/registry/<group>/<resource>/<namespace>/<name>`` (group ``core`` for the legacy group; no
namespace segment for cluster-scoped resources; ``object_key``/``resource_prefix`` below).
Values are JSON bytes. An object's ``resourceVersion`` is its ``mod_revision``; a list's is the
store revision it was read at. Implementations: ``etcd.EtcdBackend``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol

# --- key layout (as in kube-apiserver) --------------------------------------------------------

ROOT = "/registry"


def _group(group: str | None) -> str:
    return group or "core"


def object_key(group: str | None, resource: str, namespace: str | None, name: str) -> str:
    """Key of one object; ``namespace`` None/"" for cluster-scoped resources."""
    if not name:
        raise ValueError("object name must not be empty")
    if namespace:
        return f"{ROOT}/{_group(group)}/{resource}/{namespace}/{name}"
    return f"{ROOT}/{_group(group)}/{resource}/{name}"


def resource_prefix(group: str | None, resource: str, namespace: str | None = None) -> str:
    """Prefix covering every object of a resource (in one namespace if given). Ends in "/"
    so that ``pods`` never matches ``podsecuritypolicies``."""
    if namespace:
        return f"{ROOT}/{_group(group)}/{resource}/{namespace}/"
    return f"{ROOT}/{_group(group)}/{resource}/"


def split_key(key: str) -> tuple[str, str, str | None, str]:
    """``(group, resource, namespace or None, name)`` of a key made by ``object_key``."""
    parts = key.split("/")
    if len(parts) == 6 and parts[1] == "registry":
        return parts[2], parts[3], parts[4], parts[5]
    if len(parts) == 5 and parts[1] == "registry":
        return parts[2], parts[3], None, parts[4]
    raise ValueError(f"not an object key: {key!r}")


# --- errors -------------------------------------------------------------------------------------

class StorageError(Exception):
    """Base class of storage errors."""


class KeyExistsError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key exists: {key}")
        self.key = key


class KeyNotFoundError(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class ConflictError(StorageError):
    """A compare-and-set failed: the key's mod_revision is not the expected one."""

    def __init__(self, key: str, current: "KeyValue | None") -> None:
        super().__init__(f"conflict on {key}")
        self.key = key
        self.current = current


class StorageUnavailableError(StorageError):
    """The store could not be reached or did not answer in time (503 upstream)."""


class FutureRevisionError(StorageError):
    """A read asked for a revision newer than the store's current one (504 upstream)."""

    def __init__(self, requested: int) -> None:
        super().__init__(f"revision {requested} is a future revision")
        self.requested = requested


class CompactedError(StorageError):
    """The requested revision has been compacted away ("too old", HTTP 410 upstream)."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} is compacted (compact revision {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


# --- values -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change. For DELETE, ``kv.value`` is the last value and ``kv.mod_revision`` the
    revision of the delete itself."""

    type: Literal["PUT", "DELETE"]
    kv: KeyValue
    prev: KeyValue | None = None

    @property
    def created(self) -> bool:
        return self.type == "PUT" and self.kv.create_revision == self.kv.mod_revision


@dataclass(frozen=True, slots=True)
class WriteOp:
    """One write of a ``Backend.write_batch``: ``create`` (the key must be absent), ``update``
    (``expected_mod_revision``, or 0 = the key must exist) or ``delete`` (same precondition).
    ``lease``: a lease from ``Backend.grant_lease`` the written key is attached to (it goes
    when the lease expires; 0 = none)."""

    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes = b""
    expected_mod_revision: int = 0
    lease: int = 0


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when ``limit`` cut the result


class WatchStream(Protocol):
    """What ``Backend.watch`` returns: an async iterator of event batches, closed with
    ``aclose()`` by its consumer."""

    def __aiter__(self) -> AsyncIterator[list[WatchEvent]]: ...

    async def __anext__(self) -> list[WatchEvent]: ...

    async def aclose(self) -> None: ...


# --- the contract --------------------------------------------------------------------------------

class Backend(abc.ABC):
    """Async key-value store with revisions, compare-and-set and watches."""

    async def start(self) -> None:  # pragma: no cover - default no-op
        return None

    async def close(self) -> None:  # pragma: no cover - default no-op
        return None

    @abc.abstractmethod
    async def current_revision(self) -> int: ...

    @abc.abstractmethod
    async def get(self, key: str, revision: int = 0) -> KeyValue | None: ...

    @abc.abstractmethod
    async def list(
        self, prefix: str, revision: int = 0, limit: int = 0, start_key: str | None = None
    ) -> ListResult:
        """Keys under ``prefix`` in key order, from ``start_key`` (inclusive) if given, at
        ``revision`` (0 = now; CompactedError if compacted), at most ``limit`` (0 = all)."""

    @abc.abstractmethod
    async def count(self, prefix: str) -> int: ...

    @abc.abstractmethod
    async def count_since(self, prefix: str, after_revision: int) -> tuple[int, int, int]:
        """One consistent read: (keys under ``prefix`` with mod_revision > ``after_revision``,
        all keys under ``prefix``, store revision). The watch cache's fallback freshness check."""

    @abc.abstractmethod
    async def last_write_revision(self, prefix: str) -> tuple[int | None, int]:
        """(revision of the last successful write under the resource ``prefix`` belongs to, or
        None when the backend does not know it, store revision). Cheap: the watch cache asks it
        before every consistent read."""

    @abc.abstractmethod
    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        """Create ``key``; KeyExistsError if present. Returns the stored KeyValue. ``lease``:
        see ``WriteOp``."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int, lease: int = 0) -> KeyValue:
        """Compare-and-set on mod_revision. ConflictError (with current) on mismatch,
        KeyNotFoundError if absent. ``lease``: see ``WriteOp`` (a write without one detaches
        the key from its lease)."""

    async def grant_lease(self, ttl_seconds: int) -> int:
        """A lease that expires ``ttl_seconds`` from now, deleting the keys attached to it (what
        kube-apiserver uses for Events' time to live). 0 when the backend has no leases."""
        return 0

    @abc.abstractmethod
    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        """Delete (optionally compare-and-set). Returns the deleted KeyValue with
        ``mod_revision`` set to the delete's revision."""

    async def write_batch(self, ops: list[WriteOp]) -> list[KeyValue | StorageError]:
        """Independent writes of distinct keys, each with its own precondition; the result
        of each (its KeyValue, or the KeyExistsError/KeyNotFoundError/ConflictError it met)
        in its place. A backend may commit them in one transaction (one revision for all);
        this default runs them one by one. Other errors (storage unreachable) are raised."""
        out: list[KeyValue | StorageError] = []
        for op in ops:
            try:
                if op.kind == "create":
                    out.append(await self.create(op.key, op.value, op.lease))
                elif op.kind == "update":
                    out.append(await self.update(op.key, op.value, op.expected_mod_revision, op.lease))
                else:
                    out.append(await self.delete(op.key, op.expected_mod_revision))
            except (KeyExistsError, KeyNotFoundError, ConflictError) as e:
                out.append(e)
        return out

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> WatchStream:
        """Batches of events under ``prefix`` with revision >= ``start_revision`` (0: from now),
        in order, with no gaps across reconnects; raises CompactedError if start_revision is
        compacted. ``prev_kv=False`` leaves ``WatchEvent.prev`` unset (cheaper). An empty batch
        is a progress notification (informative only)."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None: ...
