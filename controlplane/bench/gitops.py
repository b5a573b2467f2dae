"""``controlplane bench gitops``: the GitOps controller on a repository of 1,000 objects.

Starts etcd, an apiserver (``--apiserver-workers``, 2 like ``up``), ``git daemon`` on a free
loopback port serving a generated repository (one Namespace, ConfigMaps, Secrets and
Services, ten objects per file) and ``controlplane gitops-controller`` (nothing else: no
controller-manager or scheduler, and no leader election (its Lease renewals would be writes
of their own), so every store write during a measurement is a reconcile's). Then prints JSON:

- ``first_sync_s``: GitRepository + Sync created → Sync Ready with the revision (clone,
  pack, build, 1,000 dry runs, 1,000 server-side applies, inventory), with the controller's
  applies, its CPU and the etcd revisions spent (fewer than the writes: the apiserver
  group-commits concurrent writes into one revision);
- ``noop``: two interval-driven reconciles of the unchanged repository (GitRepository and
  Sync at a 3 s interval): mean reconcile time of each and the store writes in that window
  (etcd revision delta: every write by anyone; target 0);
- ``noop_cold``: the same after restarting the controller (its apply cache is empty, so all
  1,000 objects are dry-run and compared): reconcile time and writes;
- ``webhook``: ``--pushes`` times, a commit changing one ConfigMap is pushed and a signed
  GitHub push payload posted to the Receiver; the time from the POST to the change being
  visible through the API (target <= 2 s), and each run's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.gitops import api
from controlplane.procutil import cpu_seconds, terminate, wait_ready

GIT_ENV = {**{k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@example.invalid"}
NS = "bench-gitops"
TOKEN = "bench-webhook-token"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout.strip()


def generate(work: Path, objects: int) -> None:
    """One Namespace, then ConfigMaps (60%), Secrets (20%) and Services (20%), ten per file."""
    objs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
    n = objects - 1
    for i in range(n):
        name = f"obj-{i:04d}"
        if i < n * 0.6:
            objs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS},
                         "data": {"index": str(i), "payload": "x" * 64}})
        elif i < n * 0.8:
            objs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS},
                         "data": {"password": base64.b64encode(f"pw-{i}".encode()).decode()}})
        else:
            objs.append({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
                         "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
    d = work / "deploy"
    d.mkdir(parents=True)
    for f in range(0, len(objs), 10):
        (d / f"part-{f // 10:03d}.yaml").write_text("---\n".join(yaml.safe_dump(o) for o in objs[f:f + 10]))


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


class _Bench:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        from controlplane.etcd_process import EtcdProcess, free_port
        self.work = work
        self.args = args
        self.etcd = EtcdProcess(data_dir=work / "etcd")
        self.port = free_port()
        self.git_port = free_port()
        self.metrics_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.kubeconfig = work / "kubeconfig"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "CONTROLPLANE_LOG_FORMAT": "json", "CONTROLPLANE_LOG_LEVEL": "warning"}

    def start(self) -> None:
        from controlplane.kubeconfig import write_kubeconfig
        self.etcd.start_sync()
        with open(self.work / "apiserver.log", "ab") as f:
            self.procs["apiserver"] = subprocess.Popen(
                [sys.executable, "-m", "controlplane", "apiserver", "--port", str(self.port), "--etcd-endpoints",
                 self.etcd.endpoint, "--workers", str(self.args.apiserver_workers), "--compaction-interval", "0"],
                stdout=f, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        write_kubeconfig(self.kubeconfig, self.url)
        wait_ready(self.url, self.procs["apiserver"])
        self.procs["git"] = subprocess.Popen(
            ["git", "daemon", "--export-all", f"--base-path={self.work / 'repos'}", f"--port={self.git_port}",
             "--listen=127.0.0.1", "--reuseaddr", str(self.work / "repos")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=GIT_ENV, start_new_session=True)
        self.start_controller()

    def start_controller(self) -> None:
        with open(self.work / "gitops-controller.log", "ab") as f:
            self.procs["controller"] = subprocess.Popen(
                [sys.executable, "-m", "controlplane", "gitops-controller", "--kubeconfig", str(self.kubeconfig),
                 "--data-dir", str(self.work / "data"), "--webhook-port", "0", "--metrics-port", str(self.metrics_port),
                 "--no-manifests", "--leader-elect=false"], stdout=f, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        addr = self.work / "data" / "gitops" / "webhook-address"
        deadline = time.monotonic() + 60
        while not (addr.exists() and self._metrics_ok()):
            if self.procs["controller"].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gitops-controller did not start; see " + str(self.work / "gitops-controller.log"))
            time.sleep(0.1)
        self.webhook = addr.read_text().strip()

    def _metrics_ok(self) -> bool:
        try:
            self.metrics()
            return True
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self) -> None:
        for name in ("controller", "git", "apiserver"):
            terminate(self.procs.get(name), 20)
        self.etcd.stop()

    def etcd_revision(self) -> int:
        out = subprocess.run(["etcdctl", "--endpoints", self.etcd.endpoint, "endpoint", "status", "-w", "json"],
                             capture_output=True, text=True, check=True).stdout
        return int(json.loads(out)[0]["Status"]["header"]["revision"])


async def _wait_sync(client: RestClient, rev: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = await client.get(api.SYNCS, "bench", NS)
            if api.is_ready(s) and (s.get("status") or {}).get("lastAppliedRevision", "").endswith(rev):
                return s
        except ApiStatusError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"sync not ready with {rev} within {timeout}s")
        await asyncio.sleep(0.02)


async def _observed(client: RestClient) -> None:
    """Until both objects' status caught up with their spec, plus a moment for the pass to end."""
    deadline = time.monotonic() + 60
    while True:
        objs = [await client.get(res, "bench", NS) for res in (api.GITREPOSITORIES, api.SYNCS)]
        if all((o.get("status") or {}).get("observedGeneration") == o["metadata"]["generation"] and api.is_ready(o)
               for o in objs):
            break
        if time.monotonic() > deadline:
            raise TimeoutError("spec change not observed")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)


