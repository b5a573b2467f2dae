"""Encryption at rest in the persistence layer: a storage ``Backend`` wrapper that encrypts the
values of the resources an ``EncryptionConfiguration`` names on every write (create, update,
write_batch) and decrypts them on every read (get, list, watch events and their previous
values), so everything above -- the object store, group commit, the watch caches -- sees
plaintext JSON and etcd only ever holds ciphertext (``k8s:enc:<provider>:v1:<key>:...``).

Keys are ``/registry/<group>/<resource>/...`` (``core`` for the legacy group); each resource
prefix is matched against the configuration once. The storage key is the authenticated
context (aesgcm binds a value to its key). A value read with an old key or provider is
recorded as stale (``is_stale``), so the object store writes it again on the next update
even when the object did not change -- how ``kubectl replace`` re-encrypts after a rotation.
A value no provider can read is an error (500 upstream), as in kube-apiserver.

``set_config`` swaps the configuration in place (``reload.ConfigReloader``, kube-apiserver's
``--encryption-provider-config-automatic-reload``): the next read or write of any key uses the
new one. A backend built with ``dynamic=True`` wraps every watch (decrypting each batch whose
resource is encrypted at that moment), since a resource not encrypted now may be after a
reload (kube-apiserver's transformers are looked up per call too).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from controlplane.apiserver.persistence.encryption.config import EncryptionConfig
from controlplane.apiserver.persistence.encryption.providers import DecryptError
from controlplane.apiserver.persistence.encryption.transformer import Transformer
from controlplane.storage.interface import Backend, KeyValue, ListResult, StorageError, WatchEvent, WriteOp


class DecryptionFailed(StorageError):
    """Stored data could not be decrypted with any configured provider."""


def group_resource(key: str) -> tuple[str, str] | None:
    """("" or group, resource) of a ``/registry/<group>/<resource>/...`` key or prefix."""
    if not key.startswith("/registry/"):
        return None
    g_end = key.find("/", 10)
    if g_end <= 10:
        return None
    r_end = key.find("/", g_end + 1)
    resource = key[g_end + 1:r_end] if r_end > 0 else key[g_end + 1:]
    if not resource:
        return None
    group = key[10:g_end]
    return ("" if group == "core" else group), resource


_UNKNOWN = object()


class EncryptingBackend(Backend):
    def __init__(self, inner: Backend, config: EncryptionConfig, *, dynamic: bool = False) -> None:
        self.inner = inner
        self.config = config
        self.dynamic = dynamic
        self._by_prefix: dict[tuple[str, str], Any] = {}
        self._stale: set[str] = set()

    def set_config(self, config: EncryptionConfig) -> None:
        """Use ``config`` from now on. What was recorded stale is forgotten: staleness is
        relative to the configuration, and a write decides on a fresh read from etcd anyway
        (``ObjectStore.guaranteed_update`` re-reads before it skips an unchanged write)."""
        self.config = config
        self._by_prefix = {}
        self._stale = set()

    def _static_plain(self, prefix: str) -> bool:
        """Whether a watch of ``prefix`` may skip decryption for its whole life: a resource not
        encrypted, and no reload may change that."""
        return not self.dynamic and group_resource(prefix) is not None and self._transformer(prefix) is None

    def _transformer(self, key: str) -> Transformer | None:
        gr = group_resource(key)
        if gr is None:
            return None
        t = self._by_prefix.get(gr, _UNKNOWN)
        if t is _UNKNOWN:
            t = self._by_prefix[gr] = self.config.for_resource(*gr)
        return t  # type: ignore[return-value]

    def _enc(self, key: str, value: bytes) -> bytes:
        t = self._transformer(key)
        if t is None:
            return value
        self._stale.discard(key)
        return t.to_storage(value, key.encode())

    def _dec_kv(self, kv: KeyValue | None) -> KeyValue | None:
        if kv is None or not kv.value:
            return kv
        t = self._transformer(kv.key)
        if t is None:
            return kv
        try:
            plain, stale = t.from_storage(kv.value, kv.key.encode())
        except DecryptError as e:
            raise DecryptionFailed(f"{kv.key}: {e}") from e
        if stale:
            self._stale.add(kv.key)
        else:
            self._stale.discard(kv.key)
        return KeyValue(kv.key, plain, kv.mod_revision, kv.create_revision)

    def is_stale(self, key: str) -> bool:
        """Whether the last read of ``key`` found it written with an old provider or key."""
        return key in self._stale

    # -- Backend ---------------------------------------------------------------------------
    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def current_revision(self) -> int:
        return await self.inner.current_revision()

    async def get(self, key: str, revision: int = 0) -> KeyValue | None:
        return self._dec_kv(await self.inner.get(key, revision))

    async def list(self, prefix: str, revision: int = 0, limit: int = 0, start_key: str | None = None) -> ListResult:
        res = await self.inner.list(prefix, revision, limit, start_key)
        if group_resource(prefix) is not None and self._transformer(prefix) is None:
            return res  # a resource that is not encrypted: nothing to do per item
        return ListResult([self._dec_kv(kv) for kv in res.items], res.revision, res.more)  # type: ignore[misc]

    async def count(self, prefix: str) -> int:
        return await self.inner.count(prefix)

    async def count_since(self, prefix: str, after_revision: int) -> tuple[int, int, int]:
        return await self.inner.count_since(prefix, after_revision)

    async def last_write_revision(self, prefix: str) -> tuple[int | None, int]:
        return await self.inner.last_write_revision(prefix)

    async def create(self, key: str, value: bytes, lease: int = 0) -> KeyValue:
        if self._transformer(key) is None:
            return await self.inner.create(key, value, lease)
        kv = await self.inner.create(key, self._enc(key, value), lease)
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def update(self, key: str, value: bytes, expected_mod_revision: int, lease: int = 0) -> KeyValue:
        if self._transformer(key) is None:
            return await self.inner.update(key, value, expected_mod_revision, lease)
        kv = await self.inner.update(key, self._enc(key, value), expected_mod_revision, lease)
        return KeyValue(kv.key, value, kv.mod_revision, kv.create_revision)

    async def grant_lease(self, ttl_seconds: int) -> int:
        return await self.inner.grant_lease(ttl_seconds)

    async def delete(self, key: str, expected_mod_revision: int = 0) -> KeyValue:
        kv = await self.inner.delete(key, expected_mod_revision)
        self._stale.discard(key)
        return self._dec_kv(kv)  # type: ignore[return-value]

    async def write_batch(self, ops: list[WriteOp]) -> list[KeyValue | StorageError]:
        if all(self._transformer(op.key) is None for op in ops):  # nothing encrypted here: as is
            return await self.inner.write_batch(ops)
        enc_ops = [WriteOp(op.kind, op.key, self._enc(op.key, op.value) if op.kind != "delete" else op.value,
                           op.expected_mod_revision, op.lease) for op in ops]
        out = await self.inner.write_batch(enc_ops)
        result: list[KeyValue | StorageError] = []
        for op, r in zip(ops, out):
            if isinstance(r, KeyValue):
                if op.kind == "delete":
                    self._stale.discard(op.key)
                    r = self._dec_kv(r)  # type: ignore[assignment]
                else:
                    r = KeyValue(r.key, op.value, r.mod_revision, r.create_revision)
            elif isinstance(r, StorageError) and getattr(r, "current", None) is not None:
                r.current = self._dec_kv(r.current)  # type: ignore[attr-defined]
            result.append(r)
        return result

    def watch(self, prefix: str, start_revision: int, prev_kv: bool = True) -> Any:
        stream = self.inner.watch(prefix, start_revision, prev_kv=prev_kv)
        if self._static_plain(prefix):
            return stream  # a resource that is not encrypted: its events pass untouched
        return _DecryptingWatch(self, stream, single=group_resource(prefix) is not None)

    async def compact(self, revision: int) -> None:
        await self.inner.compact(revision)


class _DecryptingWatch:
    """The inner watch stream with every event's values decrypted; other attributes
    (``revision``, ``aclose``) pass through."""

    def __init__(self, backend: EncryptingBackend, inner: Any, *, single: bool = False) -> None:
        """``single``: the watch covers one resource (every key of it has one transformer)."""
        self._b = backend
        self._inner = inner
        self._single = single

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __aiter__(self) -> "_DecryptingWatch":
        return self

    async def __anext__(self) -> list[WatchEvent]:
        batch = await self._inner.__anext__()
        if not batch or (self._single and self._b._transformer(batch[0].kv.key) is None):
            return batch  # one resource, not encrypted under the current configuration
        dec = self._b._dec_kv
        return [WatchEvent(ev.type, dec(ev.kv), dec(ev.prev) if ev.prev is not None else None)  # type: ignore[arg-type]
                for ev in batch]

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()
