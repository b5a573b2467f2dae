"""Watches that end and resume lose nothing, although group-committed writes share a
resourceVersion: against the real apiserver and etcd, many concurrent writes (so they are
committed together, several per revision) while watchers with a 1 s ``timeoutSeconds`` and
bookmarks keep ending and resuming from the last resourceVersion they saw (bookmarks
included), as our informers and the simulated node agent's do. Every acknowledged write must be
seen by every watcher and every watcher's replayed state must equal the final list.

This is the reproduction of the bench's lost pods (docs/metrics.md, "Benchmark"): a watch that
ended on its deadline sent a last BOOKMARK at the cache's newest revision, including a revision
applied after the watcher had been closed and never offered to it; the client resumed after it
and never saw those writes.

The second scenario cuts the watch connections at random byte offsets (a TCP proxy on
loopback between the watchers and the apiserver), so streams break in the middle of a
revision's events: our informers and ``RestClient.watch(resume=True)`` resume from the last
resourceVersion known complete and drop what the broken stream had delivered already
(``client.resume.ResumePoint``): nothing lost, nothing handed out twice."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Callable

import pytest

from controlplane.client import resources as R
from controlplane.client.informer import Informer
from controlplane.client.rest import ApiStatusError, RestClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OBJECTS = 120
CONCURRENCY = 48


def cm(name: str, ns: str, value: str, pad: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
            "data": {"v": value, "pad": "x" * pad}}


def slim(obj: dict) -> dict:
    md = obj["metadata"]
    return {"metadata": {k: md[k] for k in ("name", "namespace", "resourceVersion") if k in md},
            "data": {"v": (obj.get("data") or {}).get("v")}}


class RawWatcher:
    """A bare watch loop with bookmarks, resumed from the last resourceVersion seen (event or
    bookmark) when it ends, as client-go's reflector does; or, with ``resume``,
    ``RestClient.watch(resume=True)`` (what ``controlplane chaos`` watches with)."""

    def __init__(self, client: RestClient, ns: str, rv: str, timeout: int | None, resume: bool = False) -> None:
        self.client, self.ns, self.rv, self.timeout, self.resume = client, ns, rv, timeout, resume
        self.seen: Counter[tuple[int, str]] = Counter()
        self.state: dict[str, str] = {}
        self.restarts = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async for etype, obj in self.client.watch(R.CONFIGMAPS, self.ns, resource_version=self.rv,
                                                          timeout_seconds=self.timeout, resume=self.resume,
                                                          stop=stop):
                    md = obj.get("metadata") or {}
                    if etype != "BOOKMARK":
                        self.seen[(int(md["resourceVersion"]), md["name"])] += 1
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


class CuttingProxy:
    """TCP on loopback to the apiserver that cuts each connection after a random number of
    bytes from the server (TLS passes through untouched): watch streams break anywhere,
    in the middle of a revision's events too."""

    def __init__(self, target_port: int, seed: int = 11) -> None:
        self.target_port = target_port
        self.rng = random.Random(seed)
        self.cuts = 0
        self.cutting = True  # off: new connections are left whole
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        sr, sw = await asyncio.open_connection("127.0.0.1", self.target_port)
        budget = self.rng.randint(30_000, 300_000) if self.cutting else 1 << 62

        async def up() -> None:
            while data := await cr.read(65536):
                sw.write(data)
                await sw.drain()

        async def down() -> None:
            left = budget
            while data := await sr.read(65536):
                if len(data) >= left:
                    cw.write(data[:left])
                    await cw.drain()
                    self.cuts += 1
                    return
                left -= len(data)
                cw.write(data)
                await cw.drain()

        pumps = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (cw, sw):
                w.transport.abort()
            self._tasks.discard(task)


