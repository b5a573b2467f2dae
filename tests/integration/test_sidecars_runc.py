"""Native sidecar containers (init containers with ``restartPolicy: Always``) on a real agent
running runc pods, driven with the real kubectl: the apiserver refuses other init restart
policies; a sidecar that fills a shared emptyDir starts (its startup probe passes) before the
main container, which reads what it wrote; both count in kubectl's READY; a sidecar that exits
is restarted (restartCount grows, the pod stays Running); a Job whose pod has a sidecar
completes (the agent stops the sidecar once the main container is done, the pod Succeeded);
deleting a pod stops its main container first, then its sidecars in reverse order (the final
status's finish times, each container given SIGTERM and the time to exit)."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from controlplane.client.resources import EVENTS, JOBS, NAMESPACES, PODS
from controlplane.client.rest import ApiStatusError
from controlplane.machinery.timestamps import parse_time
from tests.fixtures.apiserver import make_kubectl
from tests.integration.test_agent_pods import pod_where, ready_node, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(300),
              pytest.mark.asyncio(loop_scope="session")]

FOREVER = "while true; do sleep 1; done"


@pytest.fixture
async def ns(client):
    name = f"sc-{uuid.uuid4().hex[:8]}"
    await client.create(NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name
    try:
        await client.delete(NAMESPACES, name)
    except Exception:  # the namespace controller may not run in this module: best effort
        pass


def statuses(p: dict, key: str = "initContainerStatuses") -> dict[str, dict]:
    return {c["name"]: c for c in (p.get("status") or {}).get(key) or []}


def sidecar(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": "busybox", "restartPolicy": "Always", "command": ["sh", "-c", script],
            "volumeMounts": [{"name": "shared", "mountPath": "/shared"}], **extra}


async def kubectl_row(k, ns: str, name: str) -> list[str]:
    out = (await asyncio.to_thread(k, "get", "pod", name, "-n", ns, "--no-headers")).stdout.split()
    return out  # NAME READY STATUS RESTARTS [(AGE ago)] AGE


async def test_sidecar_feeds_main_restarts_and_stops_last(client, ns, start_agent, apiserver, tmp_path):
    k = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    agent = start_agent(extra=["--crashloop-initial", "1", "--crashloop-cap", "2"])
    await ready_node(client, agent.node, agent)

    # the apiserver's answer to a restart policy other than Always on an init container
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": ns},
           "spec": {"initContainers": [{"name": "i", "image": "busybox", "restartPolicy": "OnFailure"}],
                    "containers": [{"name": "a", "image": "busybox", "restartPolicy": "Always"}]}}
    res = await asyncio.to_thread(k, "apply", "-f", "-", input=json.dumps(bad), check=False)
    assert res.returncode != 0
    assert 'spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"' \
        in res.stderr, res.stderr
    assert "spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers" in res.stderr

    # feed: sidecar "writer" fills /shared (its startup probe waits for the file), sidecar "relay"
    # takes 2 s to stop on SIGTERM, main reads the file and takes 3 s to stop on SIGTERM
    feed = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "feed"}, "spec": {
        "nodeName": agent.node, "terminationGracePeriodSeconds": 20,
        "volumes": [{"name": "shared", "emptyDir": {}}],
        "initContainers": [
            sidecar("writer", f"sleep 1; echo from-sidecar > /shared/t && mv /shared/t /shared/msg; "
                              f"trap 'exit 0' TERM; {FOREVER}",
                    startupProbe={"exec": {"command": ["test", "-f", "/shared/msg"]}, "periodSeconds": 1,
                                  "failureThreshold": 30},
                    readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1}),
            sidecar("relay", f"trap 'sleep 2; exit 0' TERM; {FOREVER}")],
        "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c",
                        f"cat /shared/msg; trap 'sleep 3; exit 0' TERM; {FOREVER}"],
                        "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]}}
    await client.create(PODS, feed, ns)
    p = await pod_where(client, ns, "feed", lambda p: p["status"].get("phase") == "Running" and all(
        c.get("ready") for c in statuses(p).values()) and statuses(p, "containerStatuses").get("main", {}).get("ready"),
        timeout=90, what="feed Running with every container ready")
    writer = statuses(p)["writer"]
    assert writer["started"] is True and "running" in writer["state"] and writer["restartCount"] == 0
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conds["Initialized"] == conds["Ready"] == conds["ContainersReady"] == "True"
    # main started after the writer had started: the file was there for it to read
    started = {n: parse_time(s["state"]["running"]["startedAt"]) for n, s in statuses(p).items()}
    main_started = parse_time(statuses(p, "containerStatuses")["main"]["state"]["running"]["startedAt"])
    assert started["writer"] <= started["relay"] <= main_started
    logs = await asyncio.to_thread(k, "logs", "feed", "-n", ns, "-c", "main")
    assert logs.stdout.splitlines()[0] == "from-sidecar"
    row = await kubectl_row(k, ns, "feed")
    assert row[1:4] == ["3/3", "Running", "0"], row

    # flaky: a sidecar that exits every 2 s is restarted; the pod and its main container go on
    flaky = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flaky"}, "spec": {
        "nodeName": agent.node, "terminationGracePeriodSeconds": 1, "restartPolicy": "Never",
        "volumes": [{"name": "shared", "emptyDir": {}}],
        "initContainers": [sidecar("side", "sleep 2; exit 1")],
        "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", FOREVER]}]}}
    await client.create(PODS, flaky, ns)
    p = await pod_where(client, ns, "flaky", lambda p: statuses(p).get("side", {}).get("restartCount", 0) >= 2
                        and "running" in statuses(p, "containerStatuses").get("main", {}).get("state", {}),
                        timeout=90, what="the sidecar restarted twice")
    assert p["status"]["phase"] == "Running"
    side = statuses(p)["side"]
    assert side["lastState"]["terminated"]["exitCode"] == 1
    assert statuses(p, "containerStatuses")["main"]["restartCount"] == 0
    row = await kubectl_row(k, ns, "flaky")
    assert row[2] in ("Running", "NotReady") and int(row[3]) >= 2, row

    # deleting feed: main first, then relay, then writer (reverse order of definition)
    current = await client.get(PODS, "feed", ns)

    async def last_state() -> dict:
        async for etype, obj in client.watch(PODS, ns, field_selector="metadata.name=feed",
                                             resource_version=current["metadata"]["resourceVersion"]):
            if etype == "DELETED":
                return obj
        raise AssertionError("watch ended before the pod was deleted")
    watch = asyncio.create_task(last_state())
    await asyncio.sleep(0.5)
    await client.delete(PODS, "feed", ns)
    async with asyncio.timeout(90):
        final = await watch
    ended = {n: s["state"].get("terminated") for n, s in {**statuses(final),
                                                           **statuses(final, "containerStatuses")}.items()}
    assert all(ended.values()), ended
    # each one got SIGTERM and the time its trap needed (exit 0), none was SIGKILLed
    assert {n: t["exitCode"] for n, t in ended.items()} == {"writer": 0, "relay": 0, "main": 0}, ended
    finished = {n: parse_time(t["finishedAt"]) for n, t in ended.items()}
    # at second precision: in parallel, writer (exits at once) would finish ~3 s before main
    assert finished["main"] <= finished["relay"] <= finished["writer"], finished
    assert finished["main"] < finished["writer"], finished

    async def killing() -> set[str] | None:  # the recorder sends Events in the background
        events = (await client.list(EVENTS, ns))["items"]
        got = {e["message"] for e in events if e["involvedObject"]["name"] == "feed" and e["reason"] == "Killing"}
        return got if got >= {f"Stopping container {n}" for n in ("main", "relay", "writer")} else None
    await wait_for(killing, 30, what="a Killing Event per container of feed")

    await client.delete(PODS, "flaky", ns)

    async def gone() -> bool:
        try:
            await client.get(PODS, "flaky", ns)
        except ApiStatusError as e:
            return e.not_found
        return False
    await wait_for(gone, 60, what="flaky deleted by the agent")


async def test_job_with_a_sidecar_completes(client, ns, start_agent, controller_manager, apiserver, tmp_path):
    k = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "shipper", "namespace": ns},
           "spec": {"backoffLimit": 0, "template": {"spec": {
               "restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "nodeName": agent.node,
               "volumes": [{"name": "shared", "emptyDir": {}}],
               "initContainers": [sidecar("logs", f"trap 'exit 0' TERM; touch /shared/log; tail -f /shared/log & "
                                                  f"{FOREVER}")],
               "containers": [{"name": "work", "image": "busybox",
                               "command": ["sh", "-c", "echo working >> /shared/log; sleep 2; echo done >> /shared/log"],
                               "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}]}}}}
    await asyncio.to_thread(k, "apply", "-f", "-", input=json.dumps(job))
    res = await asyncio.to_thread(k, "wait", "-n", ns, "--for=condition=complete", "job/shipper", "--timeout=120s",
                                  timeout=140, check=False)
    pods = (await client.list(PODS, ns, label_selector="batch.kubernetes.io/job-name=shipper"))["items"]
    assert res.returncode == 0, f"{res.stderr}\npods: {[p.get('status') for p in pods]}\n{agent.log_tail(40)}"
    assert len(pods) == 1
    p = pods[0]
    assert p["status"]["phase"] == "Succeeded"
    logs = statuses(p)["logs"]
    assert "terminated" in logs["state"] and logs["started"] is False and logs["ready"] is False
    assert statuses(p, "containerStatuses")["work"]["state"]["terminated"]["exitCode"] == 0
    st = (await client.get(JOBS, "shipper", ns))["status"]
    assert st["succeeded"] == 1 and not st.get("failed"), st
    row = await kubectl_row(k, ns, p["metadata"]["name"])
    assert row[1:3] == ["0/2", "Completed"], row