async def _reconciles(b: _Bench, kind: str) -> tuple[float, float]:
    m = b.metrics()
    return (_metric(m, "gotk_reconcile_duration_seconds_count", kind=kind),
            _metric(m, "gotk_reconcile_duration_seconds_sum", kind=kind))


async def _noop(b: _Bench, client: RestClient, rounds: int, timeout: float) -> dict:
    c0, s0 = await _reconciles(b, "Sync")
    g0, gs0 = await _reconciles(b, "GitRepository")
    dry0 = _metric(b.metrics(), "gitops_api_dry_runs_total")
    rev0 = b.etcd_revision()
    deadline = time.monotonic() + timeout
    while (await _reconciles(b, "Sync"))[0] < c0 + rounds:
        if time.monotonic() > deadline:
            raise TimeoutError("no-op reconciles did not happen")
        await asyncio.sleep(0.05)
    c1, s1 = await _reconciles(b, "Sync")
    g1, gs1 = await _reconciles(b, "GitRepository")
    writes = b.etcd_revision() - rev0
    return {"sync_reconciles": int(c1 - c0), "sync_reconcile_s": round((s1 - s0) / max(1, c1 - c0), 4),
            "source_reconciles": int(g1 - g0), "source_reconcile_s": round((gs1 - gs0) / max(1, g1 - g0), 4),
            "store_writes": writes, "dry_runs": int(_metric(b.metrics(), "gitops_api_dry_runs_total") - dry0)}


