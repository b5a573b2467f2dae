"""DaemonSet controller: one pod per node that should run it (kube-controller-manager's
``daemon`` controller, 1.32; the decisions are pure functions in ``daemonsetutil``).

A node should run a daemon pod when the template's ``nodeName``, ``nodeSelector`` and required
node affinity fit it and every NoSchedule/NoExecute taint is tolerated (the template's
tolerations plus the ones Kubernetes adds to daemon pods: not-ready, unreachable, pressure,
unschedulable, network-unavailable for hostNetwork); a pod already there may continue while
no untolerated taint is NoExecute (``NodeShouldRunDaemonPod``). ``reconcile(key)`` follows
``syncDaemonSet``: ``manage`` creates a pod for each node that should run one and has none —
pinned with a required node affinity ``matchFields metadata.name In [node]`` (as Kubernetes
does, so the scheduler binds it there), in ``controllerutil.slow_start_batch`` batches (1, 2,
4, …; a failing batch ends the round with ``FailedCreate`` Events) — deletes the pods of nodes they may not continue on,
duplicates, succeeded pods and (under a per-node back-off, with a ``FailedDaemonPod`` Event)
failed ones, and never-bound pods pinned to nodes that are gone; then, once its expectations
are met, RollingUpdate (``maxUnavailable``: old pods deleted within the budget, the next pass
creates their replacements once the old pod is gone; ``maxSurge``: the new pod starts beside
the old one on up to maxSurge nodes and the old one goes once the new one is available; an
old pod on a node newly tainted NoSchedule stays while it is needed for availability).
Pods carry ``controller-revision-hash`` and ``pod-template-generation`` (the DaemonSet's
``deprecated.daemonset.template.generation``, which the apiserver maintains) labels. Its
history is kept as ControllerRevisions (``<name>-<hash>``, as the StatefulSet's:
``controllerutil``'s history), so ``kubectl rollout history/undo daemonset`` work; matching
orphaned revisions are adopted and owned ones its selector no longer matches released, as the
StatefulSet's. Neighbours: the nodes (node agents), the scheduler, podgc (bound pods of nodes
that are gone).
"""

from __future__ import annotations

import asyncio
import copy
import time

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import controllerutil as cu
from controlplane.controllers import daemonsetutil as dsu
from controlplane.controllers import podutil as pu
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:daemon-set-controller (bootstrap_policy)
SERVICE_ACCOUNT = "daemon-set-controller"

log = get_logger(__name__)
HASH_LABEL = dsu.HASH_LABEL
BURST_REPLICAS = 250  # the daemon controller's burstReplicas: creates/deletes per sync


