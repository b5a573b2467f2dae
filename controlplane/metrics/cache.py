"""Slim caches of Nodes and Pods for the metrics component (metrics-server watches metadata
only): an ``Informer`` with a transform that keeps what the Metrics API and the state metrics
read -- names, labels, the node's addresses, kubelet port, metrics-path annotation and
conditions; the pod's node, phase, container states and restarts -- so 150,000 pods cost a few
hundred bytes each. Identical label sets (every pod of a template) share one dict.
"""

from __future__ import annotations

from typing import Any

from controlplane.client import resources
from controlplane.client.informer import Informer
from controlplane.client.rest import RestClient

METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
_LABELS: dict[tuple, dict[str, str]] = {}
_LABELS_MAX = 200_000


def _shared_labels(labels: dict[str, str] | None) -> dict[str, str]:
    if not labels:
        return {}
    key = tuple(sorted(labels.items()))
    hit = _LABELS.get(key)
    if hit is None:
        if len(_LABELS) >= _LABELS_MAX:
            _LABELS.clear()
        hit = _LABELS[key] = dict(key)
    return hit


def _meta(obj: dict, *, namespaced: bool) -> dict[str, Any]:
    md = obj.get("metadata") or {}
    out = {"name": md.get("name"), "resourceVersion": md.get("resourceVersion"),
           "labels": _shared_labels(md.get("labels")), "creationTimestamp": md.get("creationTimestamp"),
           "uid": md.get("uid")}
    if namespaced:
        out["namespace"] = md.get("namespace")
    if md.get("deletionTimestamp"):
        out["deletionTimestamp"] = md["deletionTimestamp"]
    return out


def slim_node(node: dict) -> dict:
    md = node.get("metadata") or {}
    st = node.get("status") or {}
    meta = _meta(node, namespaced=False)
    path = (md.get("annotations") or {}).get(METRICS_PATH_ANNOTATION)
    if path:
        meta["annotations"] = {METRICS_PATH_ANNOTATION: path}
    return {"metadata": meta, "spec": {"unschedulable": bool((node.get("spec") or {}).get("unschedulable"))},
            "status": {"addresses": st.get("addresses") or [], "daemonEndpoints": st.get("daemonEndpoints") or {},
                       "conditions": [{"type": c.get("type"), "status": c.get("status")} for c in st.get("conditions") or []],
                       "capacity": st.get("capacity") or {}, "allocatable": st.get("allocatable") or {}}}


def slim_pod(pod: dict) -> dict:
    st = pod.get("status") or {}
    cs = []
    for c in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
        state = c.get("state") or {}
        waiting = (state.get("waiting") or {}).get("reason")
        cs.append((c.get("name", ""), int(c.get("restartCount") or 0), bool(c.get("ready")), waiting))
    return {"metadata": _meta(pod, namespaced=True),
            "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName")},
            "status": {"phase": st.get("phase"), "reason": st.get("reason"), "containers": cs,
                       "ready": any(c.get("type") == "Ready" and c.get("status") == "True"
                                    for c in st.get("conditions") or [])}}


def node_informer(client: RestClient) -> Informer:
    return Informer(client, resources.NODES, indexes=False, transform=slim_node)


def pod_informer(client: RestClient) -> Informer:
    inf = Informer(client, resources.PODS, indexes=False, transform=slim_pod)
    inf.add_index("namespace", lambda o: [o["metadata"].get("namespace") or ""])
    return inf
