"""``controlplane chaos --duration N``: the soak of issue 15 item 6, on a real HA cluster made
for it (docs/reliability.md, "Chaos soak").

1. **Cluster**: three servers (``up --cluster-init``, then ``up --server URL --token T`` twice)
   on free loopback ports under a work dir (``--data-dir``, default a temporary one, removed
   at the end unless ``--keep``), agents off; one ``agent --simulated`` process with two
   nodes (chaos restarts it when it dies, as ``up`` would restart its agent).
2. **Load** for ``--duration`` seconds: ``--writers`` clients (``RestClient``, balanced over the
   three apiservers) create, update (with the resourceVersion they last saw: a lost write shows
   as a conflict) and delete ConfigMaps they own; ``kubectl`` creates and deletes others through
   a random server; a Deployment rolls (template changes and scaling); ``--watchers`` watches
   on the namespace stay open (resumed from their last resourceVersion, relisted on 410).
3. **Faults**, one every ``--fault-interval`` seconds, kinds in shuffled rounds: SIGKILL of the
   etcd leader's process, of a server's apiserver, of the leading controller-manager and
   scheduler (by the holder of their Lease), of the agent. Only pids recorded by this run's
   instances (``DIR/run/*.pid``) are ever killed. Recovery time per fault, from the kill: etcd
   member and apiserver until the killed one serves again and a write goes through (a new probe
   write every 0.2 s, each given ``PROBE_TIMEOUT_S``: one stuck behind a dead etcd leader must
   not stand for the cluster; what a write in flight at the kill sees is ``writeAtKillS``);
   leaders until the Lease has another live holder; the agent until every simulated node's
   Lease is renewed.
4. **Checker** (what etcd's robustness tests verify): every acknowledged write present in the
   final state (a writer's last acknowledged value, a deleted object absent), each watch's
   resourceVersions strictly increasing (a repeat is a duplicate, a lower one a reordering),
   every acknowledged create/update seen by every watch that covered it (lost events), each
   watch's replayed state equal to the final list; the Deployment converged (replicas exact,
   all updated and available, no orphan pods or ReplicaSets).

Prints one JSON object (``docs/reliability.md`` lists the fields); exit status 0 when nothing
was lost and the state converged, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import signal
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.client.resources import CONFIGMAPS, DEPLOYMENTS, LEASES, NAMESPACES, PODS, REPLICASETS
from controlplane.client.rest import ApiStatusError, RestClient, load_kubeconfig
from controlplane.cmd import bootstrap
from controlplane.etcd_process import free_port
from controlplane.log import get_logger
from controlplane.storage import etcd_admin

log = get_logger(__name__)
COMPONENT = bootstrap.Component("chaos", metrics_port=False, uvloop=False)
REPO = Path(__file__).resolve().parents[2]
NS = "chaos"
FAULTS = ("etcd-leader", "apiserver", "controller-manager-leader", "scheduler-leader", "agent")
PROBE_TIMEOUT_S = 2.0  # a recovery probe write not answered by then counts as failed; the next is a new one
LEAN = ["--disable-agent", "--disable", "registry,gitops-controller,dashboard,dns", "--etcd-disable-snapshots"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chaos", help="soak an HA cluster with load and random kills; print what was lost (JSON)")
    p.add_argument("--duration", type=float, default=600.0, help="seconds of load and faults")
    p.add_argument("--fault-interval", type=float, default=10.0, help="seconds between faults")
    p.add_argument("--data-dir", type=Path, default=None, help="work dir (default: a temporary one)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, data) afterwards")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--writers", type=int, default=4)
    p.add_argument("--watchers", type=int, default=3)
    p.add_argument("--keys", type=int, default=8, help="ConfigMaps per writer")
    p.add_argument("--converge-timeout", type=float, default=120.0)
    p.add_argument("--faults", default=",".join(FAULTS), help=f"kinds of fault injected (comma list of {', '.join(FAULTS)})")
    p.add_argument("--cluster-cidr", default=None,
                   help="the cluster's pod CIDR, with --service-cidr (default: free ones picked by the first server; "
                        "servers without an agent route neither, so a caller that allocates CIDRs for others, "
                        "such as a test run, passes its own)")
    p.add_argument("--service-cidr", default=None, help="the cluster's Service CIDR (with --cluster-cidr)")
    p.set_defaults(func=lambda a: bootstrap.run(COMPONENT, a, _main))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None without values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q * len(s) // 100)) - 1))
    return round(s[k], 2)


# -- the cluster ---------------------------------------------------------------------------------

@dataclass
class Server:
    data_dir: Path
    port: int = 0  # picked at the first start: a port picked minutes early may be taken by then
    proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def pid(self, component: str) -> int | None:
        try:
            return int((self.data_dir / "run" / f"{component}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def etcd_url(self) -> str:
        d = json.loads((self.data_dir / "server" / "etcd.json").read_text())
        return f"https://127.0.0.1:{d['clientPort']}"

    async def start(self, args: list[str], timeout: float = 300.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        err = open(self.data_dir.parent / f"{self.data_dir.name}-up.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controlplane", "up", "--data-dir", str(self.data_dir), "--port", str(self.port),
            "--node-name", self.data_dir.name, *args, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=err,
            start_new_session=True)
        err.close()
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if b"ready" not in line:
            log = self.data_dir.parent / f"{self.data_dir.name}-up.log"
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except asyncio.TimeoutError:
                pass
            try:
                tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-4000:]
            except OSError:
                tail = ""
            raise RuntimeError(f"{self.data_dir.name}: up did not get ready (exit {self.proc.returncode}; "
                               f"{log} ends:\n{tail})")

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "controlplane", "down", "--data-dir",
                                                    str(self.data_dir), cwd=REPO, stdout=asyncio.subprocess.DEVNULL,
                                                    stderr=asyncio.subprocess.DEVNULL)
        await proc.wait()


def admin_tls(s: Server) -> ssl.SSLContext:
    pki = s.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def etcd_tls(s: Server) -> etcd_admin.TLS:
    pki = s.data_dir / "pki"
    return (str(pki / "etcd/ca.crt"), str(pki / "apiserver-etcd-client.crt"), str(pki / "apiserver-etcd-client.key"))


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_recorded(s: Server, component: str) -> int | None:
    """SIGKILL the pid ``s`` recorded for ``component`` (only when its command line names
    ``s``'s data dir or one of its files: never anything else)."""
    pid = s.pid(component)
    if pid is None or str(s.data_dir) not in _cmdline(pid):
        return None
    os.kill(pid, signal.SIGKILL)
    return pid


class Agent:
    """``agent --simulated`` with two nodes, restarted whenever it exits (until ``stop``)."""

    def __init__(self, work: Path, kubeconfig: Path, prefix: str) -> None:
        self.work, self.kubeconfig, self.prefix = work, kubeconfig, prefix
        self.proc: asyncio.subprocess.Process | None = None
        self.nodes = [f"{prefix}-0", f"{prefix}-1"]

    async def spawn(self) -> None:
        err = open(self.work / "agent.log", "ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controlplane", "agent", "--simulated", "--nodes", "2", "--prefix", self.prefix,
            "--kubeconfig", str(self.kubeconfig), "--lease-interval", "2", "--lease-duration", "10",
            "--root", str(self.work / "agent"), cwd=REPO, stdout=asyncio.subprocess.DEVNULL, stderr=err,
            start_new_session=True)
        err.close()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.proc is None or self.proc.returncode is not None:
                await self.spawn()
            assert self.proc is not None
            waiter = asyncio.ensure_future(self.proc.wait())
            halt = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, halt}, return_when=asyncio.FIRST_COMPLETED)
            halt.cancel()
            if not waiter.done():
                waiter.cancel()
            elif not stop.is_set():
                await asyncio.sleep(0.5)  # up's first restart delay is 0; a little backoff here

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()


