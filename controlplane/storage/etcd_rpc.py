"""What the etcd backend's modules share: the etcd3aio/gRPC imports, key markers, metrics
labels, conversions and the mapping of gRPC errors to storage errors.

Below ``etcd.py`` (the ``EtcdBackend``), ``etcd_batch.py`` (``write_batch``) and
``etcd_watch.py`` (the gap-free watch stream), which all import it; it imports none of them.

API:
    rpc                       # etcd's rpc_pb2 messages (RequestOp, TxnRequest, Compare, ...)
    WatchStub, KVService, ConnectionManager, EtcdError, prefix_range_end   # from etcd3aio
    kv_of(pb_kv) -> KeyValue
    marker_for(key_or_prefix) -> str | None   # the resource's "last write" marker prefix
    type_of(key) -> str                       # the resource of a key (metrics label)
    map_rpc_error(AioRpcError, op, revision) -> StorageError
    TRANSIENT                                 # gRPC codes worth a reconnect
"""

from __future__ import annotations

import sys
from typing import Any

import grpc
import grpc.aio

from controlplane.storage.interface import (
    CompactedError,
    FutureRevisionError,
    KeyValue,
    StorageError,
    StorageUnavailableError,
)


def _import_etcd3aio() -> tuple[Any, Any, Any, Any, Any, Any]:
    """Import etcd3aio, then undo its ``sys.path`` insertion of its generated protobuf folder
    (it would shadow ``google.api`` / ``etcd`` for everyone else). Modules already imported
    stay in ``sys.modules``, so etcd3aio keeps working. (The imports sit in this function so
    the path can be restored right after them.)"""
    before = list(sys.path)
    import etcd3aio  # noqa: F401
    from etcd3aio import _protobuf as pb
    from etcd3aio.connections import ConnectionManager
    from etcd3aio.errors import EtcdError
    from etcd3aio.kv import KVService, prefix_range_end
    from etcd3aio.lease import LeaseService

    sys.path[:] = [p for p in sys.path if p in before]
    return pb, ConnectionManager, EtcdError, KVService, prefix_range_end, LeaseService


_pb, ConnectionManager, EtcdError, KVService, prefix_range_end, LeaseService = _import_etcd3aio()
rpc = _pb.rpc_pb2
WatchStub = _pb.WatchStub

MARKER_ROOT = "/registry-meta/lastwrite/"
TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED,
             grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL)


def marker_for(key: str) -> str | None:
    """The "last write" marker prefix of the resource a ``/registry/<group>/<resource>/...`` key
    or prefix belongs to. Every successful create/update/delete through the etcd backend also
    puts one marker key under it (``<prefix><slot>``) in the same transaction: slot ``0`` for a
    single write, the write's index among that resource's writes in a ``write_batch`` (a
    transaction cannot put one key twice, and each write's marker must be conditional on its
    own success). The highest ``mod_revision`` under the prefix is the resource's last write,
    so one small read tells whether a resource changed after a revision."""
    parts = key.split("/", 4)
    if len(parts) >= 5 and parts[1] == "registry" and parts[2] and parts[3]:
        return f"{MARKER_ROOT}{parts[2]}/{parts[3]}/"
    return None


def type_of(key: str) -> str:
    """The resource of a ``/registry/<group>/<resource>/...`` key (metrics label)."""
    parts = key.split("/", 4)
    if len(parts) >= 4 and parts[1] == "registry":
        return parts[3] if parts[2] == "core" else f"{parts[3]}.{parts[2]}"
    return "other"


def kv_of(kv: Any) -> KeyValue:
    """An etcd ``mvccpb.KeyValue`` as the interface's ``KeyValue``."""
    return KeyValue(kv.key.decode(), kv.value, kv.mod_revision, kv.create_revision)


def map_rpc_error(e: grpc.aio.AioRpcError, op: str, revision: int) -> StorageError:
    detail = e.details() or ""
    if "compacted" in detail:
        return CompactedError(revision, 0)
    if "future revision" in detail:
        return FutureRevisionError(revision)
    if e.code() in TRANSIENT:
        return StorageUnavailableError(f"etcd {op}: {e.code().name} {detail}")
    return StorageError(f"etcd {op}: {e.code().name} {detail}")
