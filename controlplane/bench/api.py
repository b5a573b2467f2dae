"""``controlplane bench api``: apiserver throughput and latency against raw etcd, as JSON.

One run on this machine, each phase against a fresh etcd and a real apiserver child process:
1. ``etcd_put_per_s``: 1 KB puts through the storage client (``EtcdBackend``), 32 concurrent;
2. ``api_create_per_s``, ``create_p50_ms``, ``create_p99_ms``: ConfigMap creates over HTTP
   from 32 concurrent clients (``ratio`` = api / etcd);
3. ``watch_fanout_p99_ms``: 1,000 concurrent HTTP watchers; the delay from a write's request
   to each watcher receiving its event;
4. ``list_pods_s``, ``apiserver_rss_mib``: 150,000 pods written straight into etcd through the
   storage layer, then a fresh apiserver lists them all (``GET /api/v1/pods``) and its RSS is
   read from /proc (supervisor plus workers).
The apiserver runs with ``--workers`` ``--apiserver-workers`` (default 2);
``create_cpu_ms_per_create`` is the CPU the apiserver (all workers), etcd and this client spent
per create during phase 2.

Phases 1 and 2 run twice in one run (``--security both``, the default), each against a fresh
etcd: first with security off (plain HTTP etcd and apiserver, AlwaysAllow, no audit, no
encryption, no admission plugins: the project before issue 14), then on -- what ``controlplane
up`` runs (etcd with TLS and client certificates, HTTPS with client-certificate authentication,
Node+RBAC, the admission chain, the audit log at the default policy, Secrets encrypted at rest;
the load generator presents
the admin's client certificate). The top-level figures are the "on" ones (the default); the
"off" ones are under ``off``, and ``security_cost`` gives the difference per create.
Phases 3 and 4 run on the secured apiserver.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from controlplane.apiserver.admission.chain import ORDER as ADMISSION_PLUGINS
from controlplane.apiserver.meta.objectmeta import new_uid
from controlplane.apiserver.persistence.codec import encode
from controlplane.bench import loadgen
from controlplane.cmd import secure
from controlplane.etcd_process import EtcdProcess, EtcdTLS, free_port
from controlplane.pki.cluster import ClusterPKI
from controlplane.machinery.timestamps import now_rfc3339
from controlplane.procutil import cpu_seconds, tree_cpu_seconds, tree_rss_mib
from controlplane.storage.etcd import EtcdBackend
from controlplane.storage.interface import object_key


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api", help="apiserver create/watch/list throughput vs raw etcd")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--puts", type=int, default=6000, help="raw etcd puts")
    p.add_argument("--creates", type=int, default=6000, help="ConfigMap creates over HTTP")
    p.add_argument("--watchers", type=int, default=1000)
    p.add_argument("--watch-events", type=int, default=40)
    p.add_argument("--pods", type=int, default=150_000)
    p.add_argument("--apiserver-workers", type=int, default=2, help="controlplane apiserver --workers")
    p.add_argument("--security", choices=["both", "on", "off"], default="both",
                   help="phases 1-2 with security off and on (both), or one of them")
    p.set_defaults(func=run)


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


class _ApiProc:
    """``controlplane apiserver --workers N`` as a child (a supervisor and N workers when N > 1)."""

    def __init__(self, workdir: Path, etcd: EtcdProcess, workers: int = 1, pki: ClusterPKI | None = None) -> None:
        self.port = free_port()
        self.pki = pki
        self.url = f"{'https' if pki else 'http'}://127.0.0.1:{self.port}"
        # "on": what `up` runs (every admission plugin on, the default); "off": no admission either
        extra = secure.apiserver_args(pki, workdir) if pki is not None else \
            ["--disable-admission-plugins", ",".join(ADMISSION_PLUGINS)]
        log = open(workdir / f"apiserver-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane", "apiserver", "--port", str(self.port),
             "--etcd-endpoints", etcd.endpoint, "--compaction-interval", "0", "--workers", str(workers), *extra],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "CONTROLPLANE_LOG_LEVEL": "warning"})
        log.close()

    def client_ssl(self) -> ssl.SSLContext | None:
        """The admin's TLS context (None for plain HTTP)."""
        if self.pki is None:
            return None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_file))
        ctx.load_cert_chain(self.pki.crt("admin"), self.pki.key("admin"))
        return ctx

    def wait_ready(self, timeout: float = 300) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"apiserver exited with {self.proc.returncode}")
            try:
                ctx = ssl.create_default_context(cafile=str(self.pki.ca_file)) if self.pki else None
                with urllib.request.urlopen(self.url + "/readyz", timeout=1, context=ctx) as r:
                    if r.status == 200:
                        return time.monotonic() - start
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("apiserver not ready")

    def rss_mib(self) -> float:
        """The supervisor's and its workers' resident memory together."""
        return tree_rss_mib(self.proc.pid)

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def etcd_puts(etcd: EtcdProcess, total: int, concurrency: int) -> float:
    backend = EtcdBackend(etcd.endpoint, **etcd.backend_kwargs())
    await backend.start()
    value = b"x" * 1024
    run = uuid.uuid4().hex[:8]
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            await backend.create(f"/bench/puts/{run}/{i:08d}", value)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    await backend.close()
    return total / elapsed