async def scenario(writer: RestClient, reader: RestClient, *, writes: int, pad: int, raws: int,
                   watch_timeout: int | None, resume: bool, written: Callable[[], None] = lambda: None) -> list[str]:
    """Concurrent (group-committed) writes while ``raws`` raw watchers and two informers follow
    one namespace through ``reader``; returns what went wrong (empty: nothing)."""
    ns = f"resume-{uuid.uuid4().hex[:6]}"
    await writer.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    start = (await writer.list(R.CONFIGMAPS, ns))["metadata"]["resourceVersion"]
    stop = asyncio.Event()
    watchers = [RawWatcher(reader, ns, start, watch_timeout, resume) for _ in range(raws)]
    # the second with a transform, as the simulated node agent's pod informer (slim_pod)
    informers = [Informer(reader, R.CONFIGMAPS, namespace=ns, watch_timeout=watch_timeout or 300, transform=t)
                 for t in (None, slim)]
    tasks = [asyncio.ensure_future(w.run(stop)) for w in watchers]
    tasks += [asyncio.ensure_future(i.start(stop)) for i in informers]
    acked: list[tuple[int, str]] = []
    try:
        for i in informers:
            assert await i.wait_for_sync(20)
        names = [f"c{i}" for i in range(OBJECTS)]
        sem = asyncio.Semaphore(CONCURRENCY)
        rng = random.Random(7)

        async def write(n: int) -> None:
            name = names[n % OBJECTS]
            async with sem:
                if n < OBJECTS:
                    out = await writer.create(R.CONFIGMAPS, cm(name, ns, str(n), pad), ns)
                elif rng.random() < 0.05:
                    try:
                        await writer.delete(R.CONFIGMAPS, name, ns)
                    except ApiStatusError as e:  # deleted already
                        assert e.not_found
                    return  # (its DELETED event is checked through the final state)
                else:
                    try:
                        out = await writer.patch(R.CONFIGMAPS, name, {"data": {"v": str(n)}}, ns)
                    except ApiStatusError as e:
                        assert e.not_found
                        out = await writer.create(R.CONFIGMAPS, cm(name, ns, str(n), pad), ns)
            acked.append((int(out["metadata"]["resourceVersion"]), name))

        await asyncio.gather(*(write(n) for n in range(OBJECTS)))
        await asyncio.gather(*(write(n) for n in range(OBJECTS, writes)))
        written()
        shared = len(acked) - len({rv for rv, _ in acked})
        assert shared > 0, "no two writes shared a resourceVersion: nothing was group-committed"
        final = {o["metadata"]["name"]: o["data"]["v"] for o in (await writer.list(R.CONFIGMAPS, ns))["items"]}
        last = max(rv for rv, _ in acked)

        def caught_up() -> bool:
            return (all(int(w.rv) >= last for w in watchers)
                    and all(int(i.last_resource_version or 0) >= last for i in informers))

        deadline = asyncio.get_running_loop().time() + 20
        while not caught_up() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=5)
        for t in tasks[:len(watchers)]:  # a raw watch with no deadline ends when cut or cancelled
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for t in tasks:
        if not t.cancelled() and t.exception() is not None:
            raise t.exception()  # type: ignore[misc]
    report = []
    for n, w in enumerate(watchers):
        lost = sorted((rv, k) for rv, k in acked if (rv, k) not in w.seen)
        twice = sorted(k for k, c in w.seen.items() if c > 1)
        wrong = sorted(k for k in set(final) | set(w.state) if final.get(k) != w.state.get(k))
        if lost or wrong or (resume and twice):
            report.append(f"raw watcher {n} ({w.restarts} restarts): {len(lost)} writes never seen {lost[:6]}, "
                          f"{len(twice)} seen twice {twice[:3]}, {len(wrong)} objects in a wrong state {wrong[:6]}")
        if watch_timeout and not resume:
            assert w.restarts >= 2  # the watches did end and resume meanwhile
    for n, inf in enumerate(informers):
        got = {o["metadata"]["name"]: (o.get("data") or {}).get("v") for o in inf.list()}
        wrong = sorted(k for k in set(final) | set(got) if final.get(k) != got.get(k))
        if wrong:
            report.append(f"informer {n}: {len(wrong)} objects in a wrong state {wrong[:6]}")
    return report


@pytest.mark.asyncio(loop_scope="session")
async def test_watches_ending_on_their_deadline_miss_no_group_committed_write(apiserver) -> None:
    async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as writer, \
            RestClient.from_kubeconfig(apiserver.kubeconfig) as reader:
        report = await scenario(writer, reader, writes=3000, pad=0, raws=6, watch_timeout=1, resume=False)
    assert not report, "\n".join(report)


@pytest.mark.asyncio(loop_scope="session")
async def test_watches_cut_inside_a_revision_resume_without_loss_or_repeats(apiserver) -> None:
    proxy = CuttingProxy(apiserver.port)
    await proxy.start()
    try:
        async with RestClient.from_kubeconfig(apiserver.kubeconfig, lite_http=True) as writer, \
                RestClient(f"https://127.0.0.1:{proxy.port}", ssl_ctx=apiserver.ssl_context(),
                           discover=False) as reader:
            # (cuts stop once every write is in: the informers back off up to 5 s between
            # broken streams, as client-go's reflector, and catch up then)
            report = await scenario(writer, reader, writes=1200, pad=1500, raws=3, watch_timeout=None,
                                    resume=True, written=lambda: setattr(proxy, "cutting", False))
    finally:
        await proxy.stop()
    assert proxy.cuts >= 5, proxy.cuts  # the streams did break meanwhile
    assert not report, "\n".join(report)
