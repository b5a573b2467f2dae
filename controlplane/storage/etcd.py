"""The etcd implementation of the storage ``Backend`` (see ``interface.py``), on etcd3aio.

Why a thin layer of our own: etcd3aio's high-level watch resumes from the response header's
revision + 1 (which can skip events) and its transactions retry by default (a retried
compare-and-set that had committed would come back as failed). So transactions here run with
``max_attempts=1`` and the watch stream is driven directly on the gRPC stub, tracking the last
delivered event's ``mod_revision`` and resuming from there after any reconnect.

Neighbours: ``interface.py`` (the contract, the errors and the key layout), ``etcdrpc.py``
(what the etcd modules share: etcd3aio imports, markers, error mapping), ``etcd_batch.py``
(``write_batch``), ``etcd_watch.py`` (the gap-free watch stream), the apiserver's watch cache
(the one watch per resource), ``controlplane.bench.etcd_puts`` (raw put throughput).

API:
    b = EtcdBackend(["http://127.0.0.1:2379", ...], request_timeout=30.0)
    await b.start() / await b.close()   # start() is also implied by the first call
    await b.current_revision() -> int
    await b.get(key, revision=0) -> KeyValue | None
    await b.list(prefix, revision=0, limit=0, start_key=None) -> ListResult(items, revision, more)
    await b.count(prefix) -> int
    await b.create(key, value) -> KeyValue                      # KeyExistsError
    await b.update(key, value, expected_mod_revision) -> KeyValue  # ConflictError / KeyNotFoundError
        (expected_mod_revision=0: unconditional, but the key must exist)
    await b.delete(key, expected_mod_revision=0) -> KeyValue    # ConflictError / KeyNotFoundError
    await b.write_batch([WriteOp, ...]) -> [KeyValue | StorageError, ...]  # one txn, one revision
    b.watch(prefix, start_revision, prev_kv=True) -> EtcdWatch  # async iterator of list[WatchEvent]
        start_revision 0 = from now (resolved at the first iteration). ``stream.revision`` is the
        last delivered event's revision. CompactedError when start_revision is compacted.
        Cancelling a pending ``__anext__`` ends the stream; ``await stream.aclose()`` when done.
    await b.last_write_revision(prefix) -> (int | None, revision)
        every write to a ``/registry/<group>/<resource>/`` key also puts a marker key (outside
        /registry/) in the same txn; this reads it: the watch cache's cheap freshness check.
    await b.count_since(prefix, after_revision) -> (modified, total, revision)
        one consistent read: keys under prefix with mod_revision > after_revision, all keys
        under prefix, and the store revision (fallback freshness check; scans the prefix).
    await b.compact(revision)
    await b.delete_prefix(prefix) -> int   # clean-up helper (not part of Backend)
Errors are the interface's: ``StorageUnavailableError`` (etcd unreachable / timed out, 503
upstream), ``FutureRevisionError`` (a revision newer than the store's, 504 upstream), ...
"""

from __future__ import annotations

import time
from typing import Any

import grpc
import grpc.aio
from prometheus_client import Counter, Histogram

from controlplane.log import get_logger
from controlplane.storage import etcd_batch
from controlplane.storage.etcd_rpc import (
    ConnectionManager,
    EtcdError,
    KVService,
    LeaseService,
    WatchStub,
    kv_of,
    map_rpc_error,
    marker_for,
    prefix_range_end,
    rpc,
    type_of,
)
from controlplane.storage.etcd_watch import EtcdWatch
from controlplane.storage.interface import (
    Backend,
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    ListResult,
    StorageError,
    StorageUnavailableError,
    WriteOp,
)

log = get_logger(__name__)