class DaemonSetController:
    def __init__(self, manager: Manager, *, workers: int = 2) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.ds_inf = manager.informer(R.DAEMONSETS)
        self.pod_inf = manager.informer(R.PODS)
        self.rev_inf = manager.informer(R.CONTROLLERREVISIONS)
        self.node_inf = manager.informer(R.NODES)
        self.recorder = manager.recorder("daemonset-controller", SERVICE_ACCOUNT)
        self.expectations = cu.Expectations()
        self.failed_backoff = dsu.FailedPodBackoff()
        self.controller = Controller("daemonset", self.reconcile, workers=workers)
        self.ds_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.pod_inf.add_handler(self._on_pod)
        self.node_inf.add_handler(self._on_node)
        self.rev_inf.add_handler(self._on_revision)
        manager.add(self.controller)

    def _on_revision(self, etype: str, rev: dict, old: dict | None) -> None:
        ns = (rev.get("metadata") or {}).get("namespace")
        for key in cu.revision_owner_keys(rev, "DaemonSet", self.ds_inf.list(namespace=ns)):
            self.controller.enqueue(key)

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        key = self.expectations.observe_owned_pod(etype, pod, old, "DaemonSet")
        if key is not None:
            self.controller.enqueue(key)

    def _on_node(self, etype: str, node: dict, old: dict | None) -> None:
        if etype == "MODIFIED" and old is not None and cu.labels_of(old) == cu.labels_of(node) and \
                (old.get("spec") or {}).get("taints") == (node.get("spec") or {}).get("taints"):
            return
        for ds in self.ds_inf.list():
            self.controller.enqueue(object_key(ds))

    async def reconcile(self, key: str) -> Result | None:
        ds = self.ds_inf.get(key)
        if ds is None:
            self.expectations.delete(key)
            return None
        ds = copy.deepcopy(ds)
        spec = ds.get("spec") or {}
        template = spec.get("template") or {}
        h = cu.compute_hash(template)
        generation = dsu.template_generation(ds)
        # its pods, orphans its selector matches adopted, non-matching ones released (getDaemonPods)
        claimed = await cu.claim(self.client, R.PODS, ds, self.pod_inf.list(namespace=ds["metadata"]["namespace"]),
                                 cu.selector_matcher(spec.get("selector")), R.DAEMONSETS)
        by_node = dsu.nodes_to_pods(claimed)
        runs = {n["metadata"]["name"]: dsu.node_should_run(template.get("spec") or {}, n) for n in self.node_inf.list()}
        should_run = {n: r[0] for n, r in runs.items()}
        min_ready = int(spec.get("minReadySeconds") or 0)
        now = time.time()
        revisions = await cu.claim_revisions(self.client, ds, self.rev_inf.list(namespace=ds["metadata"]["namespace"]),
                                             cu.selector_matcher(spec.get("selector")),
                                             cu.owner_rechecker(self.client, R.DAEMONSETS, ds))
        if not pu.is_terminating(ds):
            await cu.sync_history(self.client, ds, revisions, f"{ds['metadata']['name']}-{h}", h,
                                  cu.revision_data(template))
        requeue: float | None = None
        if not pu.is_terminating(ds) and self.expectations.satisfied(key):
            requeue = await self._manage(ds, key, by_node, runs, h, generation, min_ready, now)
            strategy = spec.get("updateStrategy") or {"type": "RollingUpdate"}
            if self.expectations.satisfied(key) and strategy.get("type", "RollingUpdate") == "RollingUpdate":
                desired = sum(1 for run in should_run.values() if run)
                delete, create = dsu.rolling_update(by_node, should_run, h, generation, dsu.max_surge(ds, desired),
                                                    dsu.max_unavailable(ds, desired), min_ready, now)
                await self._apply(ds, key, create, delete, h, generation)
        counts = dsu.status_counts(should_run, by_node, h, generation, min_ready, now)
        await self._write_status(ds, counts)
        name = ds["metadata"]["name"]
        live = {f"{name}-{h}"} | {f"{name}-{cu.labels_of(p).get(dsu.HASH_LABEL, '')}" for p in claimed}
        limit = spec.get("revisionHistoryLimit")
        await cu.prune_history(self.client, revisions, live, 10 if limit is None else int(limit))
        if min_ready > 0 and counts["numberReady"] != counts["numberAvailable"]:
            requeue = min(requeue or float(min_ready), float(min_ready))
        return Result(requeue_after=requeue) if requeue is not None else None

    async def _manage(self, ds: dict, key: str, by_node: dict[str, list[dict]], runs: dict[str, tuple[bool, bool]],
                      h: str, generation: str | None, min_ready: int, now: float) -> float | None:
        """``manage``: per node what ``pods_should_be_on_node`` asks (failed pods deleted under
        the per-node back-off, with a Warning Event), plus pods pinned to nodes that are gone
        and never bound. Returns when to look again for a failed pod still in back-off."""
        surge = dsu.allows_surge(ds)
        create: list[str] = []
        delete: list[dict] = []
        requeue: float | None = None
        mono = time.monotonic()
        self.failed_backoff.gc(mono)
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        for node, (run, keep) in sorted(runs.items()):
            acts = dsu.pods_should_be_on_node(run, keep, by_node.get(node, []), h, generation, surge, min_ready, now)
            if acts.create:
                create.append(node)
            delete += acts.delete
            for p in acts.succeeded:
                self.recorder.event(ds, "Normal", "SucceededDaemonPod", f"Found succeeded daemon pod {ns}/"
                                    f"{p['metadata']['name']} on node {node}, will try to delete it")
            bkey = f"{ds['metadata']['uid']}/{(ds.get('status') or {}).get('observedGeneration', 0)}/{node}"
            for p in acts.failed:
                if self.failed_backoff.in_backoff(bkey, mono):
                    delay = self.failed_backoff.delay(bkey)
                    requeue = delay if requeue is None else min(requeue, delay)
                    continue
                self.failed_backoff.next(bkey, mono)
                self.recorder.event(ds, "Warning", "FailedDaemonPod", f"Found failed daemon pod {ns}/"
                                    f"{p['metadata']['name']} on node {node}, will try to kill it")
                log.info("failed daemon pod deleted", daemonset=f"{ns}/{name}", pod=p["metadata"]["name"], node=node)
                delete.append(p)
        delete += dsu.unscheduled_without_node(set(runs), by_node)
        await self._apply(ds, key, create, delete, h, generation)
        return requeue

    async def _apply(self, ds: dict, key: str, create: list[str], delete: list[dict], h: str,
                     generation: str | None) -> None:
        """``syncNodes``: at most ``BURST_REPLICAS`` new pods pinned to ``create``'s nodes, in
        slow-start batches (1, 2, 4, … created concurrently; after the first batch with a
        failure the rest are skipped and no longer expected, the next sync starts again from
        one), then at most ``BURST_REPLICAS`` of ``delete``'s pods deleted concurrently, under
        expectations; Events as ``RealPodControl``'s. Raises the first error after both."""
        create, delete = create[:BURST_REPLICAS], delete[:BURST_REPLICAS]
        if not create and not delete:
            return
        ns, name = ds["metadata"]["namespace"], ds["metadata"]["name"]
        self.expectations.expect_creations(key, len(create))
        self.expectations.expect_deletions(key, {p["metadata"]["uid"] for p in delete})
        template = ds["spec"].get("template") or {}
        labels = {dsu.HASH_LABEL: h}
        if generation is not None:
            labels[dsu.GENERATION_LABEL] = generation

        async def create_one(i: int) -> None:
            pod = cu.pod_from_template(template, ds, extra_labels=labels)
            pod["spec"] = dsu.pin_to_node(pod["spec"], create[i])
            try:
                created = await self.client.create(R.PODS, pod, ns)
            except ApiStatusError as e:
                if cu.is_namespace_terminating(e):
                    return  # Go neither counts it nor lowers the expectations: the namespace is going
                self.recorder.event(ds, "Warning", "FailedCreate", f"Error creating: {e.message}")
                raise
            self.recorder.event(ds, "Normal", "SuccessfulCreate", f"Created pod: {created['metadata']['name']}")

        async def delete_one(p: dict) -> None:
            try:
                await self.client.delete(R.PODS, p["metadata"]["name"], ns, preconditions={"uid": p["metadata"]["uid"]})
                self.recorder.event(ds, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}")
            except ApiStatusError as e:
                self.expectations.deletion_observed(key, p["metadata"]["uid"])
                if not (e.not_found or e.code == 409):
                    self.recorder.event(ds, "Warning", "FailedDelete", f"Error deleting: {e.message}")
                    raise

        errors: list[BaseException] = []
        if create:
            out = await cu.slow_start_batch(len(create), create_one)
            if out.unobserved:
                self.expectations.lower_expected_creations(key, out.unobserved)
            if out.skipped:
                log.info("slow-start failure, skipping pod creations", daemonset=f"{ns}/{name}", skipped=out.skipped)
            errors += out.errors
        if delete:
            results = await asyncio.gather(*(delete_one(p) for p in delete), return_exceptions=True)
            for r in results:
                if isinstance(r, BaseException) and not isinstance(r, Exception):
                    raise r
            errors += [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]

    async def _write_status(self, ds: dict, counts: dict[str, int]) -> None:
        status = {"observedGeneration": ds["metadata"].get("generation", 1), **counts}
        old = ds.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        ds["status"] = {**old, **status}
        try:
            await self.client.update_status(R.DAEMONSETS, ds)
        except ApiStatusError as e:
            if not e.not_found:
                raise

def setup(manager: Manager, workers: int = 2) -> DaemonSetController:
    return DaemonSetController(manager, workers=workers)
