"""Watches that end and resume lose nothing, although group-committed writes share a
resourceVersion: against the real apiserver and etcd, many concurrent writes (so they are
committed together, several per revision) while watchers with a 1 s ``timeoutSeconds`` and
bookmarks keep ending and resuming from the last resourceVersion they saw (bookmarks
included), as our informers and the simulated node agent's do. Every acknowledged write must be
seen by every watcher and every watcher's replayed state must equal the final list.

This is the reproduction of the bench's lost pods (docs/metrics.md, "Benchmark"): a watch that
ended on its deadline sent a last BOOKMARK at the cache's newest revision, including a revision
applied after the watcher had been closed and never offered to it; the client resumed after it
and never saw those writes."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from controlplane.client import resources as R
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError, RestClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OBJECTS = 120
WRITES = 3000
CONCURRENCY = 48


def cm(name: str, ns: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"v": value}}


class RawWatcher:
    """A bare watch loop: ``timeoutSeconds=1`` with bookmarks, resumed from the last
    resourceVersion seen (event or bookmark), as client-go's reflector does."""

    def __init__(self, client: RestClient, ns: str, rv: str) -> None:
        self.client, self.ns, self.rv = client, ns, rv
        self.start_rv = int(rv)
        self.seen: set[tuple[int, str]] = set()
        self.state: dict[str, str] = {}
        self.restarts = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async for etype, obj in self.client.watch(R.CONFIGMAPS, self.ns, resource_version=self.rv,
                                                          timeout_seconds=1):
                    md = obj.get("metadata") or {}
                    if etype != "BOOKMARK":
                        self.seen.add((int(md["resourceVersion"]), md["name"]))
                        if etype == "DELETED":
                            self.state.pop(md["name"], None)
                        else:
                            self.state[md["name"]] = (obj.get("data") or {}).get("v", "")
                    self.rv = md.get("resourceVersion") or self.rv
            except ApiStatusError as e:
                if e.expired:
                    raise
                await asyncio.sleep(0.05)
            self.restarts += 1


@pytest.mark.asyncio(loop_scope="session")
async def test_resumed_watches_miss_no_group_committed_write(apiserver) -> None:
    async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as writer, \
            RestClient.from_kubeconfig(apiserver.kubeconfig) as reader:
        ns = f"resume-{uuid.uuid4().hex[:6]}"
        await writer.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        start = (await reader.list(R.CONFIGMAPS, ns))["metadata"]["resourceVersion"]
        stop = asyncio.Event()
        raws = [RawWatcher(reader, ns, start) for _ in range(6)]
        informers = [Informer(reader, R.CONFIGMAPS, namespace=ns, watch_timeout=1) for _ in range(2)]
        tasks = [asyncio.ensure_future(w.run(stop)) for w in raws]
        tasks += [asyncio.ensure_future(i.start(stop)) for i in informers]
        acked: list[tuple[int, str]] = []
        try:
            for i in informers:
                assert await i.wait_for_sync(10)
            names = [f"c{i}" for i in range(OBJECTS)]
            sem = asyncio.Semaphore(CONCURRENCY)
            rng = random.Random(7)

            async def write(n: int) -> None:
                name = names[n % OBJECTS]
                async with sem:
                    if n < OBJECTS:
                        out = await writer.create(R.CONFIGMAPS, cm(name, ns, str(n)), ns)
                    elif rng.random() < 0.05:
                        try:
                            out = await writer.delete(R.CONFIGMAPS, name, ns)
                        except ApiStatusError as e:  # deleted already
                            assert e.not_found
                            return
                        return  # (its DELETED event is checked through the final state)
                    else:
                        try:
                            out = await writer.patch(R.CONFIGMAPS, name, {"data": {"v": str(n)}}, ns)
                        except ApiStatusError as e:
                            assert e.not_found
                            out = await writer.create(R.CONFIGMAPS, cm(name, ns, str(n)), ns)
                acked.append((int(out["metadata"]["resourceVersion"]), name))

            await asyncio.gather(*(write(n) for n in range(OBJECTS)))
            await asyncio.gather(*(write(n) for n in range(OBJECTS, WRITES)))
            shared = len(acked) - len({rv for rv, _ in acked})
            assert shared > 0, "no two writes shared a resourceVersion: nothing was group-committed"

            final_list = await reader.list(R.CONFIGMAPS, ns)
            final = {o["metadata"]["name"]: o["data"]["v"] for o in final_list["items"]}
            final_rv = max(rv for rv, _ in acked)

            def caught_up() -> bool:
                return (all(int(w.rv) >= final_rv for w in raws)
                        and all(int(i.last_resource_version or 0) >= final_rv for i in informers))

            deadline = asyncio.get_running_loop().time() + 20
            while not caught_up() and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]
        report = []
        for n, w in enumerate(raws):
            lost = sorted((rv, k) for rv, k in acked if (rv, k) not in w.seen)
            wrong = sorted(k for k in set(final) | set(w.state) if final.get(k) != w.state.get(k))
            if lost or wrong:
                report.append(f"raw watcher {n} ({w.restarts} resumes): {len(lost)} writes never seen "
                              f"{lost[:6]}, {len(wrong)} objects in a wrong state {wrong[:6]}")
        for n, inf in enumerate(informers):
            got = {o["metadata"]["name"]: (o.get("data") or {}).get("v") for o in inf.list()}
            wrong = sorted(k for k in set(final) | set(got) if final.get(k) != got.get(k))
            if wrong:
                report.append(f"informer {n}: {len(wrong)} objects in a wrong state {wrong[:6]}")
        assert not report, "\n".join(report)
        assert all(w.restarts >= 2 for w in raws)  # the watches did end and resume meanwhile
