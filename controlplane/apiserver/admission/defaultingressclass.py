"""DefaultIngressClass (``plugin/pkg/admission/network/defaultingressclass``): an Ingress created
without ``spec.ingressClassName`` (and without the legacy ``kubernetes.io/ingress.class``
annotation) gets the class marked ``ingressclass.kubernetes.io/is-default-class: "true"``; with
several marked, the most recently created one, as Kubernetes picks it since 1.28. No default
class: nothing changes. Updates are never defaulted."""

from __future__ import annotations

from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, Attributes
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo

DEFAULT_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_ANNOTATION = "kubernetes.io/ingress.class"


def default_class(classes: list[dict[str, Any]]) -> str | None:
    """The default IngressClass's name among ``classes`` (the newest when several)."""
    marked = [c for c in classes if ((c.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_ANNOTATION) == "true"]
    if not marked:
        return None
    newest = max(marked, key=lambda c: ((c.get("metadata") or {}).get("creationTimestamp") or "",
                                        (c.get("metadata") or {}).get("name") or ""))
    return (newest.get("metadata") or {}).get("name")


class DefaultIngressClass(Plugin):
    name = "DefaultIngressClass"
    mutates = True
    validates = False

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return info.group == "networking.k8s.io" and info.plural == "ingresses" and not subresource \
            and operation == CREATE

    async def admit(self, a: Attributes) -> None:
        if not isinstance(a.obj, dict):
            return
        spec = a.obj.setdefault("spec", {})
        if not isinstance(spec, dict) or spec.get("ingressClassName"):
            return
        if ((a.obj.get("metadata") or {}).get("annotations") or {}).get(LEGACY_ANNOTATION):
            return
        name = default_class(self.lookups.list_all("ingressclasses"))
        if name:
            spec["ingressClassName"] = name
