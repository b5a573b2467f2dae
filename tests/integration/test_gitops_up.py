"""``controlplane up`` runs the GitOps controller: its CRDs are installed, a file already in
``DATA_DIR/manifests`` is applied at start (visible as a ManifestFile), and the webhook
receiver answers on the address it wrote to ``DATA_DIR/gitops/webhook-address``."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from controlplane.etcd_process import free_port
from tests.fixtures.apiserver import make_kubectl
from tests.integration.test_api_up import _start_up, _stop

pytestmark = pytest.mark.integration


def test_up_runs_gitops_with_the_manifests_folder(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    (data / "manifests").mkdir(parents=True)
    (data / "manifests" / "hello.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: from-manifests, namespace: default}\ndata: {a: b}\n")
    proc, _ = _start_up(data, port)
    try:
        kubectl = make_kubectl(data / "kubeconfig", tmp_path / "cache")
        deadline = time.monotonic() + 60
        cm = None
        while time.monotonic() < deadline:
            r = kubectl("get", "configmap", "from-manifests", "-o", "json", check=False)
            if r.returncode == 0:
                cm = json.loads(r.stdout)
                break
            time.sleep(0.2)
        assert cm and cm["data"] == {"a": "b"}
        mf = json.loads(kubectl("get", "manifestfile", "hello", "-o", "json").stdout)
        assert mf["spec"]["path"] == str((data / "manifests" / "hello.yaml").resolve())
        assert "No resources found" in kubectl("get", "gitrepositories,syncs,receivers", "-A").stderr
        addr = (data / "gitops" / "webhook-address").read_text().strip()
        with urllib.request.urlopen(addr + "/healthz", timeout=5) as r:
            assert r.status == 200
    finally:
        assert _stop(proc) == 0
    assert not (data / "gitops" / "webhook-address").exists()
