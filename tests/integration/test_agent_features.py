"""Agent features end to end (real apiserver, runc, registry): OOMKilled, probes, ConfigMap/
Secret as env and files, init containers, hostPath outside the allowed root, exec over the
WebSocket channel protocol and logs (previous, tail, follow) from the agent endpoint."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl

import aiohttp
import pytest

from controlplane.client.resources import CONFIGMAPS, EVENTS, NODES, PODS, SECRETS
from controlplane.client.rest import ApiStatusError
from tests.integration.test_agent_pods import (  # noqa: F401  (fixtures)
    cstatus, ns, pod, pod_where, ready_node, wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(240),
              pytest.mark.asyncio(loop_scope="session")]


ADMIN_TLS: list = []  # the admin's TLS context (the agent verifies it against the cluster CA and asks RBAC)


@pytest.fixture(autouse=True)
def _admin_tls(apiserver):
    ADMIN_TLS[:] = [apiserver.ssl_context()]


def session(**kw) -> aiohttp.ClientSession:
    """A session that reaches agents' HTTPS endpoints as the admin (``kubernetes-admin``)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ADMIN_TLS[0]), **kw)


def phase(p: dict) -> str:
    return p.get("status", {}).get("phase", "")


async def endpoint(client, node: str) -> str:
    n = await client.get(NODES, node)
    return f"https://127.0.0.1:{n['status']['daemonEndpoints']['kubeletEndpoint']['Port']}"


async def ws_exec(base: str, ns: str, pod_: str, container: str, cmd: list[str], stdin: bytes | None = None,
                  tty_size: tuple[int, int] | None = None):
    q = "&".join(f"command={aiohttp.helpers.quote(c, safe='')}" for c in cmd)
    q += "&stdout=true&stderr=true" + ("&stdin=true" if stdin is not None else "") + ("&tty=true" if tty_size else "")
    out, err, status = b"", b"", None
    async with session() as s:
        async with s.ws_connect(f"{base}/exec/{ns}/{pod_}/{container}?{q}", protocols=("v5.channel.k8s.io",)) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            if tty_size is not None:
                await ws.send_bytes(b"\x04" + json.dumps({"Width": tty_size[1], "Height": tty_size[0]}).encode())
            if stdin is not None:
                await ws.send_bytes(b"\x00" + stdin)
                await ws.send_bytes(b"\xff\x00")  # v5: close stdin
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                ch, data = msg.data[0], msg.data[1:]
                if ch == 1:
                    out += data
                elif ch == 2:
                    err += data
                elif ch == 3:
                    status = json.loads(data)
    return out, err, status


async def test_oom_killed_and_restarted(client, ns, start_agent):
    agent = start_agent(extra=["--crashloop-initial", "1"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("hog", agent.node, [{
        "name": "hog", "image": "busybox", "command": ["sh", "-c", "sleep 0.5; x=a; while true; do x=$x$x; done"],
        "resources": {"limits": {"memory": "16Mi"}}}]), ns)
    p = await pod_where(client, ns, "hog", lambda p: cstatus(p).get("restartCount", 0) >= 1
                        and cstatus(p).get("lastState", {}).get("terminated"), timeout=60, what="OOM restart")
    t = cstatus(p)["lastState"]["terminated"]
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137


async def test_liveness_restarts_and_readiness_flips(client, ns, start_agent):
    agent = start_agent(extra=["--crashloop-initial", "1"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("live", agent.node, [{
        "name": "c", "image": "busybox", "command": ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 600"],
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]}, "periodSeconds": 1, "failureThreshold": 1}}],
        terminationGracePeriodSeconds=1), ns)
    await client.create(PODS, pod("ready", agent.node, [{
        "name": "web", "image": "busybox",
        "command": ["sh", "-c", "mkdir -p /www; echo ok > /www/index.html; httpd -f -p 8080 -h /www"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"}, "periodSeconds": 1,
                           "failureThreshold": 1},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "initialDelaySeconds": 1}}]), ns)
    p = await pod_where(client, ns, "live", lambda p: cstatus(p).get("restartCount", 0) >= 1, timeout=120,
                        what="liveness restart")
    assert cstatus(p)["lastState"]["terminated"]["exitCode"] == 137

    def ready_cond(p):
        return {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}.get("Ready")
    await pod_where(client, ns, "ready", lambda p: ready_cond(p) == "True", what="ready")
    base = await endpoint(client, agent.node)
    out, _, st = await ws_exec(base, ns, "ready", "web", ["rm", "/www/index.html"])
    assert st["status"] == "Success"
    p = await pod_where(client, ns, "ready", lambda p: ready_cond(p) == "False", what="unready")
    assert cstatus(p)["ready"] is False and cstatus(p)["restartCount"] == 0
    await ws_exec(base, ns, "ready", "web", ["sh", "-c", "echo ok > /www/index.html"])
    await pod_where(client, ns, "ready", lambda p: ready_cond(p) == "True", what="ready again")