async def run(args: argparse.Namespace) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-gitops-"))
    b = _Bench(work, args)
    out: dict = {"objects": args.objects}
    try:
        repo = work / "work"
        repo.mkdir()
        generate(repo, args.objects)
        (work / "repos").mkdir()
        _git("init", "-q", "--bare", "-b", "main", str(work / "repos" / "bench.git"), cwd=work)
        _git("init", "-q", "-b", "main", cwd=repo)
        _git("add", "-A", cwd=repo)
        _git("commit", "-q", "-m", "1,000 objects", cwd=repo)
        _git("push", "-q", str(work / "repos" / "bench.git"), "HEAD:refs/heads/main", cwd=repo)
        sha = _git("rev-parse", "HEAD", cwd=repo)
        b.start()
        client = RestClient(b.url, lite_http=True)
        try:
            await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            src = {"apiVersion": api.API_VERSION, "kind": "GitRepository", "metadata": {"name": "bench", "namespace": NS},
                   "spec": {"url": f"git://127.0.0.1:{b.git_port}/bench.git", "ref": {"branch": "main"}, "interval": "1h"}}
            sync = {"apiVersion": api.API_VERSION, "kind": "Sync", "metadata": {"name": "bench", "namespace": NS},
                    "spec": {"sourceRef": {"name": "bench"}, "path": "./deploy", "interval": "1h", "prune": True}}
            pid = b.procs["controller"].pid
            cpu0, rev0 = cpu_seconds(pid), b.etcd_revision()
            t0 = time.monotonic()
            await client.create(api.GITREPOSITORIES, src)
            await client.create(api.SYNCS, sync)
            s = await _wait_sync(client, sha, args.timeout)
            out["first_sync_s"] = round(time.monotonic() - t0, 3)
            out["first_sync_controller_cpu_s"] = round(cpu_seconds(pid) - cpu0, 2)
            out["first_sync_etcd_revisions"] = b.etcd_revision() - rev0
            out["first_sync_apply_writes"] = int(_metric(b.metrics(), "gitops_api_writes_total"))
            out["inventory_entries"] = len(s["status"]["inventory"]["entries"])

            # no-op reconciles at a 3 s interval (the spec change itself reconciles once first)
            for res in (api.GITREPOSITORIES, api.SYNCS):
                await client.patch(res, "bench", {"spec": {"interval": "3s"}}, NS)
            await _observed(client)  # the spec change's own pass (a new generation: a full dry run)
            out["noop"] = await _noop(b, client, 2, 30)

            # the same after a restart: an empty apply cache, every object dry-run
            terminate(b.procs["controller"], 20)
            rev0 = b.etcd_revision()
            b.start_controller()
            deadline = time.monotonic() + 60
            while (await _reconciles(b, "Sync"))[0] < 1:
                if time.monotonic() > deadline:
                    raise TimeoutError("no reconcile after restart")
                await asyncio.sleep(0.05)
            c, total = await _reconciles(b, "Sync")
            out["noop_cold"] = {"sync_reconcile_s": round(total / c, 4), "store_writes": b.etcd_revision() - rev0,
                                "dry_runs": int(_metric(b.metrics(), "gitops_api_dry_runs_total"))}

            # push → webhook → live
            await client.create(R.SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": NS},
                                            "data": {"token": base64.b64encode(TOKEN.encode()).decode()}})
            await client.create(api.RECEIVERS, {"apiVersion": api.API_VERSION, "kind": "Receiver",
                                                "metadata": {"name": "github", "namespace": NS},
                                                "spec": {"type": "github", "secretRef": {"name": "hook"}}})
            for res in (api.GITREPOSITORIES, api.SYNCS):
                await client.patch(res, "bench", {"spec": {"interval": "1h"}}, NS)
            await _observed(client)
            runs = []
            for i in range(args.pushes):
                f = repo / "deploy" / "part-001.yaml"
                docs = list(yaml.safe_load_all(f.read_text()))
                target = f"push-{i}"
                docs[0]["data"]["index"] = target
                name = docs[0]["metadata"]["name"]
                f.write_text("---\n".join(yaml.safe_dump(d) for d in docs))
                _git("commit", "-qam", f"push {i}", cwd=repo)
                _git("push", "-q", str(work / "repos" / "bench.git"), "HEAD:refs/heads/main", cwd=repo)
                body = json.dumps({"ref": "refs/heads/main", "repository": {"full_name": "bench"}}).encode()
                sig = "sha256=" + hmac.new(TOKEN.encode(), body, hashlib.sha256).hexdigest()
                t0 = time.monotonic()
                req = urllib.request.Request(f"{b.webhook}/hook/{NS}/github", data=body, method="POST",
                                             headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": sig,
                                                      "Content-Type": "application/json"})
                code = await asyncio.to_thread(lambda: urllib.request.urlopen(req, timeout=10).status)
                accepted = time.monotonic() - t0
                while True:
                    cm = await client.get(R.CONFIGMAPS, name, NS)
                    if cm["data"]["index"] == target:
                        break
                    if time.monotonic() - t0 > 60:
                        raise TimeoutError("pushed change never went live")
                    await asyncio.sleep(0.005)
                runs.append({"code": code, "accepted_s": round(accepted, 3), "live_s": round(time.monotonic() - t0, 3)})
                await asyncio.sleep(0.5)
            out["webhook"] = {"runs": runs, "push_to_live_s_median": statistics.median(r["live_s"] for r in runs),
                              "push_to_live_s_max": max(r["live_s"] for r in runs)}
        finally:
            await client.close()
    finally:
        b.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            out["workdir"] = str(work)
    return out


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gitops", help="GitOps: first sync of 1,000 objects, no-op reconciles, webhook push to live (JSON)")
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--pushes", type=int, default=3)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--apiserver-workers", type=int, default=2)
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs) and print it")
    p.set_defaults(func=lambda a: print(json.dumps(asyncio.run(run(a)), indent=2)) or 0)
