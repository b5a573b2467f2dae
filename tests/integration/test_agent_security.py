"""The pod and container ``securityContext`` end to end with the real agent and real runc
busybox containers: runAsNonRoot refused (CreateContainerConfigError, a Failed Event) then
accepted with runAsUser 1000; runAsGroup/supplementalGroups/fsGroup seen by ``id``; an
emptyDir owned by the fsGroup (setgid) seen by ``stat``; NoNewPrivs and Seccomp (RuntimeDefault
2, Unconfined 0) from /proc/self/status; subPathExpr; a projected token's owner and mode;
termination messages (File and FallbackToLogsOnError) in the status and ``kubectl describe``; a
safe sysctl inside the pod and a forbidden one failing the pod (SysctlForbidden)."""

from __future__ import annotations

import pytest

from controlplane.client.resources import EVENTS, PODS, SERVICEACCOUNTS
from tests.fixtures.apiserver import make_kubectl
from tests.integration.test_agent_pods import (  # noqa: F401  (fixtures)
    cstatus, ns, pod, pod_where, ready_node, wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(240),
              pytest.mark.asyncio(loop_scope="session")]


def phase(p: dict) -> str:
    return p.get("status", {}).get("phase", "")


def waiting(p: dict, name: str | None = None) -> dict:
    return cstatus(p, name).get("state", {}).get("waiting") or {}


def terminated(p: dict, name: str) -> dict:
    return cstatus(p, name).get("state", {}).get("terminated") or {}


async def logs(client, ns: str, name: str, container: str) -> str:
    body = await client.request("GET", PODS.path(ns, name, "log"), params={"container": container}, decode=bytes)
    return body.decode() if isinstance(body, bytes) else body


async def test_run_as_non_root_groups_fsgroup_nnp_seccomp(client, ns, start_agent):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    # busybox sets no user: the kubelet treats it as root
    await client.create(PODS, pod("asroot", agent.node, [{"name": "c", "image": "busybox", "command": ["true"]}],
                                  securityContext={"runAsNonRoot": True}), ns)
    spec = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000],
            "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}}
    # the projected token: 0600 owned by the containers' common runAsUser, 0640 with the fsGroup
    await client.create(SERVICEACCOUNTS, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
                        ns)
    script = ("id -u; id -G; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; stat -c '%g %a' /data; "
              "touch /data/by-1000 && echo wrote; echo hi > /mine/f; ls /data/$POD; "
              "stat -Lc '%u %g %a' /tok/token; head -c 3 /tok/token; echo")
    await client.create(PODS, pod("nonroot", agent.node, [
        {"name": "main", "image": "busybox", "command": ["sh", "-c", script],
         "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
         "securityContext": {"allowPrivilegeEscalation": False},
         "volumeMounts": [{"name": "data", "mountPath": "/data"},
                          {"name": "data", "mountPath": "/mine", "subPathExpr": "$(POD)"},
                          {"name": "tok", "mountPath": "/tok"}]},
        {"name": "unconfined", "image": "busybox", "command": ["grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status"],
         "securityContext": {"seccompProfile": {"type": "Unconfined"}}}],
        restartPolicy="Never", securityContext=spec, serviceAccountName="default", volumes=[
            {"name": "data", "emptyDir": {}},
            {"name": "tok", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]), ns)

    p = await pod_where(client, ns, "asroot", lambda p: waiting(p).get("reason") == "CreateContainerConfigError",
                        what="runAsNonRoot refused")
    uid = p["metadata"]["uid"]
    assert waiting(p)["message"] == (f'container has runAsNonRoot and image will run as root (pod: "asroot_{ns}({uid})", '
                                     "container: c)")
    assert phase(p) == "Pending"

    async def failed_event():
        evs = (await client.list(EVENTS, ns))["items"]
        return [e for e in evs if e["involvedObject"]["name"] == "asroot" and e["reason"] == "Failed"
                and e["type"] == "Warning" and e["message"].startswith("Error: container has runAsNonRoot")]
    await wait_for(failed_event, 30, what="Failed event")

    p = await pod_where(client, ns, "nonroot", lambda p: phase(p) in ("Succeeded", "Failed"), what="nonroot done")
    assert phase(p) == "Succeeded", p["status"]
    out = (await logs(client, ns, "nonroot", "main")).splitlines()
    assert out[0] == "1000"
    assert out[1].split()[0] == "3000" and set(out[1].split()) == {"3000", "2000", "4000"}
    assert out[2].split() == ["NoNewPrivs:", "1"] and out[3].split() == ["Seccomp:", "2"]
    assert out[4] == "2000 2777"  # group fsGroup, setgid, group rwx, world rwx (the emptyDir's 0777)
    assert out[5:] == ["wrote", "f", "1000 2000 640", "eyJ"]
    un = (await logs(client, ns, "nonroot", "unconfined")).splitlines()
    assert [ln.split() for ln in un] == [["NoNewPrivs:", "0"], ["Seccomp:", "0"]]


async def test_termination_messages_and_sysctls(client, ns, start_agent, apiserver, tmp_path):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("msg", agent.node, [
        {"name": "file", "image": "busybox", "command": ["sh", "-c", "echo noise; printf 'all done' > /dev/termination-log; exit 3"]},
        {"name": "custom", "image": "busybox", "terminationMessagePath": "/tmp/why",
         "command": ["sh", "-c", "printf custom > /tmp/why"]},
        {"name": "logs", "image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError",
         "command": ["sh", "-c", "echo first; echo 'it broke' >&2; exit 1"]},
        {"name": "quiet", "image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError",
         "command": ["sh", "-c", "echo fine"]}], restartPolicy="Never"), ns)
    await client.create(PODS, pod("safe", agent.node, [
        {"name": "c", "image": "busybox",
         "command": ["sh", "-c", "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/kernel/shm_rmid_forced"]}],
        restartPolicy="Never", securityContext={"sysctls": [
            {"name": "net.ipv4.ip_local_port_range", "value": "20000 21000"},
            {"name": "kernel.shm_rmid_forced", "value": "1"}]}), ns)
    await client.create(PODS, pod("unsafe", agent.node, [{"name": "c", "image": "busybox", "command": ["true"]}],
                                  securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}), ns)

    p = await pod_where(client, ns, "msg", lambda p: phase(p) in ("Succeeded", "Failed"), what="msg done")
    assert phase(p) == "Failed"
    assert terminated(p, "file")["message"] == "all done" and terminated(p, "file")["exitCode"] == 3
    assert terminated(p, "custom")["message"] == "custom"
    assert terminated(p, "logs")["message"] == "first\nit broke\n"
    assert "message" not in terminated(p, "quiet")  # exit 0: no fallback to the logs
    kubectl = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    described = kubectl("describe", "pod", "msg", "-n", ns).stdout
    assert "Message:      all done" in described, described

    p = await pod_where(client, ns, "unsafe", lambda p: phase(p) == "Failed", what="unsafe rejected")
    assert p["status"]["reason"] == "SysctlForbidden"
    assert p["status"]["message"] == 'Pod was rejected: forbidden sysctl: "kernel.msgmax" not allowlisted'
    p = await pod_where(client, ns, "safe", lambda p: phase(p) in ("Succeeded", "Failed"), what="safe done")
    assert phase(p) == "Succeeded", p["status"]
    assert (await logs(client, ns, "safe", "c")).split() == ["20000", "21000", "1"]
