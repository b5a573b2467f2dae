"""``kubectl debug`` against a real agent running runc pods (its own test CIDRs, real CNI):
an ephemeral container with ``--target`` sees the target container's processes (its PID
namespace), reaches the pod's server on 127.0.0.1 (the pod's network namespace), ends with its
exit code in ``ephemeralContainerStatuses`` and is never restarted; ``kubectl logs -c``,
``kubectl debug -i`` (attach with stdin) and ``kubectl exec -c`` work on ephemeral containers;
deleting the pod leaves no runc container, bundle, mount or cgroup behind."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
import yaml

from controlplane.runtime import cgroups
from controlplane.runtime.runc import mounts_under
from tests.fixtures.agent import HAVE_RUNC, AgentProcess, _delete_node, leftovers
from tests.fixtures.apiserver import make_kubectl
from tests.integration.test_streams import PtyKubectl

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(300)]

APP_CMD = ("mkdir -p /www && echo hello-from-app > /www/index.html && httpd -p 8080 -h /www"
           " && exec sleep 31337")


@pytest.fixture(scope="module")
def debug_env(apiserver, local_registry, tmp_path_factory):
    """One agent and a pod ``web`` whose ``app`` container serves HTTP on 8080 and whose PID 1
    is ``sleep 31337``."""
    if not HAVE_RUNC:
        pytest.fail("ephemeral container tests need root and runc")
    work = tmp_path_factory.mktemp("ephemeral")
    kubectl = make_kubectl(apiserver.kubeconfig, work / "kc")
    node = f"e{uuid.uuid4().hex[:6]}"
    agent = AgentProcess(work / node, apiserver, node, local_registry.url)
    agent.start()
    ns = f"eph-{uuid.uuid4().hex[:6]}"
    try:
        kubectl("create", "namespace", ns)
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
               "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "app", "image": "busybox", "command": ["sh", "-c", APP_CMD]}]}}
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(pod))
        res = kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/web", "--timeout=120s", timeout=150, check=False)
        if res.returncode != 0:
            pytest.fail(f"pod not ready: {res.stderr}\nagent:\n{agent.log_tail(40)}")
        yield {"ns": ns, "node": node, "agent": agent, "kubectl": kubectl, "work": work}
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        agent.stop()
        agent.cleanup()
        _delete_node(apiserver, node)
        assert leftovers(agent.root / "runtime", node) == []


def _pod(env) -> dict:
    return json.loads(env["kubectl"]("get", "pod", "-n", env["ns"], "web", "-o", "json").stdout)


def _ephemeral_status(env, name: str, state: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        pod = _pod(env)
        st = next((s for s in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
                   if s["name"] == name), None)
        if st is not None and state in st["state"]:
            return st
        if time.monotonic() > deadline:
            pytest.fail(f"{name} never {state}: {json.dumps(pod.get('status'), indent=1)}\n"
                        f"{env['agent'].log_tail(30)}")
        time.sleep(0.3)


def test_debug_targets_the_app_container(debug_env):
    env, k, ns = debug_env, debug_env["kubectl"], debug_env["ns"]
    pod_ip = _pod(env)["status"]["podIP"]
    k("debug", "-n", ns, "web", "--image=busybox", "--target=app", "-c", "dbg", "--",
      "sh", "-c", "ps; wget -qO- http://127.0.0.1:8080/; ip -4 -o addr show eth0; exit 7")
    st = _ephemeral_status(env, "dbg", "terminated")
    term = st["state"]["terminated"]
    assert term["exitCode"] == 7 and term["reason"] == "Error"
    assert st["restartCount"] == 0 and st["ready"] is False and st["containerID"].startswith("runc://")
    out = k("logs", "-n", ns, "web", "-c", "dbg").stdout
    # the target's PID namespace: its `sleep 31337` is PID 1 there, next to httpd
    assert any(line.split()[0] == "1" and line.endswith("sleep 31337") for line in out.splitlines()), out
    assert "httpd -p 8080" in out
    # the pod's network namespace: its loopback server and its address
    assert "hello-from-app" in out
    assert f"inet {pod_ip}/" in out
    # never restarted, and the app container was not disturbed
    time.sleep(2)
    pod = _pod(env)
    [st] = [s for s in pod["status"]["ephemeralContainerStatuses"] if s["name"] == "dbg"]
    assert st["state"]["terminated"]["exitCode"] == 7 and st["restartCount"] == 0
    [app] = pod["status"]["containerStatuses"]
    assert app["restartCount"] == 0 and "running" in app["state"]
    assert pod["status"]["phase"] == "Running"


def test_debug_without_target_has_its_own_pids(debug_env):
    env, k, ns = debug_env, debug_env["kubectl"], debug_env["ns"]
    k("debug", "-n", ns, "web", "--image=busybox", "-c", "alone", "--", "sh", "-c", "ps; exit 0")
    st = _ephemeral_status(env, "alone", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 0 and st["state"]["terminated"]["reason"] == "Completed"
    out = k("logs", "-n", ns, "web", "-c", "alone").stdout
    assert "sleep 31337" not in out and "ps" in out


def test_interactive_debug_and_exec(debug_env):
    env, k, ns = debug_env, debug_env["kubectl"], debug_env["ns"]
    # kubectl debug -i: created, waited for, attached; our stdin reaches the shell
    res = k("debug", "-i", "-n", ns, "web", "--image=busybox", "--target=app", "-c", "shell", "--", "sh",
            input="echo hi-$((6*7)); ps | grep -c 'sleep 31337'; exit 3\n", timeout=120, check=False)
    assert "hi-42" in res.stdout, (res.stdout, res.stderr)
    st = _ephemeral_status(env, "shell", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 3
    # exec and attach into a running ephemeral container
    k("debug", "-n", ns, "web", "--image=busybox", "--target=app", "-c", "sleeper", "--",
      "sh", "-c", "echo started; exec sleep 3600")
    _ephemeral_status(env, "sleeper", "running")
    out = k("exec", "-n", ns, "web", "-c", "sleeper", "--", "sh", "-c", "echo $((40+2)); cat /proc/1/cmdline")
    assert out.stdout.startswith("42\n") and "sleep31337" in out.stdout.replace("\0", "")
    assert "started" in k("logs", "-n", ns, "web", "-c", "sleeper").stdout


def test_debug_it_on_a_terminal(debug_env, apiserver):
    """The flow as a person types it: ``kubectl debug -it web --image=busybox --target=app -- sh``."""
    env, ns = debug_env, debug_env["ns"]
    k = PtyKubectl(["debug", "-it", "-n", ns, "web", "--image=busybox", "--target=app", "-c", "tty", "--", "sh"],
                   apiserver.kubeconfig, env["work"] / "kc-tty")
    try:
        k.until(rb"If you don't see a command prompt", timeout=90)
        k.type(b"\r")
        k.until(rb"/ # ")
        k.type(b"echo tty-$((6*7)); tty; ps -o pid,args | grep -c '^ *1 sleep 31337'\r")
        k.until(rb"tty-42\r\n/dev/pts/\d+\r\n1\r\n")
        k.type(b"exit 5\r")
        k.until(rb"Session ended")
        k.proc.wait(30)
    finally:
        k.close()
    st = _ephemeral_status(env, "tty", "terminated")
    assert st["state"]["terminated"]["exitCode"] == 5


def test_agent_restart_keeps_ephemeral_containers(debug_env):
    """A SIGKILLed agent's successor re-adopts the running ephemeral container (same container)
    and does not run the finished ones again."""
    env = debug_env
    before = {s["name"]: s for s in _pod(env)["status"]["ephemeralContainerStatuses"]}
    env["agent"].kill()
    env["agent"].start()
    time.sleep(5)  # (the new agent's first passes)
    after = {s["name"]: s for s in _ephemeral_status_all(env)}
    assert after["sleeper"]["containerID"] == before["sleeper"]["containerID"] and "running" in after["sleeper"]["state"]
    for name in ("dbg", "alone", "shell", "tty"):
        assert after[name]["state"] == before[name]["state"], name
        assert after[name]["restartCount"] == 0
    assert "started" in env["kubectl"]("logs", "-n", env["ns"], "web", "-c", "sleeper").stdout


def _ephemeral_status_all(env) -> list[dict]:
    return _pod(env)["status"]["ephemeralContainerStatuses"]


def test_deleting_the_pod_removes_everything(debug_env):
    env, k, ns = debug_env, debug_env["kubectl"], debug_env["ns"]
    pod = _pod(env)
    uid = pod["metadata"]["uid"]
    running = [s["name"] for s in pod["status"]["ephemeralContainerStatuses"] if "running" in s["state"]]
    assert running == ["sleeper"]
    k("delete", "pod", "-n", ns, "web", "--timeout=60s", timeout=90)
    runtime = env["agent"].root / "runtime"
    deadline = time.monotonic() + 30
    while True:
        left = [f"mount {m}" for m in mounts_under(runtime)]
        left += [f"cgroup {p}" for p in cgroups.existing(cgroups.pod_path(env["node"], uid))]
        left += [f"bundle {b.name}" for b in (runtime / "containers").glob(f"{uid[:13]}-*")]
        r = subprocess.run(["runc", "--root", str(runtime / "runc"), "list", "-q"], capture_output=True, text=True)
        left += [f"runc container {c}" for c in r.stdout.split() if c.startswith(uid[:13])]
        if not left:
            break
        assert time.monotonic() < deadline, left
        time.sleep(0.3)
    assert not (runtime / "pods" / uid).exists()
