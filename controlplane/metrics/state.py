"""Cluster-state series with kube-state-metrics' names, computed at scrape time from the
metrics component's slim caches, for the alerting rules (``manifests/prometheus/rules``):

- ``kube_node_status_condition{node,condition,status}`` (1 for the condition's status, 0 for
  the other two), ``kube_node_spec_unschedulable{node}``;
- ``kube_pod_status_phase{namespace,pod,uid,phase}`` (1 for the current phase of Pending,
  Running, Succeeded, Failed, Unknown), ``kube_pod_status_ready{namespace,pod,uid,condition}``;
- ``kube_pod_container_status_waiting_reason{namespace,pod,uid,container,reason}`` (1, for
  waiting containers), ``kube_pod_container_status_restarts_total{namespace,pod,uid,container}``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from controlplane.client.informer import Informer

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


class StateCollector(Collector):
    """The series above, built at most once per ``ttl`` seconds: concurrent scrapes (each on
    its own thread of the metrics server) wait for one build instead of each building the
    whole set (at 150,000 pods that is over a million samples)."""

    def __init__(self, nodes: Informer, pods: Informer, ttl: float = 5.0) -> None:
        self.nodes = nodes
        self.pods = pods
        self.ttl = ttl
        self._lock = threading.Lock()
        self._built: tuple[float, list] | None = None

    def collect(self) -> Iterator:
        with self._lock:
            now = time.monotonic()
            if self._built is None or now - self._built[0] >= self.ttl:
                self._built = (now, list(self._build()))
            families = self._built[1]
        yield from families

    def _build(self) -> Iterator:
        cond = GaugeMetricFamily("kube_node_status_condition", "The condition of a cluster node.",
                                 labels=["node", "condition", "status"])
        unsched = GaugeMetricFamily("kube_node_spec_unschedulable", "Whether a node can schedule new pods.",
                                    labels=["node"])
        for n in self.nodes.list():
            name = n["metadata"]["name"]
            for c in n["status"].get("conditions") or []:
                st = (c.get("status") or "Unknown").lower()
                for s in ("true", "false", "unknown"):
                    cond.add_metric([name, c.get("type") or "", s], 1.0 if s == st else 0.0)
            unsched.add_metric([name], 1.0 if n["spec"].get("unschedulable") else 0.0)
        yield cond
        yield unsched
        phase = GaugeMetricFamily("kube_pod_status_phase", "The pods current phase.",
                                  labels=["namespace", "pod", "uid", "phase"])
        ready = GaugeMetricFamily("kube_pod_status_ready", "Describes whether the pod is ready to serve requests.",
                                  labels=["namespace", "pod", "uid", "condition"])
        waiting = GaugeMetricFamily("kube_pod_container_status_waiting_reason",
                                    "Describes the reason the container is currently in waiting state.",
                                    labels=["namespace", "pod", "uid", "container", "reason"])
        restarts = CounterMetricFamily("kube_pod_container_status_restarts",
                                       "The number of container restarts per container.",
                                       labels=["namespace", "pod", "uid", "container"])
        for p in self.pods.list():
            md, st = p["metadata"], p["status"]
            ns, name, uid = md.get("namespace") or "", md["name"], md.get("uid") or ""
            cur = st.get("phase") or "Unknown"
            for ph in PHASES:
                phase.add_metric([ns, name, uid, ph], 1.0 if ph == cur else 0.0)
            r = "true" if st.get("ready") else "false"
            for s in ("true", "false", "unknown"):
                ready.add_metric([ns, name, uid, s], 1.0 if s == r else 0.0)
            for cname, count, _ready, reason in st.get("containers") or ():
                restarts.add_metric([ns, name, uid, cname], float(count))
                if reason:
                    waiting.add_metric([ns, name, uid, cname, reason], 1.0)
        yield phase
        yield ready
        yield waiting
        yield restarts