async def api_creates(url: str, total: int, concurrency: int, prefix: str = "bench",
                      tls: ssl.SSLContext | None = None) -> tuple[float, list[float]]:
    """ConfigMap creates from ``concurrency`` keep-alive HTTP/1.1 connections (``loadgen``: the
    load generator shares the CPUs with the server and should cost little)."""
    payload = "x" * 1000
    bodies = (('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s-%08d"},'
               '"data":{"payload":"%s"}}' % (prefix, i, payload)).encode() for i in range(total))
    latencies: list[float] = []
    start = time.perf_counter()
    await loadgen.post_many(url, "/api/v1/namespaces/default/configmaps", bodies, concurrency, latencies=latencies,
                            ssl=tls)
    elapsed = time.perf_counter() - start
    return total / elapsed, latencies


async def watch_fanout(url: str, watchers: int, events: int, tls: ssl.SSLContext | None = None) -> list[float]:
    """p99 delay from issuing a write to each watcher receiving it."""
    ns = "default"
    sent: dict[str, float] = {}
    delays: list[float] = []
    ready = 0
    all_ready = asyncio.Event()
    conn = aiohttp.TCPConnector(limit=0, ssl=tls) if tls is not None else aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        async with session.post(f"{url}/api/v1/namespaces/{ns}/configmaps",
                                json={"metadata": {"name": "fanout"}, "data": {"seq": "-1"}}) as r:
            obj = await r.json()
        start_rv = obj["metadata"]["resourceVersion"]

        host, port = url.split("//", 1)[1].split(":")
        query = (f"watch=true&resourceVersion={start_rv}&fieldSelector=metadata.name%3Dfanout"
                 "&timeoutSeconds=600")
        request = (f"GET /api/v1/namespaces/{ns}/configmaps?{query} HTTP/1.1\r\nHost: {host}\r\n"
                   "Accept: application/json\r\n\r\n").encode()

        async def watcher() -> None:
            """A bare HTTP/1.1 reader (cheap, so the figure is the server's, not the client's)."""
            nonlocal ready
            reader, writer = await asyncio.open_connection(host, int(port), ssl=tls,
                                                           server_hostname=host if tls is not None else None)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            ready += 1
            if ready == watchers:
                all_ready.set()
            got, buf = 0, b""
            try:
                while got < events:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return
                    now = time.perf_counter()
                    buf += chunk
                    end = 0
                    while True:
                        i = buf.find(b'"seq":"', end)
                        j = buf.find(b'"', i + 7) if i >= 0 else -1
                        if j < 0:
                            break
                        t = sent.get(buf[i + 7:j].decode())
                        if t is not None:
                            delays.append(now - t)
                            got += 1
                        end = j
                    buf = buf[end:]
            finally:
                writer.close()

        tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
        await asyncio.wait_for(all_ready.wait(), 120)
        await asyncio.sleep(1.0)
        for i in range(events):
            sent[str(i)] = time.perf_counter()
            async with session.put(f"{url}/api/v1/namespaces/{ns}/configmaps/fanout",
                                   data=json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                    "metadata": {"name": "fanout"}, "data": {"seq": str(i)}}),
                                   headers={"Content-Type": "application/json"}) as r:
                await r.read()
            await asyncio.sleep(0.1)
        await asyncio.wait_for(asyncio.gather(*tasks), 300)
    return delays


def _pod(i: int) -> dict[str, Any]:
    ns = f"ns-{i % 50}"
    name = f"pod-{i:06d}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": new_uid(), "creationTimestamp": now_rfc3339(),
                     "labels": {"app": f"app-{i % 100}", "tier": "backend"}},
        "spec": {"nodeName": f"node-{i % 1000}", "schedulerName": "default-scheduler", "restartPolicy": "Always",
                 "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "containers": [{"name": "app", "image": "registry.local/app:1.0",
                                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                 "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                 "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePath": "/dev/termination-log",
                                 "terminationMessagePolicy": "File"}]},
        "status": {"phase": "Running", "podIP": f"10.{i % 250}.{(i // 250) % 250}.{i % 200 + 1}",
                   "hostIP": f"192.168.{i % 250}.1", "startTime": now_rfc3339(), "qosClass": "Burstable",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now_rfc3339()}]},
    }


async def load_pods(etcd: EtcdProcess, total: int, concurrency: int = 64) -> None:
    backend = EtcdBackend(etcd.endpoint, **etcd.backend_kwargs())
    await backend.start()
    for n in range(50):
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns-{n}", "uid": new_uid(),
              "creationTimestamp": now_rfc3339()}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        await backend.create(object_key("core", "namespaces", None, f"ns-{n}"), encode(ns))
    counter = iter(range(total))

    async def worker() -> None:
        for i in counter:
            pod = _pod(i)
            await backend.create(object_key("core", "pods", pod["metadata"]["namespace"], pod["metadata"]["name"]),
                                 encode(pod))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await backend.close()


