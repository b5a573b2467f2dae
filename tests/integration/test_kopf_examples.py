"""kopf's own end-to-end examples against ``controlplane up`` -- all 14 that kopf's repository runs
in its e2e suite (``tests/e2e/test_examples.py``: every ``examples/*/`` without its own
``test*.py``), the admission one (``17-admission``: kopf serves validating and mutating
webhooks over HTTPS with a self-signed CA and manages their configurations) among them.

The examples and kopf's e2e test are not part of the installed kopf package: they are taken at
run time from kopf's source distribution on PyPI for the installed version (``pip download
kopf==X --no-deps --no-binary :all:``), never committed here. kopf's own test function runs
unchanged (``test_all_examples_are_runnable``): it starts the example with ``KopfRunner``
(``kopf run --all-namespaces --standalone --verbose``), applies and deletes
``examples/obj.yaml`` with ``kubectl`` and checks the operator's log. ``kubectl`` on its PATH is
the real one with this cluster's ``--kubeconfig`` and a private ``--cache-dir``; kopf reads the
same kubeconfig through ``KUBECONFIG``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import kopf
import kubernetes
import pytest
from kopf._core.intents.registries import SmartOperatorRegistry
from kubernetes.config import kube_config

from controlplane.etcd_process import free_port
from tests.fixtures.apiserver import KUBECTL, REPO, make_kubectl

pytestmark = pytest.mark.integration

EXAMPLES = ["01-minimal", "02-children", "03-exceptions", "04-events", "05-handlers", "06-peering",
            "07-subhandlers", "08-events", "13-hooks", "14-daemons", "15-timers", "16-indexing", "17-admission",
            "99-all-at-once"]


@pytest.fixture(scope="module")
def kopf_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kopf's sdist for the installed version, unpacked (examples/, tests/e2e/)."""
    d = tmp_path_factory.mktemp("kopf-sdist")
    res = subprocess.run([sys.executable, "-m", "pip", "download", f"kopf=={kopf.__version__}", "--no-deps",
                          "--no-binary", ":all:", "-d", str(d)],
                         capture_output=True, text=True, timeout=600)
    tars = list(d.glob("kopf-*.tar.gz"))
    if res.returncode != 0 or not tars:
        pytest.fail(f"could not fetch kopf's sdist:\n{res.stdout}\n{res.stderr}")
    with tarfile.open(tars[0]) as t:
        t.extractall(d, filter="data")
    root = d / f"kopf-{kopf.__version__}"
    # the e2e suite's own selection rule (tests/e2e/conftest.py)
    found = sorted(p.parent.name for p in root.glob("examples/*/example.py")
                   if not list(p.parent.glob("test*.py")))
    assert found == EXAMPLES, f"kopf {kopf.__version__}'s e2e examples changed: {found}"
    return root


@pytest.fixture(scope="module")
def up_cluster(tmp_path_factory: pytest.TempPathFactory):
    """``controlplane up`` on a private data dir and port (agent, controllers, scheduler: all of it)."""
    data, port = tmp_path_factory.mktemp("kopf-up") / "data", free_port()
    proc = subprocess.Popen([sys.executable, "-m", "controlplane", "up", "--data-dir", str(data), "--port", str(port)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    deadline, lines = time.monotonic() + 120, []
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line)
                if "ready" in line:
                    break
            if proc.poll() is not None:
                break
        else:
            lines.append("(timed out)")
        if not lines or "ready" not in lines[-1]:
            pytest.fail(f"controlplane up did not get ready: {lines}")
        kubectl = make_kubectl(data / "kubeconfig", data.parent / "kubectl-cache")
        # pods need the default ServiceAccount (the ServiceAccount admission plugin) and its CA
        deadline = time.monotonic() + 60
        while kubectl("get", "serviceaccount", "default", "-n", "default", check=False).returncode != 0:
            assert time.monotonic() < deadline, "no default ServiceAccount"
            time.sleep(0.3)
        yield data, kubectl
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def e2e(kopf_source: Path):
    """kopf's tests/e2e/test_examples.py as a module."""
    spec = importlib.util.spec_from_file_location("kopf_e2e_test_examples", kopf_source / "tests/e2e/test_examples.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def kubectl_on_path(up_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = up_cluster
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "kubectl"
    shim.write_text(f'#!/bin/sh\nexec {KUBECTL} --kubeconfig "{data / "kubeconfig"}" '
                    f'--cache-dir "{tmp_path / "kubectl-cache"}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("KUBECONFIG", str(data / "kubeconfig"))
    # (the kubernetes client reads KUBECONFIG once, when first imported: by an earlier test module)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(data / "kubeconfig"))


@pytest.fixture
def kopf_harness():
    """What kopf's tests/conftest.py does around every test: a fresh default registry (the
    e2e suite's ``registry_factory``: a SmartOperatorRegistry, so each example's handlers are
    its own) and a clean ``kubernetes`` client configuration."""
    old = kopf.get_default_registry()
    kopf.set_default_registry(SmartOperatorRegistry())
    kubernetes.client.configuration.Configuration.set_default(None)
    yield
    kopf.set_default_registry(old)


@pytest.mark.parametrize("example", EXAMPLES)
def test_kopf_example(example: str, kopf_source: Path, up_cluster, e2e, kubectl_on_path, kopf_harness, monkeypatch,
                      caplog):
    monkeypatch.chdir(kopf_source)
    if example == "17-admission":
        # kopf's test applies the object once the operator has logged in; kopf writes its webhook
        # configurations a moment later, so on a busy machine the create could come first and
        # reach no webhook (kopf's own checks pass either way; ours below would not). Its own
        # per-example timing knob waits for the mutating configuration's patch instead.
        key = "examples/17-admission/example.py"
        monkeypatch.setitem(e2e.CONFIGS, key, dataclasses.replace(
            e2e.CONFIGS.get(key, e2e.E2EConfig()), startup_time_limit=30,
            startup_stop_words=[r"Merge-patching the resource with: \{'webhooks': \[\{'name': 'mutate1\."]))
    # kopf's with_crd fixture, as its conftest runs it
    subprocess.run("kubectl apply -f examples/crd.yaml", shell=True, check=True, timeout=30, capture_output=True)
    try:
        e2e.test_all_examples_are_runnable(kopf.OperatorSettings(), None, Path(f"examples/{example}"), caplog)
    finally:
        subprocess.run("kubectl delete -f examples/obj.yaml --ignore-not-found --wait=false", shell=True,
                       timeout=30, capture_output=True)
    if example == "17-admission":
        # kopf's webhooks were called by this apiserver over HTTPS (kopf removes its configurations
        # when it stops): the validating ones and the mutating one selected by the object's label
        for hook in ("authhook", "validate1", "validate_subresources", "mutate1"):
            assert f"Webhook '{hook}' succeeded" in caplog.text, hook