# -- the history ---------------------------------------------------------------------------------

@dataclass
class History:
    acknowledged: int = 0
    failed: int = 0  # answered with an error: not applied (or resolved by reading back)
    unknown: int = 0  # no answer: resolved by reading back
    # key -> the state the last acknowledged (or read-back) write left: None = absent, else data value
    expect: dict[str, str | None] = field(default_factory=dict)
    acked_rvs: list[tuple[int, str, float]] = field(default_factory=list)  # (rv, key, when)
    conflicts: int = 0  # an update with the last seen resourceVersion refused: a lost write or a lost answer
    kubectl_acked: int = 0
    kubectl_failed: int = 0


def _cm(name: str, value: str, rv: str | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if rv:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"v": value}}


async def writer(client: RestClient, wid: int, keys: int, hist: History, stop: asyncio.Event,
                 rng: random.Random) -> None:
    """Sequential creates/updates/deletes of ``w<wid>-k<j>``; an unanswered write is resolved by
    reading the object back before that key is written again."""
    seen: dict[str, str | None] = {}  # key -> last resourceVersion seen (None: absent)
    n = 0
    while not stop.is_set():
        key = f"w{wid}-k{rng.randrange(keys)}"
        rv = seen.get(key)
        n += 1
        value = f"{wid}-{n}"
        intended: str | None = value
        try:
            if rv is None:
                obj: dict | None = await client.create(CONFIGMAPS, _cm(key, value), NS)
            elif rng.random() < 0.25:
                intended = None
                await client.delete(CONFIGMAPS, key, NS)
                obj = None
            else:
                obj = await client.update(CONFIGMAPS, _cm(key, value, rv))
            hist.acknowledged += 1
            if obj is None:
                seen[key] = None
                hist.expect[key] = None
            else:
                seen[key] = obj["metadata"]["resourceVersion"]
                hist.expect[key] = value
                hist.acked_rvs.append((int(seen[key]), key, time.monotonic()))
        except ApiStatusError as e:
            if e.code >= 500 or e.code == 429:
                hist.unknown += 1
            else:
                hist.failed += 1
            await _read_back(client, key, seen, hist, stop)
            if e.conflict or e.already_exists or e.not_found:
                # only this writer writes this key: the object is not as its last acknowledged write
                # left it, unless the refused request was a retry of one that was applied (the value
                # read back is the one it sent)
                if hist.expect.get(key) != intended:
                    hist.conflicts += 1
        await asyncio.sleep(0.01)


