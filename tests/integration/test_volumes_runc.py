"""Persistent volumes with real runc pods: a StatefulSet with ``volumeClaimTemplates`` on a
``local-path`` class (``rancher.io/local-path``, WaitForFirstConsumer, Delete) scheduled by the
real scheduler (VolumeBinding writes the selected node, waits for the binding), provisioned by
the controller-manager's local-path provisioner into the agent's storage dir, mounted by the
agent. A file written by the pod survives the pod's deletion (its replacement reads it); after a
scale-down and the claim's deletion, the volume goes and the agent removes the directory. A
pod with a claim that does not exist stays Pending with Kubernetes' message."""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
import uuid

import pytest
import yaml

from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.apiserver import make_kubectl
from tests.fixtures.poll import wait_for
from tests.fixtures.scheduler import running_scheduler

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(400)]

_wait = functools.partial(wait_for, every=0.5)  # a kubectl per check: not too often


@pytest.fixture(scope="module")
def scheduler(apiserver, tmp_path_factory):
    yield from running_scheduler(apiserver.component_kubeconfig("scheduler"), tmp_path_factory.mktemp("pv-sched"))


def test_statefulset_claims_survive_pod_replacement(apiserver, controller_manager, scheduler, start_agent,
                                                    tmp_path):
    if not HAVE_RUNC:
        pytest.fail("runc tests need root and runc")
    k = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    agent = start_agent()
    node = agent.node
    tag = uuid.uuid4().hex[:5]
    ns, sc = f"pvr-{tag}", f"local-path-{tag}"

    def diag() -> str:
        return (k("get", "pods,pvc,pv", "-A", "-o", "wide", check=False).stdout + "\n" +
                k("get", "events", "-n", ns, check=False).stdout + "\nagent:\n" + agent.log_tail(30) +
                "\nscheduler:\n" + scheduler.log_tail(15) + "\ncontroller-manager:\n" +
                controller_manager.log_tail(15))

    def get(*args: str) -> dict:
        return json.loads(k("get", *args, "-o", "json").stdout)

    k("create", "namespace", ns)
    k("apply", "-f", "-", input=yaml.safe_dump({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": sc},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Delete"}))
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
           "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                    "podManagementPolicy": "Parallel",
                    "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "nodeSelector": {"kubernetes.io/hostname": node},
                        "containers": [{"name": "c", "image": "busybox", "command": [
                            "sh", "-c", "[ -f /data/first ] || echo $(hostname) > /data/first; "
                            "date >> /data/log; exec sleep 3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                        "accessModes": ["ReadWriteOnce"], "storageClassName": sc,
                        "resources": {"requests": {"storage": "64Mi"}}}}]}}
    try:
        # node agent announces its storage dir
        n = get("node", node) if _wait("node registered", lambda: k("get", "node", node, check=False).returncode == 0,
                                       60, diag=diag) else {}
        storage = n["metadata"]["annotations"]["storage.controlplane.io/local-path-dir"]
        assert storage == str(agent.root.resolve() / "storage")

        k("apply", "-f", "-", input=yaml.safe_dump(sts))
        for i in (0, 1):
            res = k("wait", "-n", ns, "--for=condition=Ready", f"pod/db-{i}", "--timeout=150s", timeout=170, check=False)
            if res.returncode != 0:
                pytest.fail(f"db-{i} not ready: {res.stderr}\n{diag()}")
        claims = {c["metadata"]["name"]: c for c in get("pvc", "-n", ns)["items"]}
        assert sorted(claims) == ["data-db-0", "data-db-1"]
        c0 = claims["data-db-0"]
        assert c0["status"]["phase"] == "Bound" and c0["metadata"]["labels"] == {"app": "db"}
        assert c0["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
        assert not c0["metadata"].get("ownerReferences")  # Retain/Retain
        pv = get("pv", c0["spec"]["volumeName"])
        path = pv["spec"]["hostPath"]["path"]
        assert path == f"{storage}/pvc-{c0['metadata']['uid']}_{ns}_data-db-0"
        first = k("exec", "-n", ns, "db-0", "--", "cat", "/data/first").stdout.strip()
        assert first == "db-0"
        with open(f"{path}/first") as f:  # the same directory on the node
            assert f.read().strip() == "db-0"

        # the pod goes; its replacement mounts the same claim and reads the file
        uid0 = get("pod", "-n", ns, "db-0")["metadata"]["uid"]
        k("delete", "pod", "-n", ns, "db-0", "--wait=true", timeout=90)
        _wait("db-0 replaced", lambda: k("get", "pod", "-n", ns, "db-0", "-o", "jsonpath={.metadata.uid}",
                                         check=False).stdout not in ("", uid0), 60, diag=diag)
        res = k("wait", "-n", ns, "--for=condition=Ready", "pod/db-0", "--timeout=120s", timeout=140, check=False)
        if res.returncode != 0:
            pytest.fail(f"db-0 not ready again: {res.stderr}\n{diag()}")
        assert k("exec", "-n", ns, "db-0", "--", "cat", "/data/first").stdout.strip() == "db-0"
        assert len(k("exec", "-n", ns, "db-0", "--", "cat", "/data/log").stdout.strip().splitlines()) == 2

        # scale down: the claim stays (Retain); deleting it deletes the volume and its directory
        c1 = claims["data-db-1"]
        path1 = get("pv", c1["spec"]["volumeName"])["spec"]["hostPath"]["path"]
        k("scale", "statefulset", "-n", ns, "db", "--replicas=1")
        _wait("db-1 gone", lambda: k("get", "pod", "-n", ns, "db-1", check=False).returncode != 0, 90, diag=diag)
        assert get("pvc", "-n", ns, "data-db-1")["status"]["phase"] == "Bound"
        k("delete", "pvc", "-n", ns, "data-db-1", "--wait=true", timeout=60)
        _wait("volume deleted", lambda: k("get", "pv", c1["spec"]["volumeName"], check=False).returncode != 0,
              60, diag=diag)
        _wait("directory removed", lambda: not os.path.exists(path1), 60, diag=diag)
        assert os.path.exists(path)  # the other claim's data is untouched

        # a pod naming a claim that does not exist stays Pending with Kubernetes' message
        k("apply", "-n", ns, "-f", "-", input=yaml.safe_dump({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan"},
            "spec": {"nodeSelector": {"kubernetes.io/hostname": node},
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"]}],
                     "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "nope"}}]}}))

        def unschedulable() -> str:
            evs = get("events", "-n", ns, "--field-selector", "involvedObject.name=orphan")["items"]
            return next((e["message"] for e in evs if e.get("reason") == "FailedScheduling"), "")
        msg = _wait("orphan unschedulable", unschedulable, 60, diag=diag)
        assert 'nodes are available: persistentvolumeclaim "nope" not found.' in msg, msg
        assert get("pod", "-n", ns, "orphan")["status"]["phase"] == "Pending"
    finally:
        k("delete", "namespace", ns, "--wait=true", "--timeout=120s", check=False, timeout=150)
        k("delete", "sc", sc, "--ignore-not-found", check=False)
        for pv in json.loads(k("get", "pv", "-o", "json", check=False).stdout or '{"items": []}')["items"]:
            if pv["spec"].get("storageClassName") == sc:
                k("delete", "pv", pv["metadata"]["name"], "--wait=false", check=False)
        # the agent removes the directories of the deleted volumes; whatever is left goes here
        storage_dir = agent.root / "storage"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and storage_dir.exists() and any(storage_dir.iterdir()):
            time.sleep(0.5)
        shutil.rmtree(storage_dir, ignore_errors=True)
