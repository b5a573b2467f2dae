"""The ``autoscaling/v1`` Scale view of a workload, in one place: the apiserver's ``/scale``
subresource and the HPA controller's reads of Scale from its informer caches must give the
same object."""

from __future__ import annotations

from typing import Any

from controlplane.machinery.selectors import LabelSelector


def set_based_selector_text(selector: Any) -> str:
    """``status.selector`` for a workload with a LabelSelector (Deployment, ReplicaSet, ...)."""
    return LabelSelector.from_dict(selector).to_string() if isinstance(selector, dict) else ""


def map_selector_text(selector: Any) -> str:
    """``status.selector`` for a ReplicationController (a plain label map)."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) if isinstance(selector, dict) else ""


def scale_view(meta: dict[str, Any], replicas: Any, observed: Any, selector: str) -> dict[str, Any]:
    """The Scale of an object with metadata ``meta``, desired and observed replica counts and
    the selector text its pods are counted over."""
    scale: dict[str, Any] = {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": int(replicas or 0)},
        "status": {"replicas": int(observed or 0)},
    }
    if selector:
        scale["status"]["selector"] = selector
    return scale