async def _read_back(client: RestClient, key: str, seen: dict[str, str | None], hist: History,
                     stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            obj = await client.get(CONFIGMAPS, key, NS)
            seen[key] = obj["metadata"]["resourceVersion"]
            hist.expect[key] = (obj.get("data") or {}).get("v")
            return
        except ApiStatusError as e:
            if e.not_found:
                seen[key] = None
                hist.expect[key] = None
                return
            await asyncio.sleep(0.2)


async def kubectl_load(servers: list[Server], work: Path, hist: History, stop: asyncio.Event,
                       rng: random.Random) -> None:
    """kubectl creates ``kc-<n>`` and deletes earlier ones through a random server."""
    cache = work / "kubectl-cache"
    live: list[str] = []
    n = 0
    while not stop.is_set():
        s = rng.choice(servers)
        if live and rng.random() < 0.3:
            name = live[rng.randrange(len(live))]
            args = ["delete", "configmap", name, "-n", NS, "--wait=false"]
        else:
            n += 1
            name = f"kc-{n}"
            args = ["create", "configmap", name, "-n", NS, f"--from-literal=v={n}"]
        proc = await asyncio.create_subprocess_exec(
            "/usr/bin/kubectl", "--kubeconfig", str(s.kubeconfig), "--cache-dir", str(cache), "--request-timeout=5s",
            *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(cache)})
        _, err = await proc.communicate()
        if proc.returncode == 0:
            hist.kubectl_acked += 1
            hist.expect[name] = str(n) if args[0] == "create" else None
        else:
            hist.kubectl_failed += 1
            hist.expect[name] = "?"  # the outcome is unknown: whatever the final state shows is acceptable
        if args[0] == "create":
            live.append(name)
        else:
            live.remove(name)
        await asyncio.sleep(0.3)


@dataclass
class WatchLog:
    events: list[tuple[str, int, str, str | None]] = field(default_factory=list)  # (type, rv, name, value)
    start_rv: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (last rv seen, relist rv): 410 windows
    state: dict[str, str | None] = field(default_factory=dict)


