"""DefaultTolerationSeconds (``plugin/pkg/admission/defaulttolerationseconds``): a pod that does
not tolerate the ``node.kubernetes.io/not-ready`` and ``node.kubernetes.io/unreachable``
NoExecute taints gets tolerations for them with ``tolerationSeconds: 300``, so that the node
lifecycle controller evicts it five minutes after its node went away.
"""

from __future__ import annotations

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
DEFAULT_SECONDS = 300


class DefaultTolerationSeconds(Plugin):
    name = "DefaultTolerationSeconds"
    mutates = True

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return info.group == "" and info.plural == "pods" and not subresource and operation in (CREATE, UPDATE)

    async def admit(self, a: Attributes) -> None:
        spec = (a.obj or {}).get("spec")
        if isinstance(spec, dict):
            add_default_tolerations(spec)


def add_default_tolerations(spec: dict) -> None:
    """The two NoExecute tolerations, unless the pod tolerates those taints already."""
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    not_ready = unreachable = False
    for t in tolerations:
        if not isinstance(t, dict):
            continue
        key, effect = t.get("key") or "", t.get("effect") or ""
        if effect in ("", "NoExecute"):
            not_ready = not_ready or key in (NOT_READY, "")
            unreachable = unreachable or key in (UNREACHABLE, "")
    if not not_ready:
        tolerations.append({"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": DEFAULT_SECONDS})
    if not unreachable:
        tolerations.append({"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute",
                            "tolerationSeconds": DEFAULT_SECONDS})
    spec["tolerations"] = tolerations