async def list_all_pods(url: str, tls: ssl.SSLContext | None = None) -> tuple[float, int]:
    timeout = aiohttp.ClientTimeout(total=600)
    conn = aiohttp.TCPConnector(ssl=tls) if tls is not None else None
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
        t0 = time.perf_counter()
        async with session.get(f"{url}/api/v1/pods", headers={"Accept": "application/json"}) as r:
            body = await r.read()
        elapsed = time.perf_counter() - t0
    return elapsed, body.count(b'"kind":"Pod"')


async def create_phase(work: Path, args: argparse.Namespace, secured: bool) -> tuple[dict[str, Any], EtcdProcess, _ApiProc]:
    """Phases 1 and 2 against a fresh etcd and apiserver, secured or not; returns the figures
    and the (still running) etcd and apiserver."""
    label = "on" if secured else "off"
    pki = None
    if secured:
        pki = ClusterPKI(work / label / "pki")
        await asyncio.to_thread(pki.ensure, hostname="bench")
    etcd = EtcdProcess(data_dir=work / label / "etcd", tls=EtcdTLS.from_pki(pki.dir) if pki else None)
    await etcd.start()
    out: dict[str, Any] = {}
    api: _ApiProc | None = None
    try:
        out["etcd_put_per_s"] = round(await etcd_puts(etcd, args.puts, args.concurrency), 1)
        api = _ApiProc(work / label, etcd, args.apiserver_workers, pki)
        await asyncio.to_thread(api.wait_ready)
        cpu0 = (api.cpu_seconds(), cpu_seconds(etcd.proc.pid), cpu_seconds())
        rate, lat = await api_creates(api.url, args.creates, args.concurrency, tls=api.client_ssl())
        cpu1 = (api.cpu_seconds(), cpu_seconds(etcd.proc.pid), cpu_seconds())
    except BaseException:
        if api is not None:
            api.stop()
        await asyncio.to_thread(etcd.stop)
        raise
    out["create_cpu_ms_per_create"] = {k: round((b - a) * 1000 / args.creates, 3) for k, a, b in
                                       zip(("apiserver", "etcd", "bench"), cpu0, cpu1)}
    out["api_create_per_s"] = round(rate, 1)
    out["ratio"] = round(rate / out["etcd_put_per_s"], 3)
    out["create_p50_ms"] = round(_pct(lat, 0.50) * 1000, 2)
    out["create_p99_ms"] = round(_pct(lat, 0.99) * 1000, 2)
    return out, etcd, api


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"apiserver_workers": args.apiserver_workers}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        work = Path(tmp)
        for d in ("on", "off"):
            (work / d).mkdir()
        off: dict[str, Any] | None = None
        if args.security in ("both", "off"):
            off, etcd, api = await create_phase(work, args, secured=False)
            api.stop()
            await asyncio.to_thread(etcd.stop)
            if args.security == "off":
                out.update(off)
                return out
        on, etcd, api = await create_phase(work, args, secured=True)
        out["security"] = "on: etcd TLS + client certs, HTTPS + client-certificate authn, Node+RBAC, admission chain, audit, encryption"
        out.update(on)
        if off is not None:
            out["off"] = off
            out["security_cost"] = {
                "apiserver_cpu_ms_per_create": round(on["create_cpu_ms_per_create"]["apiserver"]
                                                     - off["create_cpu_ms_per_create"]["apiserver"], 3),
                "etcd_cpu_ms_per_create": round(on["create_cpu_ms_per_create"]["etcd"]
                                                - off["create_cpu_ms_per_create"]["etcd"], 3),
                "bench_cpu_ms_per_create": round(on["create_cpu_ms_per_create"]["bench"]
                                                 - off["create_cpu_ms_per_create"]["bench"], 3),
                "create_per_s_on_over_off": round(on["api_create_per_s"] / off["api_create_per_s"], 3),
            }
        try:
            tls = api.client_ssl()
            delays = await watch_fanout(api.url, args.watchers, args.watch_events, tls)
            out["watchers"] = args.watchers
            out["watch_fanout_p50_ms"] = round(_pct(delays, 0.50) * 1000, 2)
            out["watch_fanout_p99_ms"] = round(_pct(delays, 0.99) * 1000, 2)
            api.stop()
            t0 = time.perf_counter()
            await load_pods(etcd, args.pods)
            out["pods_loaded"] = args.pods
            out["pods_load_s"] = round(time.perf_counter() - t0, 1)
            api = _ApiProc(work / "on", etcd, args.apiserver_workers, api.pki)
            out["apiserver_start_s"] = round(await asyncio.to_thread(api.wait_ready), 2)
            list_s, count = await list_all_pods(api.url, tls)
            out["list_pods_s"] = round(list_s, 3)
            out["list_pods_items"] = count
            out["apiserver_rss_mib"] = round(api.rss_mib(), 1)
        finally:
            api.stop()
            await asyncio.to_thread(etcd.stop)
    return out


def run(args: argparse.Namespace) -> int:
    import uvloop  # ships with sanic; the clients' own overhead should stay small

    result = uvloop.run(bench(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0