async def watcher(client: RestClient, wl: WatchLog, stop: asyncio.Event, started: asyncio.Event) -> None:
    first = True
    while not stop.is_set():
        lst = await _retry(lambda: client.list(CONFIGMAPS, NS), stop)
        if lst is None:
            return
        rv = lst["metadata"]["resourceVersion"]
        wl.state = {i["metadata"]["name"]: (i.get("data") or {}).get("v") for i in lst["items"]}
        if first:
            wl.start_rv = int(rv)
            first = False
            started.set()
        else:
            last = wl.events[-1][1] if wl.events else wl.start_rv
            wl.gaps.append((last, int(rv)))
        try:
            async for etype, obj in client.watch(CONFIGMAPS, NS, resource_version=rv, resume=True, stop=stop):
                if etype == "BOOKMARK":
                    continue
                name = obj["metadata"]["name"]
                value = (obj.get("data") or {}).get("v")
                wl.events.append((etype, int(obj["metadata"]["resourceVersion"]), name, value))
                wl.state[name] = None if etype == "DELETED" else value
        except ApiStatusError as e:
            if e.code != 410:
                log.info("chaos watch failed; relisting", error=str(e))
            await asyncio.sleep(0.2)


async def _retry(fn: Any, stop: asyncio.Event) -> Any:
    while not stop.is_set():
        try:
            return await fn()
        except ApiStatusError:
            await asyncio.sleep(0.3)
    return None


def _deployment(replicas: int, rev: int) -> dict:
    labels = {"app": "roller"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "roller", "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": labels, "annotations": {"chaos/rev": str(rev)}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


async def roller(client: RestClient, stop: asyncio.Event, rng: random.Random, want: dict[str, int]) -> None:
    """Roll the Deployment (a new template) and scale it every few seconds; ``want`` keeps the
    last acknowledged spec."""
    rev = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 4.0)
            return
        except asyncio.TimeoutError:
            pass
        rev += 1
        replicas = rng.randint(2, 4)
        patch = {"spec": {"replicas": replicas, "template": {"metadata": {"annotations": {"chaos/rev": str(rev)}}}}}
        try:
            await client.patch(DEPLOYMENTS, "roller", json.dumps(patch), NS, patch_type="merge")
            want.update(replicas=replicas, rev=rev)
        except ApiStatusError:
            want["uncertain"] = 1  # the read at the end decides


# -- faults --------------------------------------------------------------------------------------

