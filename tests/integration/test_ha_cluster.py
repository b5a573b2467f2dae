"""Issue 15 item 5 on real ``controlplane up`` processes: three servers on loopback ports of one
machine (k3s's ``--cluster-init`` and ``--server URL --token T``, the third etcd-only with
``--disable-apiserver``) form a three-member etcd cluster with two apiservers; killing the server whose etcd member leads loses no acknowledged write, a
client configured with only that server's URL fails over by itself (the client-side balancer
over ``default/kubernetes`` Endpoints), the killed server rejoins; the second server then leaves for good and
``kubectl delete node`` of it removes its etcd member (k3s's etcd member controller), after which its
``up`` refuses to start; ``up --cluster-reset`` makes a lone survivor a cluster again;
``controlplane etcd-snapshot
save/restore`` and scheduled snapshots on a single server. Agents, the registry and GitOps are
left out (``--disable-agent --disable ...``) to keep it lean (the second server runs its agent for
the removal: its Node is the one deleted): the node side is ``test_reliability_up.py``'s. Times are printed (``-s``), not asserted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from controlplane.client.resources import CONFIGMAPS
from controlplane.cmd import etcdmembers
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.storage import etcd_admin
from tests.fixtures.apiserver import REPO
from tests.fixtures.up import UpInstance, http_get, stop_all

pytestmark = pytest.mark.integration

LEAN = ["--disable-agent", "--disable", "registry,gitops-controller,dashboard,dns", "--etcd-disable-snapshots"]
WITH_AGENT = [a for a in LEAN if a != "--disable-agent"]


def _wait(pred, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _net(inst: UpInstance) -> list[str]:
    return ["--cluster-cidr", inst.net.cluster_cidr, "--service-cidr", inst.net.service_cidr]


def _etcd_tls(inst: UpInstance) -> etcd_admin.TLS:
    pki = inst.data_dir / "pki"
    return (str(pki / "etcd/ca.crt"), str(pki / "apiserver-etcd-client.crt"), str(pki / "apiserver-etcd-client.key"))


def _etcd_url(inst: UpInstance) -> str:
    d = json.loads((inst.data_dir / "server" / "etcd.json").read_text())
    return f"https://127.0.0.1:{d['clientPort']}"


class ClientWriter(threading.Thread):
    """Creates ConfigMaps through one ``RestClient`` (its balancer fails over between the
    apiservers); remembers every acknowledged create and when the writes stopped and resumed."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(daemon=True)
        self.kubeconfig = kubeconfig
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.last_ok = 0.0
        self.gaps: list[float] = []
        self.halt = threading.Event()
        self.urls: list[str] = []

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        async with RestClient.from_kubeconfig(self.kubeconfig, discover=True, probe_interval=0.5,
                                              discover_interval=1.0, request_timeout=5.0) as c:
            i = 0
            while not self.halt.is_set():
                name = f"ha-{i}"
                try:
                    await c.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                                                "data": {"i": str(i)}}, "default")
                    self._ok(name)
                    i += 1
                except ApiStatusError as e:
                    if e.already_exists:  # committed, the answer lost: acknowledged now
                        self._ok(name)
                        i += 1
                    else:
                        self.errors.append(f"{e.code} {e.reason}")
                        await asyncio.sleep(0.1)
                self.urls = c.endpoints
                await asyncio.sleep(0.02)

    def _ok(self, name: str) -> None:
        now = time.monotonic()
        if self.last_ok and now - self.last_ok > 1.0:
            self.gaps.append(now - self.last_ok)
        self.last_ok = now
        self.acked.append(name)


def _names(inst: UpInstance) -> set[str]:
    async def go():
        async with RestClient.from_kubeconfig(inst.kubeconfig) as c:
            items = (await c.list(CONFIGMAPS, namespace="default"))["items"]
            return {i["metadata"]["name"] for i in items}
    return asyncio.run(go())


