"""Issue 15 on a real ``controlplane up`` (etcd, apiserver, controller-manager, scheduler,
registry, runc agent): every kill -9 is survived, pods outlive ``up``, ``down`` leaves nothing,
two instances on one machine never meet. Processes are killed by the pids the instance
recorded, never by name. Times are printed (``-s``) as figures, not asserted."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from controlplane.hostcleanup import processes_mentioning
from controlplane.procutil import start_time, tree_pids
from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.up import UpInstance, http_get

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not HAVE_RUNC, reason="needs root and runc")]


def _wait(pred, timeout: float, what: str, interval: float = 0.1, detail=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r}) {detail() if detail else ''}")


class Writer(threading.Thread):
    """Creates ConfigMaps as fast as the apiserver answers; remembers every acknowledged one."""

    def __init__(self, url: str, context, ns: str = "default") -> None:
        super().__init__(daemon=True)
        self.url, self.ns, self.context = url, ns, context
        self.acked: list[str] = []
        self.failed = 0
        self.halt = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.halt.is_set():
            name = f"w-{i}"
            body = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                               "data": {"i": str(i)}}).encode()
            req = urllib.request.Request(f"{self.url}/api/v1/namespaces/{self.ns}/configmaps", data=body,
                                         method="POST", headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=5, context=self.context) as r:
                    if r.status == 201:
                        self.acked.append(name)
                        i += 1
            except urllib.error.HTTPError as e:
                self.failed += 1
                if e.code == 409:  # committed although the answer was lost: also acknowledged now
                    i += 1
            except OSError:
                self.failed += 1
            time.sleep(0.05)


def _pod(kubectl, name: str) -> dict:
    return json.loads(kubectl("get", "pod", name, "-o", "json").stdout)


def _container(pod: dict) -> dict:
    return ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]


def _running(kubectl, name: str):
    def check():
        p = _pod(kubectl, name)
        c = _container(p)
        return p if p["status"].get("phase") == "Running" and "running" in (c.get("state") or {}) else None
    return check


def _apiserver_serving(inst: UpInstance) -> bool:
    return http_get(inst.url + "/readyz", context=inst.admin_tls())[0] == 200


def test_every_kill_comes_back_and_no_acknowledged_write_is_lost(up_factory, tmp_path):
    inst: UpInstance = up_factory("a", env={"CONTROLPLANE_PODGC_PERIOD": "1", "CONTROLPLANE_PODGC_QUARANTINE": "2"})
    kubectl = inst.kubectl(tmp_path / "cache")
    figures: dict[str, float] = {}

    # every component serves its own health
    for comp in ("up", "controller-manager", "scheduler", "agent"):
        code, body = _wait(lambda c=comp: (r := inst.health(c))[0] == 200 and r, 30, f"{comp} /readyz")
        assert "[+]ping ok" in body and "check passed" in body, (comp, body)

    # pod GC: a pod bound to a Node that does not exist is removed
    kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ghost"},
        "spec": {"nodeName": "no-such-node", "containers": [{"name": "c", "image": "busybox"}]}}))
    _wait(lambda: "NotFound" in kubectl("get", "pod", "ghost", check=False).stderr, 60, "orphaned pod collected")

    # a pod on the node: it must survive the agent's kill with the same container
    kubectl("run", "keeper", "--image=busybox", "--restart=Always", "--", "sh", "-c", "sleep 3600")
    cid = _container(_wait(_running(kubectl, "keeper"), 60, "keeper Running"))["containerID"]

    writer = Writer(inst.url, inst.admin_tls())
    writer.start()
    try:
        _wait(lambda: len(writer.acked) >= 5, 30, "first acknowledged writes")
        # one apiserver worker: its supervisor restarts it, the other worker serves meanwhile
        sup = inst.pid("apiserver")
        worker = [p for p in tree_pids(sup) if p != sup][0]
        t0 = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        _wait(lambda: len([p for p in tree_pids(sup) if p != sup and p != worker]) == 2, 30, "worker replaced")
        n = len(writer.acked)
        _wait(lambda: len(writer.acked) > n + 3, 30, "writes acknowledged after the worker kill")
        assert inst.pid("apiserver") == sup  # the apiserver itself did not restart
        figures["apiserver-worker_kill_to_serving_s"] = round(time.monotonic() - t0, 2)
        for comp in ("etcd", "apiserver", "controller-manager", "scheduler", "agent", "registry"):
            old = inst.pid(comp)
            assert old is not None, comp
            t0 = time.monotonic()
            os.kill(old, signal.SIGKILL)
            inst.wait_new_pid(comp, old)
            if comp in ("etcd", "apiserver"):
                _wait(lambda: _apiserver_serving(inst), 60, f"apiserver serving after {comp} kill")
                n = len(writer.acked)
                _wait(lambda: len(writer.acked) > n, 30, f"writes acknowledged again after {comp} kill")
            elif comp == "registry":  # HTTPS for cluster clients: the admin certificate may read
                _wait(lambda: http_get(f"https://127.0.0.1:{_registry_port(inst)}/v2/", context=inst.admin_tls())[0]
                      == 200, 30, "registry")
            else:
                _wait(lambda c=comp: inst.health(c, "healthz")[0] == 200 and inst.pid(c) != old, 60,
                      f"{comp} serving health")
            figures[f"{comp}_kill_to_serving_s"] = round(time.monotonic() - t0, 2)
    finally:
        writer.halt.set()
        writer.join(10)

    # the cluster works end to end again: controllers (after the Lease handover), scheduler, agent
    t0 = time.monotonic()
    kubectl("create", "deployment", "after", "--image=busybox", "--replicas=2", "--", "sleep", "3600")

    def deployed():
        d = json.loads(kubectl("get", "deployment", "after", "-o", "json").stdout)
        return (d.get("status") or {}).get("readyReplicas") == 2
    _wait(deployed, 90, "deployment ready after the kills")
    figures["deployment_ready_after_kills_s"] = round(time.monotonic() - t0, 2)

    # every acknowledged write is there
    names = {c["metadata"]["name"] for c in json.loads(kubectl("get", "configmaps", "-o", "json").stdout)["items"]}
    missing = [n for n in writer.acked if n not in names]
    assert writer.acked and not missing, f"{len(missing)} acknowledged writes lost: {missing[:10]}"

    # the agent's kill did not touch the pod: same container, no restart
    c = _container(_pod(kubectl, "keeper"))
    assert c["containerID"] == cid and c["restartCount"] == 0 and "running" in c["state"]

    # restarts were counted with their cause
    _, metrics = http_get(f"http://127.0.0.1:{inst.metrics_port('up')}/metrics")
    for comp in ("etcd", "apiserver", "controller-manager", "scheduler", "agent", "registry"):
        assert f'controlplane_component_restarts_total{{cause="signal SIGKILL",component="{comp}"}} 1.0' in metrics
    figures["acknowledged_writes"] = len(writer.acked)
    print("\nkill figures:", json.dumps(figures))


def _registry_port(inst: UpInstance) -> int:
    cfg = (inst.data_dir / "registry" / "config.yml").read_text()
    return int(cfg.split("addr: 127.0.0.1:")[1].split()[0])


def test_pods_outlive_a_killed_up_and_are_readopted(up_factory, tmp_path):
    inst: UpInstance = up_factory("b", env={"CONTROLPLANE_PODGC_PERIOD": "1"})
    kubectl = inst.kubectl(tmp_path / "cache")
    kubectl("run", "sleeper", "--image=busybox", "--restart=Always", "--", "sh", "-c", "echo hi; sleep 3600")
    kubectl("run", "crasher", "--image=busybox", "--restart=Always", "--", "sh", "-c", "exit 3")
    before = _container(_wait(_running(kubectl, "sleeper"), 60, "sleeper Running"))

    def looping():
        c = _container(_pod(kubectl, "crasher"))
        return c if c.get("restartCount", 0) >= 2 and (c.get("state") or {}).get("waiting") else None
    crash_before = _wait(looping, 60, "crasher in CrashLoopBackOff")

    # up's helpers: etcd, registry, components, the apiserver's workers (not the containers' conmons)
    children = [inst.pid(c) for c in ("etcd", "apiserver", "controller-manager", "scheduler", "registry", "agent")]
    children += tree_pids(inst.pid("apiserver"))
    inst.kill()  # SIGKILL `up` itself

    # its helpers die with it; only the containers' monitors (conmon) stay
    def survivors():
        return {p: Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in children if start_time(p) is not None}
    _wait(lambda: not survivors() or None, 15, "up's helper processes gone", detail=survivors)
    left = processes_mentioning(inst.data_dir)
    assert left and all("conmon" in cmd for cmd in left.values()), left

    t0 = time.monotonic()
    inst.start()
    after = _container(_wait(_running(kubectl, "sleeper"), 60, "sleeper Running again"))
    readopt_s = round(time.monotonic() - t0, 2)
    assert after["containerID"] == before["containerID"] and after["restartCount"] == before["restartCount"]
    assert kubectl("logs", "sleeper").stdout == "hi\n"
    # the crash loop goes on from where it was
    crash_after = _wait(lambda: (c := _container(_pod(kubectl, "crasher"))).get("restartCount", 0) >
                        crash_before["restartCount"] and c, 120, "crasher restarted again")
    assert crash_after["restartCount"] == crash_before["restartCount"] + 1
    print(f"\nre-adoption: up restart to pod Running again {readopt_s}s")


def test_two_instances_side_by_side_with_one_node_name(up_factory, tmp_path):
    node = f"twin-{uuid.uuid4().hex[:6]}"
    insts = [up_factory(n, node_name=node) for n in ("x", "y")]
    for i, inst in enumerate(insts):
        k = inst.kubectl(tmp_path / f"cache{i}")
        k("create", "deployment", "hello", "--image=busybox", "--replicas=2", "--",
          "sh", "-c", "echo hello from $(hostname); sleep 3600")
        _wait(lambda: json.loads(k("get", "deployment", "hello", "-o", "json").stdout).get("status", {})
              .get("readyReplicas") == 2, 90, f"instance {i} deployment ready")
        assert k("logs", "deploy/hello").stdout.startswith("hello from hello-")
        assert k("exec", "deploy/hello", "--", "cat", "/etc/hostname").stdout.startswith("hello-")
        assert json.loads(k("get", "nodes", "-o", "json").stdout)["items"][0]["metadata"]["name"] == node
    ids = [json.loads((inst.data_dir / "instance.json").read_text())["hostID"] for inst in insts]
    assert ids[0] != ids[1] and all(i.startswith(node) for i in ids)

    # taking one down leaves the other's pods alone
    x, y = insts
    x.stop()
    rep = x.down()
    assert rep["rc"] == 0 and not rep["leftovers"], rep
    k = y.kubectl(tmp_path / "cache1")
    pods = json.loads(k("get", "pods", "-o", "json").stdout)["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    assert k("exec", "deploy/hello", "--", "true").returncode == 0


def test_a_hung_component_is_killed_by_its_liveness_probe_and_restarted(up_factory, tmp_path):
    """A component that stops answering without exiting (SIGSTOP: no /livez answer) is killed
    by ``up``'s liveness probe after the failure threshold and restarted, the restart counted
    with the cause ``liveness probe failed``."""
    inst: UpInstance = up_factory("live", args=[
        "--liveness-period", "1", "--liveness-initial-delay", "1", "--liveness-failure-threshold", "3",
        "--disable-agent", "--disable", "registry,gitops-controller,dashboard,ingress-controller"])
    old = inst.pid("scheduler")
    assert old is not None
    t0 = time.monotonic()
    os.kill(old, signal.SIGSTOP)
    try:
        new = inst.wait_new_pid("scheduler", old, 30)
    finally:
        try:
            os.kill(old, signal.SIGCONT)
        except ProcessLookupError:
            pass
    took = time.monotonic() - t0
    assert not Path(f"/proc/{old}").exists() or "Z" in Path(f"/proc/{old}/stat").read_text().split()[2]
    assert new != old and took >= 2.0, took  # three failed probes a second apart, not at once
    _wait(lambda: inst.health("scheduler", "livez")[0] == 200, 30, "the new scheduler live")
    _, metrics = http_get(f"http://127.0.0.1:{inst.metrics_port('up')}/metrics")
    assert 'controlplane_component_restarts_total{cause="liveness probe failed",component="scheduler"} 1.0' in metrics
    # the live components were left alone
    assert 'cause="liveness probe failed",component="controller-manager"' not in metrics