async def test_a_changed_image_restarts_the_container_whatever_the_policy(client, ns, start_agent):
    """``kubectl set image pod/...`` (the one container field a pod update may change): the
    agent kills the container ("definition changed") and starts it with the new image, as the
    kubelet does, even under ``restartPolicy: Never``; a sidecar's change restarts the sidecar."""
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("web", agent.node, [{"name": "c", "image": "busybox", "command": ["sleep", "600"]}],
                                  restartPolicy="Never", terminationGracePeriodSeconds=1, initContainers=[
                                      {"name": "side", "image": "busybox", "command": ["sleep", "600"],
                                       "restartPolicy": "Always"}]), ns)
    await pod_where(client, ns, "web", lambda p: cstatus(p).get("state", {}).get("running"), what="running")
    await client.patch(PODS, "web", {"spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}}, ns,
                       patch_type="strategic")
    p = await pod_where(client, ns, "web", lambda p: cstatus(p).get("restartCount") == 1
                        and cstatus(p).get("state", {}).get("running"), what="restarted with the new image")
    st = cstatus(p)
    assert st["image"] == "busybox:latest" and st["lastState"]["terminated"]["exitCode"] == 137
    assert p["status"]["phase"] == "Running"
    side = p["status"]["initContainerStatuses"][0]
    assert side["restartCount"] == 0 and side["image"] == "busybox"

    await client.patch(PODS, "web", {"spec": {"initContainers": [{"name": "side", "image": "busybox:latest"}]}}, ns,
                       patch_type="strategic")
    p = await pod_where(client, ns, "web", lambda p: p["status"]["initContainerStatuses"][0].get("restartCount") == 1
                        and p["status"]["initContainerStatuses"][0].get("state", {}).get("running"),
                        what="the sidecar restarted with the new image")
    assert p["status"]["initContainerStatuses"][0]["image"] == "busybox:latest"
    assert cstatus(p)["restartCount"] == 1, "the app container was not restarted again"

    async def killing():
        evs = (await client.list(EVENTS, ns))["items"]
        got = sorted(e["message"] for e in evs if e["involvedObject"]["name"] == "web" and e["reason"] == "Killing")
        return got if len(got) >= 2 else None
    got = await wait_for(killing, 30, what="Killing events")
    assert got == ["Container c definition changed, will be restarted",
                   "Init container side definition changed, will be restarted"], got


async def test_configmap_secret_env_files_and_init(client, ns, start_agent):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                     "data": {"color": "blue", "app.conf": "threads=4\n"}}, ns)
    await client.create(SECRETS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                                  "data": {"password": base64.b64encode(b"s3cret").decode()}}, ns)
    await client.create(PODS, pod("cfg", agent.node, [{
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "echo $COLOR $PASS $CFG_color $GREETING; cat /etc/cfg/app.conf /etc/sec/password; "
                                "echo; cat /work/init.txt; cat /etc/info/name; echo; grep -c ' /work tmpfs ' /proc/mounts; "
                                "echo $INIT_MEM"],
        "env": [{"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "GREETING", "value": "hi-$(COLOR)"},
                # another container's limit (the kubelet's containerResourceRuntimeValue)
                {"name": "INIT_MEM", "valueFrom": {"resourceFieldRef": {"containerName": "init",
                                                                        "resource": "limits.memory", "divisor": "1Mi"}}}],
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"}, {"name": "sec", "mountPath": "/etc/sec"},
                         {"name": "work", "mountPath": "/work"}, {"name": "info", "mountPath": "/etc/info"}]}],
        restartPolicy="Never",
        initContainers=[{"name": "init", "image": "busybox", "command": ["sh", "-c", "echo from-init > /work/init.txt"],
                         "resources": {"limits": {"memory": "48Mi"}},
                         "volumeMounts": [{"name": "work", "mountPath": "/work"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "cfg"}}, {"name": "sec", "secret": {"secretName": "sec"}},
                 {"name": "work", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                 {"name": "info", "projected": {"sources": [{"downwardAPI": {"items": [
                     {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}}]), ns)
    p = await pod_where(client, ns, "cfg", lambda p: phase(p) in ("Succeeded", "Failed"), what="cfg done")
    if phase(p) != "Succeeded":  # seen once in CI (05:10 UTC 2026-12-07): say everything, and the log
        logs = await client.request("GET", PODS.path(ns, "cfg", "log"), params={"container": "c"}, decode=bytes)
        raise AssertionError(f"pod Failed; status: {json.dumps(p['status'])}; log: {logs!r}")
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"
    base = await endpoint(client, agent.node)
    async with session() as s:
        async with s.get(f"{base}/containerLogs/{ns}/cfg/c") as r:
            text = await r.text()
    assert text.splitlines() == ["blue s3cret blue hi-blue", "threads=4", "s3cret", "from-init", "cfg", "1", "48"]


async def test_hostpath_outside_root_and_missing_configmap(client, ns, start_agent):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("hp", agent.node, [{"name": "c", "image": "busybox", "command": ["true"],
                                                      "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
                                  volumes=[{"name": "h", "hostPath": {"path": "/etc"}}]), ns)
    await client.create(PODS, pod("nocm", agent.node, [{"name": "c", "image": "busybox", "command": ["true"],
                                                        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {
                                                            "name": "absent", "key": "k"}}}]}]), ns)
    # kube-apiserver takes a resourceFieldRef naming no container of the pod (validateEnv does
    # not look), and prints the unset divisor as the zero Quantity; the kubelet refuses it
    made = await client.create(PODS, pod("nocont", agent.node, [{
        "name": "c", "image": "busybox", "command": ["true"],
        "env": [{"name": "X", "valueFrom": {"resourceFieldRef": {"containerName": "nope", "resource": "limits.cpu"}}}]}]),
        ns)
    assert made["spec"]["containers"][0]["env"][0]["valueFrom"]["resourceFieldRef"] == {
        "containerName": "nope", "resource": "limits.cpu", "divisor": "0"}
    # a volume that cannot be set up: ContainerCreating and the volume manager's FailedMount
    p = await pod_where(client, ns, "hp", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        == "ContainerCreating", what="hostPath refused")
    assert phase(p) == "Pending" and "message" not in cstatus(p)["state"]["waiting"]

    async def failed_mount():
        evs = (await client.list(EVENTS, ns))["items"]
        return next((e["message"] for e in evs if e["involvedObject"]["name"] == "hp" and e["reason"] == "FailedMount"), None)
    msg = await wait_for(failed_mount, 30, what="FailedMount event")
    assert msg.startswith('MountVolume.SetUp failed for volume "h" : hostPath "/etc" is outside the allowed root'), msg
    p = await pod_where(client, ns, "nocm", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        == "CreateContainerConfigError", what="missing configmap")
    assert 'configmap "absent" not found' in cstatus(p)["state"]["waiting"]["message"]
    p = await pod_where(client, ns, "nocont", lambda p: cstatus(p).get("state", {}).get("waiting", {}).get("reason")
                        == "CreateContainerConfigError", what="missing container")
    assert cstatus(p)["state"]["waiting"]["message"] == "container nope not found"
    assert agent.alive()


async def test_exec_and_logs_previous_tail_follow(client, ns, start_agent):
    agent = start_agent(extra=["--crashloop-initial", "1"])
    await ready_node(client, agent.node, agent)
    await client.create(PODS, pod("lg", agent.node, [{
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "if [ -f /data/second ]; then i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done; "
                                "else touch /data/second; echo first run; exit 1; fi"],
        "volumeMounts": [{"name": "d", "mountPath": "/data"}]}], volumes=[{"name": "d", "emptyDir": {}}]), ns)
    await pod_where(client, ns, "lg", lambda p: cstatus(p).get("restartCount") == 1 and "running" in cstatus(p)["state"],
                    what="second run")
    base = await endpoint(client, agent.node)
    async with session() as s:
        async with s.get(f"{base}/containerLogs/{ns}/lg/c?previous=true") as r:
            assert await r.text() == "first run\n"
        await asyncio.sleep(1.0)
        async with s.get(f"{base}/containerLogs/{ns}/lg/c?tailLines=2&timestamps=true") as r:
            lines = (await r.text()).splitlines()
        assert len(lines) == 2 and lines[0].split(" ")[1] == "tick" and lines[0].split(" ")[0].endswith("Z")
        got = b""
        async with s.get(f"{base}/containerLogs/{ns}/lg/c?follow=true&tailLines=0") as r:
            while got.count(b"\n") < 3:
                got += await asyncio.wait_for(r.content.readany(), 5)
        assert got.startswith(b"tick ")
        anon_tls = ssl.create_default_context(cafile=str(agent.api.pki.ca_file))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=anon_tls)) as anon:
            async with anon.get(f"{base}/containerLogs/{ns}/lg/c") as r:
                assert r.status == 401  # no client certificate, no token
            async with anon.get(f"{base}/containerLogs/{ns}/lg/c", headers={"Authorization": "Bearer nope"}) as r:
                assert r.status == 401  # the apiserver's TokenReview does not know it
        viewer = agent.api.ssl_context("viewer-" + ns, ["system:authenticated"])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=viewer)) as other:
            async with other.get(f"{base}/containerLogs/{ns}/lg/c") as r:
                assert r.status == 403  # authenticated, but RBAC gives no nodes/proxy
    out, err, st = await ws_exec(base, ns, "lg", "c", ["cat", "/etc/hostname"])
    assert out == b"lg\n" and st == {"metadata": {}, "status": "Success"}
    out, err, st = await ws_exec(base, ns, "lg", "c", ["sh", "-c", "cat; echo bad >&2; exit 5"], stdin=b"piped in\n")
    assert out == b"piped in\n" and err == b"bad\n"
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"][0]["message"] == "5"
    # the size reaches the container's terminal asynchronously (runc copies it on SIGWINCH, as
    # a CRI runtime's ResizePty does), so the shell waits for it, up to 5 s
    out, err, st = await ws_exec(base, ns, "lg", "c", ["sh"], stdin=(
        b'tty; i=0; while [ $i -lt 50 ]; do s=$(stty size 2>/dev/null); [ "$s" = "40 100" ] && break; '
        b'i=$((i+1)); sleep 0.1; done; echo "size=$s"; exit 2\n'), tty_size=(40, 100))
    text = out.decode()
    assert "/dev/pts/" in text and "size=40 100" in text, text
    assert st["details"]["causes"][0]["message"] == "2"