def test_three_servers_lose_one_and_carry_on(up_factory, tmp_path):
    t0 = time.monotonic()
    s1: UpInstance = up_factory("s1", args=["--cluster-init", *LEAN], node_name="ha-s1")
    token = (s1.data_dir / "server" / "token").read_text().strip()
    assert token.startswith("K10") and "::server:" in token
    servers = [s1]
    # the shape: three etcd members, two apiservers (s3 is an etcd-only server)
    for n, more in ((2, []), (3, ["--disable-apiserver"])):
        servers.append(up_factory(f"s{n}", args=["--server", s1.url, "--token", token, *LEAN, *more],
                                  node_name=f"ha-s{n}", net=s1.net))  # one cluster: one set of CIDRs
    formed = time.monotonic() - t0
    assert servers[2].ready_line.get("etcd") and "server" not in servers[2].ready_line
    apiservers = servers[:2]

    # three voting members, three apiservers published
    mems = asyncio.run(etcd_admin.members([_etcd_url(s1)], _etcd_tls(s1)))
    assert len(mems) == 3 and not any(m.is_learner for m in mems), mems
    kubectl = s1.kubectl(tmp_path / "cache")

    def published():
        ep = json.loads(kubectl("get", "endpoints", "kubernetes", "-o", "json").stdout)
        return sorted(p["port"] for s in ep.get("subsets") or [] for p in s["ports"])
    _wait(lambda: published() == sorted(s.port for s in apiservers), 30, "two apiservers in default/kubernetes")
    # a joining server with a wrong token is refused before it touches etcd
    wrong = token.rsplit(":", 1)[0] + ":wrong"
    r = subprocess.run([sys.executable, "-m", "controlplane", "up", "--data-dir", str(tmp_path / "bad"), "--port", "0",
                        "--server", s1.url, "--token", wrong, "--pick-cidrs", *LEAN], cwd=REPO, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "refused the token" in r.stderr, r.stderr[-2000:]
    assert len(asyncio.run(etcd_admin.members([_etcd_url(s1)], _etcd_tls(s1)))) == 3

    # an agent joins with the server token (k3s: the same token for servers and agents), through a
    # joined server: TLS bootstrap pinned by the token's CA hash, a node client certificate
    from controlplane.agent.bootstrap import node_kubeconfig
    from controlplane.pki.servertoken import parse
    tok = parse(token)
    node_cfg = asyncio.run(node_kubeconfig(tmp_path / "node", servers[1].url, "ha-node", tok.password, tok.ca_hash))

    async def whoami():
        async with RestClient.from_kubeconfig(node_cfg) as me:
            return await me.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert asyncio.run(whoami())["status"]["userInfo"]["username"] == "system:node:ha-node"

    # the server whose etcd member leads dies; a client knows only the URL of its apiserver (of s1's
    # when it is the etcd-only server)
    leader = asyncio.run(etcd_admin.leader([_etcd_url(s) for s in servers], _etcd_tls(s1)))
    assert leader is not None
    victim = next(s for s in servers if _etcd_url(s) in leader.client_urls)
    others = [s for s in servers if s is not victim]
    readers = [s for s in others if s in apiservers]
    writer = ClientWriter((victim if victim in apiservers else s1).kubeconfig)
    writer.start()
    try:
        _wait(lambda: len(writer.acked) >= 20 and len(writer.urls) == 2, 30, "writes and discovered apiservers")
        before = len(writer.acked)
        victim.kill()  # SIGKILL of up: etcd (the leader), apiserver and the rest die with it
        killed_at = time.monotonic()
        _wait(lambda: len(writer.acked) >= before + 20, 60, "writes resuming through another apiserver")
        resumed = writer.last_ok - killed_at
        # a new etcd leader among the survivors
        new_leader = _wait(lambda: asyncio.run(etcd_admin.leader([_etcd_url(s) for s in others], _etcd_tls(s1))),
                           30, "a new etcd leader")
        assert new_leader.id != leader.id
    finally:
        writer.halt.set()
        writer.join(30)
    acked = set(writer.acked)
    stored = _names(readers[0])
    assert acked <= stored, f"acknowledged writes lost: {sorted(acked - stored)[:10]}"
    assert all(_names(r) == stored for r in readers)

    # the killed server comes back on its data dir (no --server needed) and sees everything
    t1 = time.monotonic()
    victim.start()
    rejoined = time.monotonic() - t1
    if victim in apiservers:
        assert acked <= _names(victim)
        assert http_get(victim.url + "/readyz", context=victim.admin_tls())[0] == 200
    mems = asyncio.run(etcd_admin.members([_etcd_url(s) for s in others], _etcd_tls(s1)))
    assert len(mems) == 3 and all(m.started for m in mems)

    removed_s = _remove_server(servers, kubectl)
    # quorum lost for good (k3s's disaster recovery): every server stopped, s1 reset to a
    # single-member cluster keeping its data, started alone
    assert stop_all(servers) == [0, 0, 0]
    r = subprocess.run([sys.executable, "-m", "controlplane", "up", "--data-dir", str(s1.data_dir), "--port",
                        str(s1.port), "--cluster-reset", *_net(s1)], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and '"reset"' in r.stdout, r.stderr[-2000:]
    s1.start()
    assert acked <= _names(s1)
    assert len(asyncio.run(etcd_admin.members([_etcd_url(s1)], _etcd_tls(s1)))) == 1
    print(json.dumps({"victim": victim.data_dir.name, "clusterFormedS": round(formed, 1), "acknowledged": len(acked), "lost": len(acked - stored),
                      "writesResumedAfterS": round(resumed, 2), "clientErrorsDuringFailover": len(writer.errors),
                      "rejoinS": round(rejoined, 1), "memberRemovedS": round(removed_s, 1)}))


def _remove_server(servers: list[UpInstance], kubectl) -> float:
    """k3s's member removal: s2 leaves for good (``up`` stopped, ``controlplane down``), ``kubectl
    delete node`` it; the server leading ``kube-system/controlplane-etcd`` removes its etcd member
    and then lets the Node go; the two members left take writes; s2's ``up`` refuses to start."""
    s1, s2, s3 = servers
    tls = _etcd_tls(s1)
    # s2 restarted with its agent, which registers its Node (only now: one machine's routes of an
    # agent's pod network would make the other servers' restarts refuse the shared CIDRs)
    assert s2.stop() == 0
    s2.args = [a for a in s2.args if a != "--disable-agent"]
    s2.start()

    def marked():
        r = kubectl("get", "node", "ha-s2", "-o", "json", check=False)
        if r.returncode != 0:
            return None
        md = json.loads(r.stdout)["metadata"]
        ok = (md.get("labels", {}).get(etcdmembers.ETCD_ROLE_LABEL) == "true"
              and etcdmembers.FINALIZER in (md.get("finalizers") or []))
        return md if ok else None
    md = _wait(marked, 90, "s2's Node marked as an etcd member", interval=1.0)
    s2_member = md["annotations"][etcdmembers.NODE_NAME_ANNOTATION]
    before = asyncio.run(etcd_admin.members([_etcd_url(s1)], tls))
    assert s2_member in {m.name for m in before} and len(before) == 3

    assert s2.stop() == 0
    rep = s2.down()
    assert rep["rc"] == 0 and not rep["leftovers"], rep
    t0 = time.monotonic()
    kubectl("delete", "node", "ha-s2", "--timeout=90s", timeout=120)  # waits for the finalizer
    removed_s = time.monotonic() - t0
    after = asyncio.run(etcd_admin.members([_etcd_url(s1)], tls))
    assert len(after) == 2 and s2_member not in {m.name for m in after}, after
    assert all(m.started and not m.is_learner for m in after)
    assert kubectl("get", "node", "ha-s2", check=False).returncode != 0
    ev = [e for e in json.loads(kubectl("get", "events", "-n", "default", "-o", "json").stdout)["items"]
          if e.get("reason") == "EtcdMemberRemoved" and e["involvedObject"].get("name") == "ha-s2"]
    assert ev and s2_member in ev[0]["message"], ev
    # the two members left keep a quorum: writes go on, and both hold them
    kubectl("create", "configmap", "after-member-removal", "--from-literal=a=1")
    assert "after-member-removal" in _names(s1)
    for s in (s1, s3):
        st = asyncio.run(etcd_admin.status(_etcd_url(s), tls))
        assert st.leader in {m.id for m in after}

    # the removed server's up refuses: it must be wiped and joined again
    r = subprocess.run([sys.executable, "-m", "controlplane", "up", "--data-dir", str(s2.data_dir), "--port",
                        str(s2.port), "--node-name", "ha-s2", *_net(s2), *WITH_AGENT],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "was removed from the cluster" in r.stderr and "wiped and joined again" in r.stderr, \
        r.stderr[-2000:]
    assert s2.down()["rc"] == 0
    return removed_s


def _snapshot_cmd(data_dir: Path, *args: str) -> dict | list:
    r = subprocess.run([sys.executable, "-m", "controlplane", "etcd-snapshot", *args, "--data-dir", str(data_dir)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def test_etcd_snapshot_save_restore_and_schedule(up_factory, tmp_path):
    inst: UpInstance = up_factory("snap", node_name="snap", args=[
        "--cluster-init", "--disable-agent", "--disable", "registry,gitops-controller,dashboard,dns",
        "--etcd-snapshot-schedule-cron", "* * * * * */2", "--etcd-snapshot-retention", "2"])
    kubectl = inst.kubectl(tmp_path / "cache")
    kubectl("create", "configmap", "before", "--from-literal=a=1")
    saved = _snapshot_cmd(inst.data_dir, "save")
    assert Path(saved["path"]).is_file() and saved["size"] > 0
    assert Path(saved["path"]).name.startswith("on-demand-")
    kubectl("create", "configmap", "after", "--from-literal=a=1")

    # scheduled ones every 2 s, kept 2 deep (the on-demand one is not pruned)
    def scheduled():
        names = [s["name"] for s in _snapshot_cmd(inst.data_dir, "ls")]
        sched = [n for n in names if n.startswith("etcd-snapshot-")]
        return names if len(sched) == 2 and any(n.startswith("on-demand-") for n in names) else None
    _wait(scheduled, 30, "two scheduled snapshots beside the on-demand one", interval=0.5)

    # restore refuses while up runs, works once it is stopped
    r = subprocess.run([sys.executable, "-m", "controlplane", "etcd-snapshot", "restore", saved["path"],
                        "--data-dir", str(inst.data_dir)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "stop it first" in r.stderr
    assert inst.stop() == 0
    out = _snapshot_cmd(inst.data_dir, "restore", saved["path"])
    assert Path(out["old"]).is_dir()
    inst.start()
    assert "before" in kubectl("get", "configmaps", "-o", "name").stdout
    assert "after" not in kubectl("get", "configmaps", "-o", "name").stdout

    # k3s's --cluster-reset-restore-path does the same from up (and exits)
    assert inst.stop() == 0
    r = subprocess.run([sys.executable, "-m", "controlplane", "up", "--data-dir", str(inst.data_dir), "--port",
                        str(inst.port), "--cluster-reset", "--cluster-reset-restore-path", saved["path"], *_net(inst)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '"reset"' in r.stdout, r.stderr[-2000:]
