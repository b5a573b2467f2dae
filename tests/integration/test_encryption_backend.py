"""Encryption at rest in the persistence layer, against real etcd: etcd holds ciphertext with
the provider's prefix, every read path (get, list, watch, batch) gives plaintext, other
resources are untouched, and values written with an old key read as stale."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid

import pytest

from controlplane.apiserver.persistence.encryption.backend import DecryptionFailed, EncryptingBackend
from controlplane.apiserver.persistence.encryption.config import EncryptionConfig
from controlplane.storage.interface import WriteOp


pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _cfg(*keys):
    return EncryptionConfig.parse({"kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets"], "providers": [
        {"aescbc": {"keys": [{"name": n, "secret": base64.b64encode(s).decode()} for n, s in keys]}}, {"identity": {}}]}]})


@pytest.mark.asyncio(loop_scope="session")
async def test_encrypting_backend(backend):
    k1, k2 = ("k1", os.urandom(32)), ("k2", os.urandom(32))
    enc = EncryptingBackend(backend, _cfg(k1))
    ns = f"t{uuid.uuid4().hex[:8]}"
    skey, ckey = f"/registry/core/secrets/{ns}/s1", f"/registry/core/configmaps/{ns}/c1"
    stream = enc.watch(f"/registry/core/secrets/{ns}/", await backend.current_revision() + 1)
    await enc.create(skey, b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}')
    await enc.create(ckey, b'{"kind":"ConfigMap"}')
    raw = await backend.get(skey)
    assert raw.value.startswith(b"k8s:enc:aescbc:v1:k1:") and b"c2VjcmV0" not in raw.value
    assert (await backend.get(ckey)).value == b'{"kind":"ConfigMap"}'
    assert (await enc.get(skey)).value == b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}'
    items = (await enc.list(f"/registry/core/secrets/{ns}/")).items
    assert [kv.value for kv in items] == [b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}']
    batch = await enc.write_batch([WriteOp("update", skey, b'{"kind":"Secret","v":2}', raw.mod_revision),
                                   WriteOp("create", f"/registry/core/secrets/{ns}/s2", b'{"kind":"Secret"}')])
    assert all(not isinstance(r, Exception) for r in batch)
    events = []
    async for evs in stream:
        events += evs
        if len(events) >= 3:
            break
    await stream.aclose()
    assert [e.kv.value for e in events] == [b'{"kind":"Secret","data":{"a":"c2VjcmV0"}}', b'{"kind":"Secret","v":2}',
                                           b'{"kind":"Secret"}']
    assert events[1].prev.value == events[0].kv.value
    # rotation: k2 first, k1 still readable -> stale until written again
    rotated = EncryptingBackend(backend, _cfg(k2, k1))
    kv = await rotated.get(skey)
    assert kv.value == b'{"kind":"Secret","v":2}' and rotated.is_stale(skey)
    await rotated.update(skey, kv.value, kv.mod_revision)
    assert (await backend.get(skey)).value.startswith(b"k8s:enc:aescbc:v1:k2:") and not rotated.is_stale(skey)
    # a key no longer configured: reads fail loudly
    only_k1 = EncryptingBackend(backend, _cfg(k1))
    try:
        await only_k1.get(skey)
        raise AssertionError("expected DecryptionFailed")
    except DecryptionFailed:
        pass
    await backend.delete_prefix(f"/registry/core/secrets/{ns}/")
    await backend.delete_prefix(f"/registry/core/configmaps/{ns}/")
    await asyncio.sleep(0)
