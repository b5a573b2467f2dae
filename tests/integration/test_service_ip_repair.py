"""The Service allocation repair (Kubernetes' repair controllers) on a real etcd: a leaked
allocation is freed only on the second pass that finds it unheld and unchanged; a Service's
allocation missing from storage is taken again; a re-taken key is left alone."""

from __future__ import annotations

import json

import pytest

from controlplane.apiserver.strategy.serviceips import ServiceIPAllocator
from controlplane.storage.etcd import EtcdBackend
from controlplane.storage.interface import object_key

pytestmark = pytest.mark.integration


async def test_repair_two_passes_and_restore(fresh_etcd):
    b = EtcdBackend([fresh_etcd.endpoint])
    await b.start()
    try:
        alloc = ServiceIPAllocator(b, "10.99.0.0/24")
        svc = {"metadata": {"namespace": "default", "name": "web"},
               "spec": {"type": "NodePort", "clusterIP": "10.99.0.40", "ports": [{"port": 80, "nodePort": 30080}]}}
        await b.create(object_key("core", "services", "default", "web"), json.dumps(svc).encode())
        ipkey = object_key("core", "serviceipallocations", None, "10.99.0.41")
        await b.create(ipkey, b"default/gone")  # leaked: no Service holds it
        # first pass: the Service's missing keys restored, the leak only suspected
        assert await alloc.repair() == (2, 0)
        assert (await b.get(object_key("core", "serviceipallocations", None, "10.99.0.40"))).value == b"default/web"
        assert (await b.get(object_key("core", "servicenodeportallocations", None, "30080"))).value == b"default/web"
        assert await b.get(ipkey) is not None
        # a key re-taken between passes (changed revision) is not freed on the next pass
        cur = await b.get(ipkey)
        await b.delete(ipkey, expected_mod_revision=cur.mod_revision)
        await b.create(ipkey, b"default/new")
        assert await alloc.repair() == (0, 0)
        assert await alloc.repair() == (0, 1)
        assert await b.get(ipkey) is None
        assert await alloc.repair() == (0, 0)
    finally:
        await b.close()