class Faults:
    def __init__(self, servers: list[Server], agent: Agent, client: RestClient, rng: random.Random,
                 kinds: list[str]) -> None:
        self.servers, self.agent, self.client, self.rng, self.kinds = servers, agent, client, rng, kinds
        self.recovery: dict[str, list[float]] = {k: [] for k in FAULTS}
        self.unrecovered: dict[str, int] = {k: 0 for k in FAULTS}
        self.injected: dict[str, int] = {k: 0 for k in FAULTS}
        self.takeover: list[float] = []  # etcd leader kills: until the cluster commits writes again
        self.takeover_seen = False
        # a write sent at the kill, awaited to its answer (ok or not): what a request in flight sees
        self.write_at_kill: dict[str, list[float]] = {k: [] for k in FAULTS}

    async def run(self, stop: asyncio.Event, interval: float, abort: asyncio.Event) -> None:
        """A fault every ``interval`` until ``stop``; a fault's recovery is measured to its end
        (or ``abort``)."""
        order: list[str] = []
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), interval)
                return
            except asyncio.TimeoutError:
                pass
            if not order:
                order = list(self.kinds)
                self.rng.shuffle(order)
            kind = order.pop()
            try:
                await self.inject(kind, abort)
            except Exception as e:  # noqa: BLE001 - a fault that could not be injected is logged, not fatal
                log.warning("chaos fault not injected", kind=kind, error=str(e))

    async def inject(self, kind: str, stop: asyncio.Event, timeout: float = 60.0) -> None:
        t0 = time.monotonic()
        if kind == "etcd-leader":
            tls = etcd_tls(self.servers[0])
            leader = await etcd_admin.leader([s.etcd_url() for s in self.servers], tls)
            s = next((s for s in self.servers if leader is not None and s.etcd_url() in leader.client_urls), None)
            if s is None or kill_recorded(s, "etcd") is None:
                raise RuntimeError("no etcd leader to kill")
            t0 = time.monotonic()

            async def check() -> bool:
                # takeover: the cluster commits writes again (a leader, the old one restarted or another)
                if not self.takeover_seen and await self._write_ok():
                    self.takeover.append(time.monotonic() - t0)
                    self.takeover_seen = True
                # the killed member serves again; each poll given 1 s (a restarting member may take a
                # connection and not answer yet: a poll waiting on it must not outlast its return)
                st = await etcd_admin.status(s.etcd_url(), tls, timeout=1.0)
                return self.takeover_seen and bool(st.leader) and await self._write_ok()
            self.takeover_seen = False
        elif kind == "apiserver":
            s = self.rng.choice(self.servers)
            old = s.pid("apiserver")
            workers = _children(old) if old is not None else []
            if kill_recorded(s, "apiserver") is None:
                raise RuntimeError("no apiserver pid")
            t0 = time.monotonic()

            async def check() -> bool:
                # the restarted apiserver serves: a new pid recorded, the killed one's workers gone
                # (they answer until they notice their supervisor died), /readyz 200, a write commits
                return (s.pid("apiserver") not in (None, old) and not any(_alive(w) for w in workers)
                        and await asyncio.to_thread(_readyz, s) and await self._write_ok())
        elif kind in ("controller-manager-leader", "scheduler-leader"):
            comp = kind.removesuffix("-leader")
            lease = await self.client.get(LEASES, f"kube-{comp}", "kube-system")
            holder = lease["spec"].get("holderIdentity") or ""
            s = next((s for s in self.servers if s.pid(comp) is not None and holder.endswith(f"_{s.pid(comp)}")),
                     None)
            if s is None or kill_recorded(s, comp) is None:
                raise RuntimeError(f"the {comp} leader {holder!r} is none of ours")
            t0 = time.monotonic()

            async def check() -> bool:
                cur = await self.client.get(LEASES, f"kube-{comp}", "kube-system")
                return (cur["spec"].get("holderIdentity") or holder) != holder
        else:  # agent
            if self.agent.proc is None or self.agent.proc.returncode is not None:
                raise RuntimeError("the agent is not running")
            self.agent.proc.kill()
            t0 = time.monotonic()
            killed_at = time.time()

            async def check() -> bool:
                for node in self.agent.nodes:
                    lease = await self.client.get(LEASES, node, "kube-node-lease")
                    renew = lease["spec"].get("renewTime") or ""
                    if _parse_time(renew) <= killed_at:
                        return False
                return True
        self.injected[kind] += 1
        log.info("chaos fault injected", kind=kind)
        at_kill = asyncio.ensure_future(self._timed_write(kind, t0)) if kind in ("etcd-leader", "apiserver") else None
        try:
            await self._await_recovery(kind, check, t0, stop, timeout)
        finally:
            if at_kill is not None:
                await asyncio.gather(at_kill, return_exceptions=True)

    async def _await_recovery(self, kind: str, check: Any, t0: float, stop: asyncio.Event, timeout: float) -> None:
        while time.monotonic() - t0 < timeout and not stop.is_set():
            try:
                if await check():
                    self.recovery[kind].append(time.monotonic() - t0)
                    log.info("chaos fault recovered", kind=kind, seconds=round(time.monotonic() - t0, 2))
                    return
            except (ApiStatusError, etcd_admin.EtcdAdminError, OSError):
                pass
            await asyncio.sleep(0.2)
        self.unrecovered[kind] += 1

    async def _write_ok(self) -> bool:
        """A new probe write, given PROBE_TIMEOUT_S to be answered: one stuck behind the dead etcd
        leader (etcd holds it for its request timeout) must not hide that new writes commit
        again; that stall is measured apart (``_timed_write``)."""
        try:
            await asyncio.wait_for(self._probe_write(), PROBE_TIMEOUT_S)
            return True
        except (ApiStatusError, asyncio.TimeoutError):
            return False

    async def _probe_write(self) -> None:
        await self.client.patch(CONFIGMAPS, "chaos-probe", json.dumps({"data": {"t": str(time.time())}}), NS,
                                patch_type="merge")

    async def _timed_write(self, kind: str, t0: float) -> None:
        """One write sent at the kill and awaited to its answer (or the client's timeout)."""
        try:
            await self._probe_write()
        except ApiStatusError:
            pass
        self.write_at_kill[kind].append(time.monotonic() - t0)


