"""NodeRestriction as a plugin of the chain: the pure rules are in ``noderestriction.py``; this
turns their verdict into Kubernetes' 403 for requests made by a node (``system:node:<name>``).
"""

from __future__ import annotations

from controlplane.apiserver.admission import noderestriction
from controlplane.apiserver.admission.attributes import Attributes, forbidden
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo

_VERBS = {"CREATE": "create", "UPDATE": "update", "DELETE": "delete", "CONNECT": "connect"}
_CONCERNED = {("", "nodes"), ("", "pods"), ("", "serviceaccounts"), ("coordination.k8s.io", "leases"),
              ("storage.k8s.io", "csinodes")}


class NodeRestriction(Plugin):
    name = "NodeRestriction"
    validates = True

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return (info.group, info.plural) in _CONCERNED and operation != "CONNECT"

    async def validate(self, a: Attributes) -> None:
        if a.user.node_name() is None:
            return
        msg = noderestriction.check(a.user, _VERBS[a.operation], a.info.group, a.info.plural, a.subresource,
                                    a.namespace, a.object_name(), a.obj, a.old)
        if msg:
            raise forbidden(a, msg)
