"""The storage interface (after kine's Backend): everything the apiserver needs from a store.

Keys are ``/registry/<group>/<resource>/<namespace>/<name>`` (group ``core`` for the legacy
group; no namespace segment for cluster-scoped resources). Values are JSON bytes. An object's
``resourceVersion`` is its ``mod_revision``; a list's is the store revision it was read at.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncIterator, Literal


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


class CompactedError(StorageError):
    """The requested revision has been compacted away ("too old", HTTP 410 upstream)."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} is compacted (compact revision {compact_revision})")
        self.requested = requested
        self.compact_revision = compact_revision


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
    (``expected_mod_revision``, or 0 = the key must exist) or ``delete`` (same precondition)."""

    kind: Literal["create", "update", "delete"]
    key: str
    value: bytes = b""
    expected_mod_revision: int = 0


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[KeyValue]
    revision: int  # the store revision the list was read at
    more: bool  # True when ``limit`` cut the result


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
    async def create(self, key: str, value: bytes) -> KeyValue:
        """Create ``key``; KeyExistsError if present. Returns the stored KeyValue."""

    @abc.abstractmethod
    async def update(self, key: str, value: bytes, expected_mod_revision: int) -> KeyValue:
        """Compare-and-set on mod_revision. ConflictError (with current) on mismatch,
        KeyNotFoundError if absent."""

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
                    out.append(await self.create(op.key, op.value))
                elif op.kind == "update":
                    out.append(await self.update(op.key, op.value, op.expected_mod_revision))
                else:
                    out.append(await self.delete(op.key, op.expected_mod_revision))
            except (KeyExistsError, KeyNotFoundError, ConflictError) as e:
                out.append(e)
        return out

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int) -> AsyncIterator[list[WatchEvent]]:
        """Batches of events under ``prefix`` with revision >= ``start_revision``, in order,
        with no gaps across reconnects; raises CompactedError if start_revision is compacted."""

    @abc.abstractmethod
    async def compact(self, revision: int) -> None: ...
