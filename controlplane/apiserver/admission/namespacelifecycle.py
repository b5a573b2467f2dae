"""NamespaceLifecycle (``plugin/pkg/admission/namespace/lifecycle``): nothing is created in a
namespace that does not exist (404 ``namespaces "x" not found``) or is being terminated (403
``pods "p" is forbidden: unable to create new content in namespace x because it is being
terminated``, with the ``NamespaceTerminating`` cause); updates and connects need the namespace
to exist; deletes of other objects always pass; ``default``, ``kube-system`` and
``kube-public`` may never be deleted. The namespace comes from the watch cache, and from etcd
when the cache does not know it yet or it looks terminating (a namespace created or deleted a
moment ago).
"""

from __future__ import annotations

from controlplane.apiserver.admission.attributes import CREATE, DELETE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors

IMMORTAL = frozenset({"default", "kube-system", "kube-public"})
_REVIEWS = ("localsubjectaccessreviews",)


class NamespaceLifecycle(Plugin):
    name = "NamespaceLifecycle"
    mutates = True
    changes_objects = False  # (it only refuses)

    def __init__(self, lookups: Lookups) -> None:
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        if info.group == "" and info.plural == "namespaces":
            return operation == DELETE and not subresource
        if not info.namespaced or operation == DELETE:
            return False
        return info.plural not in _REVIEWS

    async def admit(self, a: Attributes) -> None:
        if a.info.plural == "namespaces" and a.info.group == "":
            if a.name in IMMORTAL:
                raise forbidden(a, "this namespace may not be deleted")
            return
        ns = a.namespace
        if not ns:
            return
        entry = self.lookups.entry("namespaces", None, ns)
        if entry is not None and (a.operation != CREATE or b'"deletionTimestamp"' not in entry.raw):
            return
        obj = await self.lookups.host.store.get_or_none(self.lookups.info("namespaces"), None, ns)
        if obj is None:
            raise errors.not_found("namespaces", ns)
        if a.operation == CREATE and (obj["metadata"].get("deletionTimestamp")
                                      or (obj.get("status") or {}).get("phase") == "Terminating"):
            err = forbidden(a, f"unable to create new content in namespace {ns} because it is being terminated")
            err.details["causes"] = [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                      "message": f"namespace {ns} is being terminated"}]
            raise err