def _children(pid: int) -> list[int]:
    """The child pids of ``pid`` (the apiserver supervisor's workers)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _readyz(s: Server) -> bool:
    try:
        with urllib.request.urlopen(s.url + "/readyz", timeout=2, context=admin_tls(s)) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _parse_time(text: str) -> float:
    if not text:
        return 0.0
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- the checker ---------------------------------------------------------------------------------

def check_watch(wl: WatchLog, acked: list[tuple[int, str, float]], final: dict[str, str | None]) -> dict[str, int]:
    """Duplicates, reorderings and lost events of one watch (pure). An event is (resourceVersion,
    name): writes the apiserver batches into one etcd transaction share a revision, as a
    transaction's keys do in etcd."""
    dup = reordered = 0
    seen: set[tuple[int, str]] = set()
    last = wl.start_rv
    for _, rv, name, _ in wl.events:
        if (rv, name) in seen:
            dup += 1
        elif rv < last:
            reordered += 1
        seen.add((rv, name))
        last = max(last, rv)
    end = last
    lost = 0
    for rv, key, _ in acked:
        if rv <= wl.start_rv or rv > end or any(a < rv <= b for a, b in wl.gaps):
            continue
        if (rv, key) not in seen:
            lost += 1
    state_mismatch = sum(1 for k in set(final) | set(wl.state)
                         if k.startswith(("w", "kc-")) and final.get(k) != wl.state.get(k))
    return {"duplicated": dup, "reordered": reordered, "lost": lost, "stateMismatch": state_mismatch}


def check_state(expect: dict[str, str | None], final: dict[str, str | None]) -> list[str]:
    """Keys whose final state is not what their last acknowledged write left (pure); ``"?"``
    (an unanswered kubectl write) accepts any state."""
    return sorted(k for k, v in expect.items() if v != "?" and final.get(k) != v)