REQUEST_DURATION = Histogram(
    "etcd_request_duration_seconds", "Etcd request latency in seconds for each operation and object type.",
    ["operation", "type"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
REQUEST_ERRORS = Counter(
    "etcd_request_errors_total", "Etcd failed request counts for each operation and object type.",
    ["operation", "type"],
)


def _host_port(endpoint: str) -> str:
    ep = endpoint.strip()
    for scheme in ("http://", "https://", "unix://"):
        if ep.startswith(scheme):
            ep = ep[len(scheme):]
    return ep.rstrip("/")


class EtcdBackend(Backend):
    """A ``Backend`` over one etcd cluster (several endpoints: gRPC round-robin failover)."""

    def __init__(self, endpoints: list[str] | str, *, request_timeout: float = 30.0,
                 cafile: str | None = None, certfile: str | None = None, keyfile: str | None = None) -> None:
        """``cafile`` (+ ``certfile``/``keyfile``): TLS to etcd, verifying it against the CA and
        presenting a client certificate (kube-apiserver's ``--etcd-cafile/-certfile/-keyfile``)."""
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = [_host_port(e) for e in endpoints]
        self._tls = (cafile, certfile, keyfile) if cafile else None
        self.request_timeout = request_timeout
        self._channel: grpc.aio.Channel | None = None
        self._kvs = None
        self._leases = None
        self._watch_stub = None

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._channel is None:
            mgr = ConnectionManager(self.endpoints)
            mgr.grpc_options += [
                ("grpc.max_receive_message_length", 2**31 - 1),  # full lists of 150k objects
                ("grpc.max_send_message_length", 16 * 1024 * 1024),
                ("grpc.initial_reconnect_backoff_ms", 100),  # come back fast after an etcd restart
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 2000),
            ]
            if self._tls is not None:
                ca, cert, key = self._tls
                with open(ca, "rb") as f:
                    ca_pem = f.read()
                cert_pem = key_pem = None
                if cert and key:
                    with open(cert, "rb") as f:
                        cert_pem = f.read()
                    with open(key, "rb") as f:
                        key_pem = f.read()
                # etcd's serving certificate names localhost (and 127.0.0.1); one name for every endpoint
                self._channel = mgr.get_channel(ca_cert=ca_pem, cert_key=key_pem, cert_chain=cert_pem,
                                                tls_server_name="localhost")
            else:
                self._channel = mgr.get_channel()
            self._kvs = KVService(self._channel, max_attempts=3)
            self._watch_stub = WatchStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            self._kvs = self._watch_stub = self._leases = None
            await channel.close()

    @property
    def watch_stub(self) -> Any:
        """The gRPC Watch stub of the open channel (None once closed)."""
        return self._watch_stub

    async def _kv_service(self):  # type: ignore[no-untyped-def]
        if self._kvs is None:
            await self.start()
        return self._kvs

    async def _call(self, op: str, fn, *args, at_rev: int = 0, key: str = "", **kw):  # type: ignore[no-untyped-def]
        """Run one KVService call, mapping gRPC/etcd3aio errors to storage errors."""
        kvs = await self._kv_service()
        typ = type_of(key)
        t0 = time.perf_counter()
        try:
            return await getattr(kvs, fn)(*args, timeout=self.request_timeout, **kw)
        except grpc.aio.AioRpcError as e:
            REQUEST_ERRORS.labels(op, typ).inc()
            raise map_rpc_error(e, op, at_rev) from e
        except EtcdError as e:
            REQUEST_ERRORS.labels(op, typ).inc()
            raise StorageUnavailableError(f"etcd {op}: {e}") from e
        except TimeoutError as e:
            REQUEST_ERRORS.labels(op, typ).inc()
            raise StorageUnavailableError(f"etcd {op}: timed out after {self.request_timeout}s") from e
        finally:
            REQUEST_DURATION.labels(op, typ).observe(time.perf_counter() - t0)

    # -- reads -----------------------------------------------------------------------------
    async def current_revision(self) -> int:
        resp = await self._call("current_revision", "get", b"\x00", count_only=True)
        return int(resp.header.revision)

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        resp = await self._call("get", "get", key, revision=revision, at_rev=revision, key=key)
        return kv_of(resp.kvs[0]) if resp.kvs else None

    async def list(
        self, prefix: str, revision: int = 0, limit: int = 0, start_key: str | None = None
    ) -> ListResult:
        start = start_key if start_key and start_key > prefix else prefix
        resp = await self._call(
            "list", "get", start, range_end=prefix_range_end(prefix), revision=revision, limit=limit,
            at_rev=revision, key=prefix,
        )
        items = [kv_of(kv) for kv in resp.kvs]
        return ListResult(items=items, revision=revision or int(resp.header.revision), more=bool(resp.more))

    async def count_since(self, prefix: str, after_revision: int) -> tuple[int, int, int]:
        end = prefix_range_end(prefix)
        key = prefix.encode()
        resp = await self._call("count_since", "txn", [], [
            # (etcd applies min_mod_revision after counting, so count the returned keys instead)
            rpc.RequestOp(request_range=rpc.RangeRequest(
                key=key, range_end=end, keys_only=True, min_mod_revision=after_revision + 1)),
            rpc.RequestOp(request_range=rpc.RangeRequest(key=key, range_end=end, count_only=True)),
        ], [], key=prefix)
        return (len(resp.responses[0].response_range.kvs), int(resp.responses[1].response_range.count),
                int(resp.header.revision))

    async def last_write_revision(self, prefix: str) -> tuple[int | None, int]:
        """(revision of the last write to the resource ``prefix`` belongs to, or None when
        unknown, store revision). Cheap: one key read."""
        marker = marker_for(prefix)
        if marker is None:
            return None, await self.current_revision()
        resp = await self._call("last_write", "get", marker, range_end=prefix_range_end(marker), keys_only=True,
                                key=prefix)
        written = max((int(kv.mod_revision) for kv in resp.kvs), default=None)
        return written, int(resp.header.revision)

    async def count(self, prefix: str) -> int:
        resp = await self._call("count", "get", prefix, range_end=prefix_range_end(prefix), count_only=True,
                                key=prefix)
        return int(resp.count)

    # -- writes ----------------------------------------------------------------------------
    async def _txn(self, op: str, key: str, compare: list, success: list, failure: list):  # type: ignore[no-untyped-def]
        marker = marker_for(key)
        if marker is not None:
            success = [*success, KVService.txn_op_put(marker + "0", b"")]
        return await self._call(op, "txn", compare, success, failure, max_attempts=1, key=key)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        resp = await self._txn(
            "create", key, [KVService.txn_compare_create_revision(key, 0)],
            [KVService.txn_op_put(key, value, lease=lease)], []
        )
        if not resp.succeeded:
            raise KeyExistsError(key)
        rev = int(resp.header.revision)
        return KeyValue(key, value, rev, rev)

    def _exists(self, key: str):  # type: ignore[no-untyped-def]
        return KVService.txn_compare_create_revision(key, 0, result=rpc.Compare.GREATER)

    def _mod_is(self, key: str, rev: int):  # type: ignore[no-untyped-def]
        return rpc.Compare(result=rpc.Compare.EQUAL, target=rpc.Compare.MOD, key=key.encode(), mod_revision=rev)

    def _fail(self, key: str, resp) -> StorageError:  # type: ignore[no-untyped-def]
        got = resp.responses[0].response_range.kvs if resp.responses else []
        if not got:
            return KeyNotFoundError(key)
        return ConflictError(key, kv_of(got[0]))

    async def update(self, key: str, value: bytes, expected_mod_revision: int, lease: int = 0) -> KeyValue:
        cmp = self._mod_is(key, expected_mod_revision) if expected_mod_revision else self._exists(key)
        resp = await self._txn(
            "update", key, [cmp], [KVService.txn_op_put(key, value, lease=lease, prev_kv=True)],
            [KVService.txn_op_get(key)]
        )
        if not resp.succeeded:
            raise self._fail(key, resp)
        prev = resp.responses[0].response_put.prev_kv
        rev = int(resp.header.revision)
        return KeyValue(key, value, rev, int(prev.create_revision) or rev)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        cmp = self._mod_is(key, expected_mod_revision) if expected_mod_revision else self._exists(key)
        resp = await self._txn(
            "delete", key, [cmp], [KVService.txn_op_delete(key, prev_kv=True)], [KVService.txn_op_get(key)]
        )
        if not resp.succeeded:
            raise self._fail(key, resp)
        prevs = resp.responses[0].response_delete_range.prev_kvs
        if not prevs:  # deleted concurrently between compare and delete cannot happen in a txn
            raise KeyNotFoundError(key)
        prev = prevs[0]
        return KeyValue(key, prev.value, int(resp.header.revision), int(prev.create_revision))

    async def grant_lease(self, ttl_seconds: int) -> int:
        """An etcd lease (LeaseGrant) of ``ttl_seconds``; its keys are deleted when it expires."""
        if self._channel is None:
            await self.start()
        if self._leases is None:
            self._leases = LeaseService(self._channel, max_attempts=3)
        try:
            resp = await self._leases.grant(ttl=int(ttl_seconds), timeout=self.request_timeout)
        except grpc.aio.AioRpcError as e:
            raise map_rpc_error(e, "grant_lease", 0) from e
        except (EtcdError, TimeoutError) as e:
            raise StorageUnavailableError(f"etcd grant_lease: {e}") from e
        return int(resp.ID)

    async def write_batch(self, ops: list[WriteOp]) -> list[KeyValue | StorageError]:
        """All of ``ops`` in one transaction (one revision); see ``etcd_batch.py``."""
        return await etcd_batch.write_batch(self._call, ops)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix`` (clean-up of tests and benchmarks); returns the count."""
        resp = await self._txn("delete_prefix", prefix, [], [
            KVService.txn_op_delete(prefix, range_end=prefix_range_end(prefix))], [])
        return int(resp.responses[0].response_delete_range.deleted)

    async def compact(self, revision: int) -> None:
        await self._call("compact", "compact", revision, at_rev=revision)

    # -- watch -----------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> EtcdWatch:
        return EtcdWatch(self, prefix, start_revision, prev_kv=prev_kv)

