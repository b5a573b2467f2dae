"""``RestClient(lite_http=True)`` (what the scheduler process uses) against the real apiserver:
CRUD, lists with selectors and paging, Status errors, the binding subresource, watches next to
it; and the EventRecorder's concurrent, per-object ordered workers with aggregation and its
bounded (LRU) aggregation memory."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from controlplane.client import events as events_mod
from controlplane.client import resources as R
from controlplane.client.events import EventRecorder
from controlplane.client.rest import ApiStatusError, RestClient
from tests.integration.waiting import eventually

pytestmark = pytest.mark.integration


def cm(name: str, ns: str, labels: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "data": {"k": "v"}}


async def _ns(client: RestClient) -> str:
    ns = f"lite-{uuid.uuid4().hex[:6]}"
    await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    return ns


async def test_lite_client_crud_lists_errors_and_binding(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as client:
        ns = await _ns(client)
        for i in range(7):
            await client.create(R.CONFIGMAPS, cm(f"c{i}", ns, {"app": "web" if i % 2 else "db", "tier": "x" if i < 5 else "y"}), ns)
        with pytest.raises(ApiStatusError) as e:
            await client.create(R.CONFIGMAPS, cm("c0", ns), ns)
        assert e.value.already_exists
        with pytest.raises(ApiStatusError) as e:
            await client.get(R.CONFIGMAPS, "missing", ns)
        assert e.value.not_found
        web = await client.list(R.CONFIGMAPS, ns, label_selector="app=web,tier in (x, z)")
        assert sorted(o["metadata"]["name"] for o in web["items"]) == ["c1", "c3"]
        paged = await client.list_all(R.CONFIGMAPS, ns, page_size=2)
        assert len(paged["items"]) == 7
        patched = await client.patch(R.CONFIGMAPS, "c2", {"data": {"k": "patched"}}, ns)
        assert patched["data"]["k"] == "patched"
        await client.delete(R.CONFIGMAPS, "c6", ns)
        with pytest.raises(ApiStatusError):
            await client.get(R.CONFIGMAPS, "c6", ns)

        node = f"lite-node-{uuid.uuid4().hex[:6]}"
        await client.create(R.NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
        await client.create(R.PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": ns},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}, ns)
        seen: list[str] = []

        async def watch() -> None:
            async for etype, obj in client.watch(R.PODS, ns, resource_version="0"):
                if (obj.get("spec") or {}).get("nodeName"):
                    seen.append(obj["spec"]["nodeName"])
                    return

        w = asyncio.create_task(watch())
        await client.bind(ns, "p", node)
        await asyncio.wait_for(w, 20)
        assert seen == [node] and (await client.get(R.PODS, "p", ns))["spec"]["nodeName"] == node
        with pytest.raises(ApiStatusError) as e:
            await client.bind(ns, "p", node)  # already bound
        assert e.value.code == 409


async def test_event_recorder_workers_keep_per_object_aggregation(apiserver):
    async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as client:
        ns = await _ns(client)
        objs = []
        for i in range(12):
            o = await client.create(R.CONFIGMAPS, cm(f"e{i}", ns), ns)
            o.setdefault("kind", "ConfigMap")
            o.setdefault("apiVersion", "v1")
            objs.append(o)
        rec = EventRecorder(client, "lite-recorder", workers=4)
        stop = asyncio.Event()
        task = asyncio.create_task(rec.start(stop))
        try:
            for o in objs:
                rec.event(o, "Normal", "Touched", "touched")
            for _ in range(4):
                rec.event(objs[0], "Normal", "Poked", "poked it")
            await eventually(lambda: rec.posted == len(objs) + 4)
            items = (await client.list(R.EVENTS, ns))["items"]
            assert len(items) == len(objs) + 1
            poked = [e for e in items if e["reason"] == "Poked"]
            assert len(poked) == 1 and poked[0]["count"] == 4
            assert all(re.fullmatch(r"e\d+\.[0-9a-f]+", e["metadata"]["name"]) for e in items)
        finally:
            stop.set()
            await task


async def test_event_recorder_aggregation_memory_is_bounded(apiserver, monkeypatch):
    monkeypatch.setattr(events_mod, "AGGREGATE_KEYS", 3)
    async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as client:
        ns = await _ns(client)
        o = await client.create(R.CONFIGMAPS, cm("lru", ns), ns)
        o.setdefault("kind", "ConfigMap")
        o.setdefault("apiVersion", "v1")
        rec = EventRecorder(client, "lru-recorder", workers=1)
        stop = asyncio.Event()
        task = asyncio.create_task(rec.start(stop))
        try:
            for i in range(5):
                rec.event(o, "Normal", f"R{i}", "distinct")
            await eventually(lambda: rec.posted == 5)
            assert len(rec._seen) == 3
            rec.event(o, "Normal", "R4", "distinct")  # still remembered: aggregated
            rec.event(o, "Normal", "R0", "distinct")  # forgotten (least recently used): a new Event
            await eventually(lambda: rec.posted == 7)
            items = (await client.list(R.EVENTS, ns))["items"]
            counts = sorted((e["reason"], e["count"]) for e in items)
            assert counts == [("R0", 1), ("R0", 1), ("R1", 1), ("R2", 1), ("R3", 1), ("R4", 2)]
        finally:
            stop.set()
            await task
