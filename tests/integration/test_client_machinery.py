"""The client machinery against a real apiserver: informer list+watch, indexes and handler
events; resume after an apiserver restart and relist after compaction (410); leader
election between two in-process candidates; the event recorder's aggregation."""

from __future__ import annotations

import asyncio
import os
import subprocess
import uuid

import pytest

from controlplane.client import resources as R
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer
from controlplane.client.leaderelection import LeaderElectionConfig, LeaderElector
from controlplane.client.rest import ApiStatusError, RestClient
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def cm(name: str, ns: str, labels: dict | None = None, owner_uid: str | None = None) -> dict:
    md: dict = {"name": name, "namespace": ns, "labels": labels or {}}
    if owner_uid:
        md["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"k": "v"}}


async def _ns(client: RestClient) -> str:
    ns = f"client-{uuid.uuid4().hex[:6]}"
    await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


async def test_rest_errors_are_statuses(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as client:
        with pytest.raises(ApiStatusError) as e:
            await client.get(R.CONFIGMAPS, "nope", "default")
        assert e.value.code == 404 and e.value.reason == "NotFound" and e.value.not_found
        ns = await _ns(client)
        await client.create(R.CONFIGMAPS, cm("x", ns), ns)
        with pytest.raises(ApiStatusError) as e:
            await client.create(R.CONFIGMAPS, cm("x", ns), ns)
        assert e.value.already_exists
        obj = await client.get(R.CONFIGMAPS, "x", ns)
        obj["data"] = {"k": "2"}
        await client.update(R.CONFIGMAPS, obj)
        with pytest.raises(ApiStatusError) as e:
            await client.update(R.CONFIGMAPS, obj)  # stale resourceVersion
        assert e.value.conflict


async def test_informer_cache_indexes_and_events(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as client:
        ns = await _ns(client)
        await client.create(R.CONFIGMAPS, cm("pre", ns, {"tier": "a"}), ns)
        inf = Informer(client, R.CONFIGMAPS, namespace=ns)
        events: list[tuple[str, str]] = []
        inf.add_handler(lambda t, o, old: events.append((t, o["metadata"]["name"])))
        stop = asyncio.Event()
        task = asyncio.create_task(inf.start(stop))
        try:
            assert await inf.wait_for_sync(10)
            assert inf.has_synced() and inf.get(f"{ns}/pre") is not None
            owner = await client.create(R.CONFIGMAPS, cm("owner", ns), ns)
            await client.create(R.CONFIGMAPS, cm("child", ns, {"tier": "b"}, owner["metadata"]["uid"]), ns)
            await eventually(lambda: inf.get(f"{ns}/child") is not None)
            assert [o["metadata"]["name"] for o in inf.by_owner(owner["metadata"]["uid"])] == ["child"]
            assert {o["metadata"]["name"] for o in inf.list(ns, {"matchLabels": {"tier": "b"}})} == {"child"}
            assert {o["metadata"]["name"] for o in inf.list(ns, "tier in (a,b)")} == {"pre", "child"}
            await client.delete(R.CONFIGMAPS, "pre", ns)
            await eventually(lambda: ("DELETED", "pre") in events)
            assert inf.get(f"{ns}/pre") is None and len(inf.by_index("namespace", ns)) == 2
            assert ("ADDED", "pre") in events and ("ADDED", "child") in events
        finally:
            stop.set()
            await task


def _etcdctl(etcd, *args: str) -> str:  # type: ignore[no-untyped-def]
    return subprocess.run(["etcdctl", *etcd.etcdctl_args(), *args], capture_output=True, text=True, check=True,
                          env={**os.environ, "ETCDCTL_API": "3"}).stdout


async def test_informer_resumes_and_relists_after_compaction(fresh_apiserver):
    api = fresh_apiserver
    async with RestClient.from_kubeconfig(api.kubeconfig) as client:
        ns = await _ns(client)
        for i in range(3):
            await client.create(R.CONFIGMAPS, cm(f"c{i}", ns), ns)
        inf = Informer(client, R.CONFIGMAPS, namespace=ns)
        deleted: list[str] = []
        inf.add_handler(lambda t, o, old: t == "DELETED" and deleted.append(o["metadata"]["name"]))
        stop = asyncio.Event()
        task = asyncio.create_task(inf.start(stop))
        try:
            assert await inf.wait_for_sync(10)
            # 1) a restart drops the stream: it resumes from the last resourceVersion
            await asyncio.to_thread(api.restart)
            await client.create(R.CONFIGMAPS, cm("after-restart", ns), ns)
            await eventually(lambda: inf.get(f"{ns}/after-restart") is not None)
            assert inf.relists == 1, "a dropped stream resumes without relisting"
            # 2) while it is down, history is written and compacted away: 410 -> relist
            await asyncio.to_thread(api.stop)
            await client.close()
            await asyncio.to_thread(api.start)
            await client.delete(R.CONFIGMAPS, "c0", ns)
            for i in range(3):
                await client.create(R.CONFIGMAPS, cm(f"n{i}", ns), ns)
            await asyncio.to_thread(api.stop)
            rev = _etcdctl(api.etcd, "put", "/compact-bump", "x", "-w", "json")
            import json
            revision = json.loads(rev)["header"]["revision"]
            _etcdctl(api.etcd, "compact", str(revision))
            await asyncio.to_thread(api.start)
            await eventually(lambda: inf.get(f"{ns}/n2") is not None and inf.get(f"{ns}/c0") is None, timeout=30)
            assert "c0" in deleted, "a relist replays deletions missed while away"
        finally:
            stop.set()
            await task


async def test_leader_election_in_process(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as client:
        name = f"le-{uuid.uuid4().hex[:6]}"
        cfgs = [LeaderElectionConfig(name=name, namespace="default", identity=i, lease_duration=2.0, renew_deadline=1.5,
                                     retry_period=0.2, release_on_cancel=False) for i in ("one", "two")]
        electors = [LeaderElector(client, c) for c in cfgs]
        leading: list[str] = []
        stops = [asyncio.Event(), asyncio.Event()]

        def runner(ident: str):
            async def lead(lost: asyncio.Event) -> None:
                leading.append(ident)
                await lost.wait()
            return lead

        tasks = [asyncio.create_task(e.run(s, runner(c.identity))) for e, s, c in zip(electors, stops, cfgs)]
        try:
            await eventually(lambda: len(leading) == 1)
            await asyncio.sleep(1.0)
            assert len(leading) == 1, "only one candidate leads"
            first = leading[0]
            idx = 0 if first == "one" else 1
            tasks[idx].cancel()  # crash: no release
            await asyncio.gather(tasks[idx], return_exceptions=True)
            await eventually(lambda: len(leading) == 2, timeout=30)
            assert leading[1] != first
            lease = await client.get(R.LEASES, name, "default")
            assert lease["spec"]["holderIdentity"] == leading[1] and lease["spec"]["leaseTransitions"] >= 1
        finally:
            for s in stops:
                s.set()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_event_recorder_aggregates(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as client:
        ns = await _ns(client)
        obj = await client.create(R.CONFIGMAPS, cm("evt", ns), ns)
        obj.setdefault("kind", "ConfigMap")
        obj.setdefault("apiVersion", "v1")
        rec = EventRecorder(client, "test-recorder")
        stop = asyncio.Event()
        task = asyncio.create_task(rec.start(stop))
        try:
            for _ in range(3):
                rec.event(obj, "Normal", "Poked", "poked it")
            rec.event(obj, "Warning", "Broke", "broke it")
            await eventually(lambda: rec.posted == 4)
            items = (await client.list(R.EVENTS, ns))["items"]
            by_reason = {e["reason"]: e for e in items}
            assert by_reason["Poked"]["count"] == 3 and by_reason["Broke"]["count"] == 1
            assert by_reason["Poked"]["involvedObject"]["uid"] == obj["metadata"]["uid"]
        finally:
            stop.set()
            await task
