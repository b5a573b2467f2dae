"""kopf 1.45 against the real apiserver (over real etcd): a standalone operator
(``kopf_widget_operator.py``) on the Widget CRD (``crds/widgets.kopf.example.com.yaml``)
handles create, update and delete with its finalizer, patches ``/status`` and posts events;
and across an apiserver restart during its active watches every write is handled exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest

from controlplane.etcd_process import free_port
from tests.fixtures import poll
from tests.fixtures.apiserver import make_kubectl

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRD = REPO / "crds" / "widgets.kopf.example.com.yaml"
OPERATOR = Path(__file__).with_name("kopf_widget_operator.py")
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.3) -> Any:
    return poll.wait_for(what, check, timeout, every)


class Operator:
    """``kopf run --standalone`` in a child process, with a liveness endpoint to know it's up."""

    def __init__(self, kubeconfig: Path, namespace: str, workdir: Path) -> None:
        self.log = workdir / "handlers.jsonl"
        self.out = workdir / "kopf.log"
        self.port = free_port()
        self.log.touch()
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kopf", "run", "--standalone", "-n", namespace,
                 "--liveness", f"http://127.0.0.1:{self.port}/healthz", str(OPERATOR)],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=workdir,
                env={**os.environ, "KUBECONFIG": str(kubeconfig), "WIDGET_LOG": str(self.log)})
        wait_for("kopf liveness", self._alive, timeout=90)

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"kopf exited {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def count(self, handler: str, **match: Any) -> int:
        return sum(1 for c in self.calls() if c["handler"] == handler
                   and all(c.get(k) == v for k, v in match.items()))

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.out.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def env(fresh_apiserver, tmp_path):
    """(kubectl, namespace, start_operator) on a private apiserver with the Widget CRD."""
    kubectl = make_kubectl(fresh_apiserver.kubeconfig, tmp_path / "kubectl-cache")
    kubectl("apply", "-f", str(CRD))
    wait_for("widgets served", lambda: kubectl("get", "widgets", "-A", check=False).returncode == 0)
    ns = f"kopf-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    operators: list[Operator] = []

    def start() -> Operator:
        op = Operator(fresh_apiserver.kubeconfig, ns, tmp_path)
        operators.append(op)
        return op

    yield kubectl, ns, start
    for op in operators:
        op.stop()


def widget(name: str, ns: str, size: int) -> str:
    return json.dumps({"apiVersion": "kopf.example.com/v1", "kind": "Widget",
                       "metadata": {"name": name, "namespace": ns}, "spec": {"size": size}})


def get(kubectl, ns: str, name: str) -> dict[str, Any] | None:
    res = kubectl("get", "widget", name, "-n", ns, "-o", "json", check=False)
    return json.loads(res.stdout) if res.returncode == 0 else None


def test_operator_handles_create_update_delete(env):
    kubectl, ns, start = env
    op = start()

    kubectl("apply", "-f", "-", input=widget("w1", ns, 1))
    wait_for("create handled", lambda: op.count("create", name="w1"))
    obj = wait_for("status patched", lambda: (o := get(kubectl, ns, "w1")) and
                   (o.get("status") or {}).get("phase") == "Ready" and o)
    assert obj["spec"] == {"size": 1, "color": "green"}  # CRD default applied
    assert obj["status"]["observedSize"] == 1
    assert obj["status"]["created"] == {"created": True}  # kopf stores handler results in status
    assert FINALIZER in obj["metadata"]["finalizers"]
    assert op.calls()[0] == {"handler": "create", "name": "w1", "size": 1, "color": "green"}

    events = wait_for("event posted", lambda: [
        e for e in json.loads(kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
        if e.get("reason") == "WidgetCreated" and e["involvedObject"]["name"] == "w1"])
    assert events[0]["involvedObject"]["kind"] == "Widget" and "size 1" in events[0]["message"]

    kubectl("patch", "widget", "w1", "-n", ns, "--type=merge", "-p", '{"spec":{"size":3}}')
    wait_for("update handled", lambda: op.count("update", name="w1", size=3))
    wait_for("status updated", lambda: (get(kubectl, ns, "w1") or {}).get("status", {}).get("observedSize") == 3)

    table = kubectl("get", "widgets", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "SIZE", "COLOR", "PHASE", "AGE"]
    assert table[1].split()[:4] == ["w1", "3", "green", "Ready"]

    bad = kubectl("apply", "-f", "-", input=widget("w2", ns, -1), check=False)
    assert bad.returncode != 0 and "spec.size" in bad.stderr

    kubectl("delete", "widget", "w1", "-n", ns, timeout=120)  # waits for kopf's finalizer removal
    assert get(kubectl, ns, "w1") is None
    assert op.count("delete", name="w1") == 1
    assert (op.count("create", name="w1"), op.count("update", name="w1")) == (1, 1)


def test_operator_survives_apiserver_restart_without_loss_or_duplicates(env, fresh_apiserver):
    kubectl, ns, start = env
    op = start()
    names = [f"r-{i}" for i in range(8)]

    for n in names[:4]:
        kubectl("apply", "-f", "-", input=widget(n, ns, 1))
    wait_for("first creates", lambda: all(op.count("create", name=n) for n in names[:4]))
    for n in names[:4]:
        wait_for(f"{n} settled", lambda n=n: (get(kubectl, ns, n) or {}).get("status", {}).get("phase") == "Ready")

    fresh_apiserver.restart()  # kopf's watches break here and must resume

    for n in names[4:]:
        kubectl("apply", "-f", "-", input=widget(n, ns, 1))
    for n in names[:4]:
        kubectl("patch", "widget", n, "-n", ns, "--type=merge", "-p", '{"spec":{"size":10}}')
    wait_for("writes after restart handled",
             lambda: all(op.count("create", name=n) for n in names[4:])
             and all(op.count("update", name=n, size=10) for n in names[:4]))
    for n in names:
        wait_for(f"{n} status", lambda n=n: (get(kubectl, ns, n) or {}).get("status", {}).get("phase") == "Ready")

    fresh_apiserver.restart()
    kubectl("delete", "widgets", "--all", "-n", ns, timeout=180)
    wait_for("deletes handled", lambda: all(op.count("delete", name=n) for n in names))

    calls = Counter((c["handler"], c["name"]) for c in op.calls())
    expected = Counter({("create", n): 1 for n in names})
    expected.update({("update", n): 1 for n in names[:4]})
    expected.update({("delete", n): 1 for n in names})
    assert calls == expected, op.tail()
    assert op.proc.poll() is None, op.tail()
