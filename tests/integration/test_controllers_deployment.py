"""Deployments and ReplicaSets end to end: real etcd, apiserver, controller-manager, kubectl.
Pods have no node: ``PodSimulator`` marks them Running/Ready as a node agent would."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from tests.fixtures.controllers import JOB_BACKOFF_ARGS, TEST_NS_LABEL, PodSimulator

pytestmark = pytest.mark.integration

# every controller of this module's controller-manager writes as its own ServiceAccount (as
# `up` runs it): the Deployment and ReplicaSet tests here also check their roles
controller_manager_args = [*JOB_BACKOFF_ARGS, "--use-service-account-credentials"]


def deployment(name: str, ns: str, replicas: int, image: str = "busybox:1", surge=1, unavailable=0,
               finalizers: list[str] | None = None) -> dict:
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}
    if finalizers:
        d["spec"]["template"]["metadata"]["finalizers"] = finalizers
    return d


async def eventually(check, timeout: float = 30.0, interval: float = 0.1):
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


async def new_namespace(client: RestClient, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": ns, "labels": {TEST_NS_LABEL: "controllers"}}})
    return ns


def live(items: list[dict]) -> list[dict]:
    return [o for o in items if not o["metadata"].get("deletionTimestamp")]


class PodWatch:
    """Tracks the pods of a namespace from a watch and the extremes of (pods, ready pods)."""

    def __init__(self, client: RestClient, ns: str) -> None:
        self.client, self.ns = client, ns
        self.pods: dict[str, bool] = {}
        self.created: set[str] = set()
        self.max_pods = 0
        self.min_ready = 10**9
        self.task: asyncio.Task | None = None

    async def start(self) -> "PodWatch":
        rv = await self._load()
        self.created = set(self.pods)
        self.max_pods = len(self.pods)
        self.min_ready = sum(self.pods.values())
        self.task = asyncio.create_task(self._run(rv))
        return self

    async def _load(self) -> str:
        lst = await self.client.list(R.PODS, self.ns)
        self._tracking = False
        self.pods = {}
        for p in live(lst["items"]):
            self._update("ADDED", p)
        self._tracking = True
        return lst["metadata"]["resourceVersion"]

    def _update(self, etype: str, p: dict) -> None:
        uid = p["metadata"]["uid"]
        if etype == "DELETED" or p["metadata"].get("deletionTimestamp"):
            self.pods.pop(uid, None)
        else:
            self.created.add(uid)
            conds = {c["type"]: c["status"] for c in (p.get("status") or {}).get("conditions") or []}
            self.pods[uid] = conds.get("Ready") == "True"
        if not getattr(self, "_tracking", True):
            return
        self.max_pods = max(self.max_pods, len(self.pods))
        self.min_ready = min(self.min_ready, sum(self.pods.values()))

    async def _run(self, rv: str) -> None:
        while True:
            try:
                async for etype, p in self.client.watch(R.PODS, self.ns, resource_version=rv, resume=True):
                    if etype != "BOOKMARK":
                        self._update(etype, p)
                return
            except ApiStatusError as e:
                if not e.expired:
                    raise
                rv = await self._load()  # history compacted (e.g. apiserver restart): relist

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def test_deployment_scale_rollout_undo(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "deploy")
    sim = await PodSimulator(client, ns).start()
    try:
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("web", ns, 3)))

        async def three_pods():
            pods = live((await client.list(R.PODS, ns))["items"])
            rss = (await client.list(R.REPLICASETS, ns))["items"]
            return (pods, rss) if len(pods) == 3 and len(rss) == 1 else None
        pods, rss = await eventually(three_pods)
        rs = rss[0]
        d = await client.get(R.DEPLOYMENTS, "web", ns)
        assert rs["metadata"]["ownerReferences"][0]["uid"] == d["metadata"]["uid"]
        assert rs["metadata"]["ownerReferences"][0]["controller"] is True
        h = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{h}"
        for p in pods:
            ref = p["metadata"]["ownerReferences"][0]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == ("ReplicaSet", rs["metadata"]["name"], rs["metadata"]["uid"], True)
            assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}

        for n in (5, 1, 4):
            await asyncio.to_thread(kubectl, "scale", "deployment/web", f"--replicas={n}", "-n", ns)

            async def scaled(n=n):
                d = await client.get(R.DEPLOYMENTS, "web", ns)
                pods = live((await client.list(R.PODS, ns))["items"])
                st = d.get("status") or {}
                return len(pods) == n and st.get("availableReplicas") == n and st.get("replicas") == n
            await eventually(scaled)
        assert len((await client.list(R.REPLICASETS, ns))["items"]) == 1

        watch = await PodWatch(client, ns).start()
        await asyncio.to_thread(kubectl, "set", "image", "deployment/web", "c=busybox:2", "-n", ns)
        out = await asyncio.to_thread(kubectl, "rollout", "status", "deployment/web", "-n", ns, "--timeout=90s", timeout=100)
        assert "successfully rolled out" in out.stdout
        await asyncio.sleep(0.3)
        await watch.stop()
        assert watch.max_pods <= 4 + 1, f"maxSurge broken: {watch.max_pods} pods at once"
        assert watch.min_ready >= 4 - 0, f"maxUnavailable broken: only {watch.min_ready} ready"
        rss = {r["metadata"]["name"]: r for r in (await client.list(R.REPLICASETS, ns))["items"]}
        assert len(rss) == 2
        new = next(r for r in rss.values() if r["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2")
        old = next(r for r in rss.values() if r is not new)
        assert (new["spec"]["replicas"], old["spec"]["replicas"]) == (4, 0)
        assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
        pods = live((await client.list(R.PODS, ns))["items"])
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:2"} and len(pods) == 4

        hist = (await asyncio.to_thread(kubectl, "rollout", "history", "deployment/web", "-n", ns)).stdout
        assert "1" in hist and "2" in hist

        await asyncio.to_thread(kubectl, "rollout", "undo", "deployment/web", "-n", ns)
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/web", "-n", ns, "--timeout=90s", timeout=100)
        d = await client.get(R.DEPLOYMENTS, "web", ns)
        assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        old = await client.get(R.REPLICASETS, old["metadata"]["name"], ns)
        assert old["spec"]["replicas"] == 4
        assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        # the revision it had before the rollback is kept (SetNewReplicaSetAnnotations)
        assert old["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        # the Deployment's annotations win over the new ReplicaSet's, a changed one too
        for cause in ("first", "second"):
            await asyncio.to_thread(kubectl, "annotate", "deployment/web", f"kubernetes.io/change-cause={cause}",
                                    "--overwrite", "-n", ns)

            async def cause_copied(cause=cause):
                rs = await client.get(R.REPLICASETS, old["metadata"]["name"], ns)
                return rs["metadata"]["annotations"].get("kubernetes.io/change-cause") == cause
            await eventually(cause_copied)
        hist = (await asyncio.to_thread(kubectl, "rollout", "history", "deployment/web", "-n", ns)).stdout
        assert [ln.split(None, 1) for ln in hist.splitlines()[2:] if ln.strip()] == [["2", "<none>"], ["3", "second"]], hist
        bad = await asyncio.to_thread(kubectl, "patch", "deployment/web", "-n", ns, "--type=merge", "-p",
                                      json.dumps({"spec": {"strategy": {"type": "Sometimes", "rollingUpdate": None}}}),
                                      check=False)
        assert bad.returncode == 1 and ('The Deployment "web" is invalid: spec.strategy: Unsupported value: '
                                        'apps.DeploymentStrategy{Type:"Sometimes", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: '
                                        'supported values: "Recreate", "RollingUpdate"') in bad.stderr, bad.stderr
        pods = live((await client.list(R.PODS, ns))["items"])
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:1"}
        conds = {c["type"]: c for c in d["status"]["conditions"]}
        assert conds["Available"]["status"] == "True"
        assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
        assert d["status"]["observedGeneration"] == d["metadata"]["generation"]

        described = (await asyncio.to_thread(kubectl, "describe", "deployment", "web", "-n", ns)).stdout
        assert "ScalingReplicaSet" in described
    finally:
        await sim.stop()


async def test_recreate_and_pause(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "recreate")
    sim = await PodSimulator(client, ns).start()
    try:
        d = deployment("rc", ns, 2)
        d["spec"]["strategy"] = {"type": "Recreate"}
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(d))
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/rc", "-n", ns, "--timeout=60s", timeout=70)
        watch = await PodWatch(client, ns).start()
        await asyncio.to_thread(kubectl, "set", "image", "deployment/rc", "c=busybox:2", "-n", ns)
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/rc", "-n", ns, "--timeout=60s", timeout=70)
        await watch.stop()
        assert watch.max_pods <= 2 and watch.min_ready == 0, "Recreate must stop old pods before new ones"

        await asyncio.to_thread(kubectl, "rollout", "pause", "deployment/rc", "-n", ns)
        await asyncio.to_thread(kubectl, "set", "image", "deployment/rc", "c=busybox:3", "-n", ns)
        await asyncio.sleep(1.5)
        assert len((await client.list(R.REPLICASETS, ns))["items"]) == 2, "paused: no new ReplicaSet"
        d = await client.get(R.DEPLOYMENTS, "rc", ns)
        assert {c["type"]: c["reason"] for c in d["status"]["conditions"]}["Progressing"] == "DeploymentPaused"
        await asyncio.to_thread(kubectl, "rollout", "resume", "deployment/rc", "-n", ns)
        await asyncio.to_thread(kubectl, "rollout", "status", "deployment/rc", "-n", ns, "--timeout=60s", timeout=70)
        pods = live((await client.list(R.PODS, ns))["items"])
        assert {p["spec"]["containers"][0]["image"] for p in pods} == {"busybox:3"}
    finally:
        await sim.stop()


async def test_replicaset_adopts_orphans_and_replaces_deleted(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "rs")
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "namespace": ns, "labels": {"app": "x"}},
              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.create(R.PODS, orphan, ns)
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "x", "namespace": ns},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}},
                   "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(rs))

    async def two_owned():
        pods = live((await client.list(R.PODS, ns))["items"])
        owned = [p for p in pods if (p["metadata"].get("ownerReferences") or [{}])[0].get("name") == "x"]
        return pods if len(pods) == 2 and len(owned) == 2 else None
    pods = await eventually(two_owned)
    assert "stray" in {p["metadata"]["name"] for p in pods}, "the matching orphan is adopted, not duplicated"
    victim = next(p for p in pods if p["metadata"]["name"] != "stray")
    await client.delete(R.PODS, victim["metadata"]["name"], ns)

    async def replaced():
        pods = live((await client.list(R.PODS, ns))["items"])
        names = {p["metadata"]["name"] for p in pods}
        return len(pods) == 2 and victim["metadata"]["name"] not in names
    await eventually(replaced)
    # relabel a pod: it is released and replaced
    await client.patch(R.PODS, "stray", {"metadata": {"labels": {"app": "other"}}}, ns)

    async def released():
        stray = await client.get(R.PODS, "stray", ns)
        pods = [p for p in live((await client.list(R.PODS, ns))["items"]) if p["metadata"]["labels"].get("app") == "x"]
        return not stray["metadata"].get("ownerReferences") and len(pods) == 2
    await eventually(released)

    async def status_caught_up():  # the status write follows the pod changes (level-based)
        st = (await client.get(R.REPLICASETS, "x", ns))["status"]
        return st["replicas"] == 2 and st["observedGeneration"] >= 1
    await eventually(status_caught_up)


@pytest.mark.parametrize("cascade", ["background", "foreground", "orphan"])
async def test_delete_deployment_cascade(apiserver, controller_manager, kubectl, client, cascade):
    ns = await new_namespace(client, f"del-{cascade[:4]}")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("gc", ns, 2)))

    async def ready():
        return len(live((await client.list(R.PODS, ns))["items"])) == 2 and len((await client.list(R.REPLICASETS, ns))["items"]) == 1
    await eventually(ready)
    await asyncio.to_thread(kubectl, "delete", "deployment", "gc", "-n", ns, f"--cascade={cascade}", "--timeout=60s", timeout=70)

    async def gone(res):
        return not (await client.list(res, ns))["items"]
    await eventually(lambda: gone(R.DEPLOYMENTS))
    if cascade == "orphan":
        await asyncio.sleep(1.0)
        rss = (await client.list(R.REPLICASETS, ns))["items"]
        pods = live((await client.list(R.PODS, ns))["items"])
        assert len(rss) == 1 and len(pods) == 2
        assert not rss[0]["metadata"].get("ownerReferences")
        assert all(p["metadata"]["ownerReferences"][0]["name"] == rss[0]["metadata"]["name"] for p in pods)
    else:
        await eventually(lambda: gone(R.REPLICASETS))
        await eventually(lambda: gone(R.PODS))


async def test_progress_deadline_and_history_limit(apiserver, controller_manager, kubectl, client):
    ns = await new_namespace(client, "deadline")
    d = deployment("stuck", ns, 2)
    d["spec"]["progressDeadlineSeconds"] = 2
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(d))  # nobody marks these pods ready
    out = await asyncio.to_thread(kubectl, "rollout", "status", "deployment/stuck", "-n", ns, "--timeout=60s",
                                  timeout=70, check=False)
    assert out.returncode != 0 and "exceeded its progress deadline" in (out.stdout + out.stderr)
    st = (await client.get(R.DEPLOYMENTS, "stuck", ns))["status"]
    prog = {c["type"]: c for c in st["conditions"]}["Progressing"]
    assert (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    rs = (await client.list(R.REPLICASETS, ns))["items"][0]["metadata"]["name"]
    assert prog["message"] == f'ReplicaSet "{rs}" has timed out progressing.'
    await asyncio.sleep(0.5)
    reasons = {e["reason"] for e in (await client.list(R.EVENTS, ns))["items"]
               if e["involvedObject"]["kind"] == "Deployment" and e["involvedObject"]["name"] == "stuck"}
    assert reasons == {"ScalingReplicaSet"}, "the timeout is a condition only, as kube-controller-manager"

    sim = await PodSimulator(client, ns).start()
    try:
        d = deployment("hist", ns, 1)
        d["spec"]["revisionHistoryLimit"] = 1
        await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(d))
        for tag in ("2", "3", "4"):
            await asyncio.to_thread(kubectl, "set", "image", "deployment/hist", f"c=busybox:{tag}", "-n", ns)
            await asyncio.to_thread(kubectl, "rollout", "status", "deployment/hist", "-n", ns, "--timeout=60s", timeout=70)

        async def pruned():
            rss = [r for r in (await client.list(R.REPLICASETS, ns))["items"] if r["metadata"]["name"].startswith("hist-")]
            return rss if len(rss) == 2 else None
        rss = await eventually(pruned)
        revs = sorted(int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for r in rss)
        assert revs == [3, 4], "one old ReplicaSet kept besides the current one"
    finally:
        await sim.stop()


# --- the controllers' own ServiceAccounts (--use-service-account-credentials) ---------------

CM_SA = "system:serviceaccount:kube-system:"


def _audit_events(apiserver) -> list[dict]:
    if not apiserver.audit_log.exists():
        return []
    return [json.loads(line) for line in apiserver.audit_log.read_text().splitlines() if line.strip()]


async def test_controllers_write_as_their_service_accounts(apiserver, controller_manager, kubectl, client):
    """With the flag (this module's controller-manager runs with it) the Deployment's
    ReplicaSet is created by ``deployment-controller``, its pods by ``replicaset-controller``
    (the audit log's user), while the managedFields manager stays the controller-manager's;
    RBAC answers for those ServiceAccounts as Kubernetes' bootstrap roles do."""
    ns = await new_namespace(client, "sa-creds")
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(deployment("web", ns, 1)))

    async def rs_and_pod():
        rs = (await client.list(R.REPLICASETS, ns))["items"]
        pods = (await client.list(R.PODS, ns))["items"]
        return (rs[0], pods[0]) if rs and pods else None
    rs, pod = await eventually(rs_and_pod)

    def creator(resource: str, name: str) -> str | None:
        for e in _audit_events(apiserver):
            ref = e.get("objectRef") or {}
            if e.get("verb") == "create" and e.get("stage") == "ResponseComplete" and ref.get("namespace") == ns \
                    and ref.get("resource") == resource and ref.get("name") in (name, None) \
                    and (e.get("responseStatus") or {}).get("code") == 201:
                return e["user"]["username"]
        return None

    async def creators():
        return (creator("replicasets", rs["metadata"]["name"]), creator("pods", pod["metadata"]["name"]))
    users = await eventually(lambda: _both(creators))
    assert users == (CM_SA + "deployment-controller", CM_SA + "replicaset-controller")
    assert {m["manager"] for m in rs["metadata"]["managedFields"]} == {"controller-manager"}
    sa = await client.get(R.SERVICEACCOUNTS, "deployment-controller", "kube-system")
    assert sa["metadata"]["name"] == "deployment-controller"

    def can_i(*args: str) -> str:
        res = kubectl("auth", "can-i", *args, check=False)
        return res.stdout.strip()
    assert await asyncio.to_thread(can_i, "create", "pods", "-n", ns, f"--as={CM_SA}replicaset-controller") == "yes"
    assert await asyncio.to_thread(can_i, "delete", "nodes", f"--as={CM_SA}replicaset-controller") == "no"
    assert await asyncio.to_thread(can_i, "create", "replicasets.apps", "-n", ns,
                                   f"--as={CM_SA}deployment-controller") == "yes"
    assert await asyncio.to_thread(can_i, "create", "pods", "-n", ns, f"--as={CM_SA}deployment-controller") == "no"


async def _both(check):
    a, b = await check()
    return (a, b) if a and b else None


async def test_service_account_tokens_refresh_and_wait(apiserver, client):
    """The builder against the real apiserver: a token refreshed once its (shortened) leeway
    is reached, requests going on with the new one; and, where no token can be had (an
    identity that may not request one), requests wait while the builder retries, and stopping
    it ends cleanly."""
    from controlplane.client.clientbuilder import ServiceAccountClientBuilder

    root = RestClient.from_kubeconfig(apiserver.component_kubeconfig("controller-manager"))
    b = ServiceAccountClientBuilder(root, expiration_s=600, leeway_percent=99.9)  # refresh after ~0.6 s
    sa_client = b.client("ttl-after-finished-controller")
    stop = asyncio.Event()
    task = asyncio.create_task(b.run(stop))
    seen: list[str] = []
    try:
        async def refreshed():
            await sa_client.token_ready.wait()
            tok = sa_client._headers["Authorization"]
            if tok not in seen:
                seen.append(tok)
            return len(seen) >= 2
        await eventually(refreshed)
        review = await client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body={
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
            "spec": {"token": seen[-1].removeprefix("Bearer ")}})
        assert review["status"]["user"]["username"] == CM_SA + "ttl-after-finished-controller"
        with pytest.raises(ApiStatusError) as e:  # its role: jobs, not pods
            await sa_client.list(R.PODS, "kube-system")
        assert e.value.code == 403 and (CM_SA + "ttl-after-finished-controller") in e.value.message
    finally:
        stop.set()
        await task
        await b.close()
        await root.close()

    nobody = RestClient.from_kubeconfig(apiserver.kubeconfig_for(f"nobody-{uuid.uuid4().hex[:6]}"))
    b = ServiceAccountClientBuilder(nobody)
    waiting = b.client("job-controller")
    stop = asyncio.Event()
    task = asyncio.create_task(b.run(stop))
    pending = asyncio.create_task(waiting.get(R.NAMESPACES, "default"))
    try:
        async def retried():
            return b.failures.get("job-controller", 0) >= 2
        await eventually(retried)
        assert not waiting.token_ready.is_set() and not pending.done()
    finally:
        pending.cancel()
        stop.set()
        await task  # run() returns: its retry loop is cancelled, nothing raised
        await asyncio.gather(pending, return_exceptions=True)
        await b.close()
        await nobody.close()