async def converge(client: RestClient, want: dict[str, int], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            d = await client.get(DEPLOYMENTS, "roller", NS)
            rss = (await client.list(REPLICASETS, NS))["items"]
            pods = (await client.list(PODS, NS))["items"]
        except ApiStatusError:
            await asyncio.sleep(1)
            continue
        spec, st = d["spec"], d.get("status") or {}
        replicas = spec["replicas"]
        rs_uids = {r["metadata"]["uid"] for r in rss}
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        orphans = [p["metadata"]["name"] for p in live
                   if not any(o.get("uid") in rs_uids for o in p["metadata"].get("ownerReferences") or [])]
        orphan_rs = [r["metadata"]["name"] for r in rss
                     if not any(o.get("uid") == d["metadata"]["uid"] for o in r["metadata"].get("ownerReferences") or [])]
        rev = (spec["template"]["metadata"].get("annotations") or {}).get("chaos/rev")
        current = [p for p in live if (p["metadata"].get("annotations") or {}).get("chaos/rev") == rev]
        last = {"replicas": replicas, "pods": len(live), "updatedPods": len(current),
                "readyReplicas": st.get("readyReplicas", 0), "updatedReplicas": st.get("updatedReplicas", 0),
                "availableReplicas": st.get("availableReplicas", 0), "orphanPods": len(orphans),
                "orphanReplicaSets": len(orphan_rs),
                "specAsAcknowledged": "uncertain" in want or (replicas == want.get("replicas")
                                                               and rev == str(want.get("rev")))}
        if (st.get("observedGeneration") == d["metadata"].get("generation") and len(live) == replicas
                and len(current) == replicas and st.get("updatedReplicas") == replicas
                and st.get("readyReplicas") == replicas and st.get("availableReplicas") == replicas
                and not orphans and not orphan_rs):
            last["converged"] = True
            return last
        await asyncio.sleep(1)
    last["converged"] = False
    return last


# -- main ----------------------------------------------------------------------------------------

async def soak(args: argparse.Namespace, work: Path, stop_all: asyncio.Event) -> dict[str, Any]:
    rng = random.Random(args.seed)
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    if not kinds or set(kinds) - set(FAULTS):
        raise SystemExit(f"--faults: kinds are {', '.join(FAULTS)}")
    if bool(args.cluster_cidr) != bool(args.service_cidr):
        raise SystemExit("--cluster-cidr and --service-cidr go together")
    run_id = uuid.uuid4().hex[:6]
    servers = [Server(work / f"s{i + 1}") for i in range(3)]
    agent: Agent | None = None
    tasks: list[asyncio.Task] = []
    t_start = time.monotonic()
    try:
        # the caller's cluster and service CIDRs, else free ones picked by the first server;
        # the others share them
        if args.cluster_cidr and args.service_cidr:
            cidrs = {"cluster_cidr": args.cluster_cidr, "service_cidr": args.service_cidr}
            await servers[0].start(["--cluster-init", "--cluster-cidr", cidrs["cluster_cidr"],
                                    "--service-cidr", cidrs["service_cidr"], *LEAN])
        else:
            await servers[0].start(["--cluster-init", "--pick-cidrs", *LEAN])
            cidrs = json.loads((servers[0].data_dir / "cidrs.json").read_text())
        token = (servers[0].data_dir / "server" / "token").read_text().strip()
        for s in servers[1:]:
            await s.start(["--server", servers[0].url, "--token", token, "--cluster-cidr", cidrs["cluster_cidr"],
                           "--service-cidr", cidrs["service_cidr"], *LEAN])
        formed = time.monotonic() - t_start
        kubeconfig = servers[0].kubeconfig
        _, headers, ssl_ctx = load_kubeconfig(kubeconfig)
        # every server's URL configured: the balancer fails over between them
        client = RestClient(",".join(s.url for s in servers), headers=headers, ssl_ctx=ssl_ctx, user_agent="chaos",
                            discover=True, probe_interval=0.5, discover_interval=2.0, request_timeout=10.0)
        await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await client.create(CONFIGMAPS, _cm("chaos-probe", "0"), NS)
        agent = Agent(work, kubeconfig, f"chaos-{run_id}")
        agent_stop = asyncio.Event()
        tasks.append(asyncio.ensure_future(agent.run(agent_stop)))
        await client.create(DEPLOYMENTS, _deployment(3, 0), NS)
        want: dict[str, int] = {"replicas": 3, "rev": 0}

        hist = History()
        load_stop = asyncio.Event()
        watch_stop = asyncio.Event()
        logs = [WatchLog() for _ in range(args.watchers)]
        for wl in logs:
            started = asyncio.Event()
            tasks.append(asyncio.ensure_future(watcher(client, wl, watch_stop, started)))
            await asyncio.wait_for(started.wait(), 60)
        for w in range(args.writers):
            tasks.append(asyncio.ensure_future(writer(client, w, args.keys, hist, load_stop, random.Random(rng.random()))))
        tasks.append(asyncio.ensure_future(kubectl_load(servers, work, hist, load_stop, random.Random(rng.random()))))
        tasks.append(asyncio.ensure_future(roller(client, load_stop, random.Random(rng.random()), want)))
        faults = Faults(servers, agent, client, random.Random(rng.random()), kinds)
        fault_stop = asyncio.Event()
        fault_task = asyncio.ensure_future(faults.run(fault_stop, args.fault_interval, stop_all))

        try:
            await asyncio.wait_for(stop_all.wait(), args.duration)
        except asyncio.TimeoutError:
            pass
        fault_stop.set()
        await fault_task  # a fault in progress finishes its recovery measurement
        load_stop.set()
        await asyncio.gather(*tasks[len(logs) + 1:], return_exceptions=True)
        # every write is in: a last write to the probe ConfigMap marks the end; the watches catch
        # up with it (then have seen every event before it), then stop
        marker = await _retry(lambda: client.patch(CONFIGMAPS, "chaos-probe", json.dumps({"data": {"t": "end"}}), NS,
                                                   patch_type="merge"), stop_all)
        end_rv = int(marker["metadata"]["resourceVersion"]) if marker else 0
        final_list = await _retry(lambda: client.list(CONFIGMAPS, NS), stop_all) or {"items": [], "metadata": {}}
        final_rv = int(final_list["metadata"].get("resourceVersion") or 0)
        final = {i["metadata"]["name"]: (i.get("data") or {}).get("v") for i in final_list["items"]}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any((wl.events[-1][1] if wl.events else 0) < end_rv for wl in logs):
            await asyncio.sleep(0.2)
        caught_up = sum(1 for wl in logs if (wl.events[-1][1] if wl.events else 0) >= end_rv)
        watch_stop.set()
        for t in tasks[1:len(logs) + 1]:
            t.cancel()
        await asyncio.gather(*tasks[1:len(logs) + 1], return_exceptions=True)
        state = await converge(client, want, args.converge_timeout)
        agent_stop.set()
        await asyncio.gather(tasks[0], return_exceptions=True)
        await client.close()
        if args.keep:
            (work / "watches.json").write_text(json.dumps([{"startRV": wl.start_rv, "gaps": wl.gaps,
                                                            "events": wl.events} for wl in logs]))

        expect = {k: v for k, v in hist.expect.items()}
        lost_keys = check_state(expect, final)
        watch = [check_watch(wl, hist.acked_rvs, final) for wl in logs]
        recovery = {k: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99),
                        "max": round(max(v), 2) if v else None, "unrecovered": faults.unrecovered[k]}
                    for k, v in faults.recovery.items()}
        result = {
            "durationS": args.duration, "clusterFormedS": round(formed, 1), "servers": len(servers),
            "operations": {"acknowledged": hist.acknowledged + hist.kubectl_acked,
                           "client": hist.acknowledged, "kubectl": hist.kubectl_acked,
                           "failed": hist.failed + hist.kubectl_failed, "unanswered": hist.unknown,
                           "conflicts": hist.conflicts, "lost": len(lost_keys), "lostKeys": lost_keys[:20]},
            "watch": {"watchers": len(logs), "events": sum(len(wl.events) for wl in logs),
                      "lost": sum(w["lost"] for w in watch), "duplicated": sum(w["duplicated"] for w in watch),
                      "reordered": sum(w["reordered"] for w in watch),
                      "stateMismatch": sum(w["stateMismatch"] for w in watch),
                      "relists": sum(len(wl.gaps) for wl in logs), "caughtUp": caught_up,
                      "finalResourceVersion": final_rv},
            "faults": {"injected": sum(faults.injected.values()), "byKind": faults.injected},
            "recoveryS": recovery,
            "etcdLeaderTakeoverS": {"n": len(faults.takeover), "p50": percentile(faults.takeover, 50),
                                    "p99": percentile(faults.takeover, 99)},
            "writeAtKillS": {k: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99),
                                 "max": round(max(v), 2) if v else None}
                             for k, v in faults.write_at_kill.items() if v},
            "deployment": state,
        }
        result["ok"] = (not lost_keys and hist.conflicts == 0 and caught_up == len(logs) and result["watch"]["lost"] == 0 and result["watch"]["duplicated"] == 0
                        and result["watch"]["reordered"] == 0 and result["watch"]["stateMismatch"] == 0
                        and bool(state.get("converged")))
        return result
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if agent is not None:
            await agent.stop()
        for s in reversed(servers):
            await s.stop()


async def _main(ctx: bootstrap.Context) -> int:
    args = ctx.args
    made = args.data_dir is None
    work = Path(tempfile.mkdtemp(prefix="controlplane-chaos-")) if made else args.data_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = await soak(args, work, ctx.stop)
        result["workDir"] = str(work) if args.keep or not made else None
    finally:
        if made and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0 if result["ok"] else 1