async def test_configmap_volume_follows_updates(client, ns, start_agent):
    agent = start_agent(extra=["--volume-refresh", "1"])
    await ready_node(client, agent.node, agent)
    await client.create(CONFIGMAPS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "live"},
                                     "data": {"k": "v1"}}, ns)
    await client.create(PODS, pod("watcher", agent.node, [{
        "name": "c", "image": "busybox", "command": ["sleep", "600"],
        "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}, {"name": "cfg", "mountPath": "/one", "subPath": "k"},
                         {"name": "items", "mountPath": "/items"}, {"name": "info", "mountPath": "/info"},
                         {"name": "mem", "mountPath": "/mem"}]}],
        volumes=[{"name": "cfg", "configMap": {"name": "live"}},
                 {"name": "items", "configMap": {"name": "live", "defaultMode": 0o440,
                                                 "items": [{"key": "k", "path": "d/k", "mode": 0o600}]}},
                 {"name": "info", "downwardAPI": {"items": [{"path": "mem", "resourceFieldRef": {
                     "containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}},
                 {"name": "mem", "emptyDir": {"medium": "Memory"}}]), ns)
    await pod_where(client, ns, "watcher", lambda p: phase(p) == "Running", what="watcher Running")
    base = await endpoint(client, agent.node)
    out, _, _ = await ws_exec(base, ns, "watcher", "c", ["cat", "/cfg/k"])
    assert out == b"v1"
    # the kubelet's layout: name -> ..data/name -> ..<timestamp>/name, modes per item,
    # read-only mounts, downwardAPI resources
    out, _, _ = await ws_exec(base, ns, "watcher", "c", ["sh", "-c", "readlink /cfg/k; readlink /cfg/..data; stat -Lc %a /items/d/k; "
                                                         "cat /info/mem; echo; touch /cfg/x 2>&1; echo $?"])
    link, data, item_mode, mem, touch, rc = out.decode().splitlines()
    assert (link, item_mode, mem, rc) == ("..data/k", "600", "64", "1"), out
    assert re.fullmatch(r"\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d+", data) and "Read-only file system" in touch, out
    cm = await client.get(CONFIGMAPS, "live", ns)
    cm["data"] = {"k": "v2", "extra": "x"}
    await client.update(CONFIGMAPS, cm)

    async def updated():
        out, _, _ = await ws_exec(base, ns, "watcher", "c", ["sh", "-c", "cat /cfg/k /cfg/extra"])
        return out == b"v2x"
    await wait_for(updated, 30, what="configMap volume update")
    out, _, _ = await ws_exec(base, ns, "watcher", "c", ["cat", "/one"])
    assert out == b"v1"  # a subPath mount keeps the file it was given
    # memory-backed volumes (a downwardAPI one, an emptyDir without sizeLimit) are sized as the
    # kubelet's SizeMemoryBackedVolumes: the pod's memory limit, 64Mi
    out, _, _ = await ws_exec(base, ns, "watcher", "c", ["sh", "-c", "grep -E ' /(info|mem) ' /proc/mounts; "
                                                         "dd if=/dev/zero of=/mem/blob bs=1M count=2 2>/dev/null"])
    sizes = {ln.split()[1]: re.search(r"size=(\d+k)", ln).group(1) for ln in out.decode().splitlines()}
    assert sizes == {"/info": "65536k", "/mem": "65536k"}, out
    # ... and their bytes are memory: listed, but not the pod's ephemeral storage
    async def summary_pod():
        async with session() as s:
            async with s.get(f"{base}/stats/summary") as r:
                body = await r.json()
        p = next(p for p in body["pods"] if p["podRef"]["name"] == "watcher" and p["podRef"]["namespace"] == ns)
        vols = {v["name"]: v for v in p.get("volume") or []}
        return p if vols.get("mem", {}).get("usedBytes", 0) >= 2 * 2**20 else None
    sp = await wait_for(summary_pod, 30, what="the tmpfs bytes in the summary")
    assert sp["ephemeral-storage"]["usedBytes"] < 2**20, sp["ephemeral-storage"]
    assert sp["memory"]["workingSetBytes"] >= 2 * 2**20, sp["memory"]  # charged to the writer's cgroup
    assert {v["name"]: v["capacityBytes"] for v in sp["volume"]}["mem"] == 64 * 2**20
    # a refresh that fails (a key the items name was removed) keeps the files and records the
    # kubelet's FailedMount Warning, folded into one Event whose count grows
    cm = await client.get(CONFIGMAPS, "live", ns)
    cm["data"] = {"extra": "y"}
    await client.update(CONFIGMAPS, cm)
    msg = 'MountVolume.SetUp failed for volume "items" : configmap references non-existent config key: k'

    async def failed_mounts():
        evs = [e for e in (await client.list(EVENTS, ns))["items"]
               if e["involvedObject"]["name"] == "watcher" and e["reason"] == "FailedMount"]
        return evs if evs and evs[0].get("count", 1) >= 2 else None
    evs = await wait_for(failed_mounts, 30, what="repeated FailedMount event")
    assert [(e["type"], e["message"]) for e in evs] == [("Warning", msg)], evs
    out, _, _ = await ws_exec(base, ns, "watcher", "c", ["sh", "-c", "cat /items/d/k /cfg/extra"])
    assert out == b"v2y"  # the failing volume kept its files, the other one followed
    cm = await client.get(CONFIGMAPS, "live", ns)
    cm["data"]["1bad"] = "x"
    await client.update(CONFIGMAPS, cm)
    await client.delete(PODS, "watcher", ns)  # not waited for: the new pod is what the check needs
    await client.create(PODS, pod("env", agent.node, [{"name": "c", "image": "busybox", "command": ["true"],
                                                       "envFrom": [{"configMapRef": {"name": "live"}}]}],
                                  restartPolicy="Never"), ns)

    async def skipped():
        evs = (await client.list(EVENTS, ns))["items"]
        return next((e for e in evs if e["involvedObject"]["name"] == "env"
                     and e["reason"] == "InvalidEnvironmentVariableNames"), None)
    ev = await wait_for(skipped, 30, what="InvalidEnvironmentVariableNames event")
    assert ev["type"] == "Warning" and ev["message"] == (
        f"Keys [1bad] from the EnvFrom configMap {ns}/live were skipped since they are considered invalid "
        "environment variable names."), ev


async def test_lifecycle_hooks_and_allowed_hostpath(client, ns, start_agent):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    host_dir = agent.workdir / "hostpath" / "hooks"
    await client.create(PODS, pod("hooks", agent.node, [{
        "name": "c", "image": "busybox",
        "command": ["sh", "-c", "while [ ! -f /h/post ]; do sleep 0.1; done; echo saw $(cat /h/post); sleep 600"],
        "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "echo post > /h/post"]}},
                      "preStop": {"exec": {"command": ["sh", "-c", "echo pre > /h/pre"]}}},
        "volumeMounts": [{"name": "h", "mountPath": "/h"}]}],
        volumes=[{"name": "h", "hostPath": {"path": str(host_dir), "type": "DirectoryOrCreate"}}]), ns)
    await pod_where(client, ns, "hooks", lambda p: phase(p) == "Running", what="hooks Running")
    base = await endpoint(client, agent.node)

    async def saw_post():
        async with session() as s:
            async with s.get(f"{base}/containerLogs/{ns}/hooks/c") as r:
                return (await r.text()) == "saw post\n"
    await wait_for(saw_post, 30, what="postStart effect")
    await client.delete(PODS, "hooks", ns)

    async def gone():
        try:
            await client.get(PODS, "hooks", ns)
            return False
        except ApiStatusError as e:
            return e.not_found
    await wait_for(gone, 30, what="pod deleted")
    assert (host_dir / "pre").read_text() == "pre\n"  # preStop ran before the container was stopped
