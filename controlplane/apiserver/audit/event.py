"""``audit.k8s.io/v1`` ``Event`` objects, built per request stage by the server layer.

``AuditContext`` travels with one request: the policy's decision, the audit ID (also sent to
the client as ``Audit-ID``), who asked (and whom they impersonated), what was asked
(``objectRef`` from the authorization attributes), the authorization decision and reason
(``authorization.k8s.io/decision`` / ``reason`` annotations), bodies when the level asks for
them, and the response status. ``event(stage)`` renders one stage's JSON.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from controlplane.apiserver.audit.policy import Decision
from controlplane.machinery.timestamps import micro_time
from controlplane.machinery.userinfo import UserInfo


def new_audit_id() -> str:
    """A version-4-shaped UUID from the process's PRNG (an audit ID names a request; it is no
    secret, and ``os.urandom`` costs a system call per request)."""
    h = f"{_rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_rng = random.Random()


def _strip_managed_fields(obj: Any) -> Any:
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict) and "managedFields" in obj["metadata"]:
        obj = {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "managedFields"}}
    if isinstance(obj, dict) and isinstance(obj.get("items"), list):
        obj = {**obj, "items": [_strip_managed_fields(i) for i in obj["items"]]}
    return obj


@dataclass
class AuditContext:
    decision: Decision
    attrs: Any  # authorization.attributes.Attributes
    method: str
    uri: str
    source_ips: list[str]
    user_agent: str
    user: UserInfo
    impersonated: UserInfo | None = None
    audit_id: str = field(default_factory=new_audit_id)
    received: str = field(default_factory=micro_time)
    annotations: dict[str, str] = field(default_factory=dict)
    request_object: Any = None
    response_object: Any = None
    code: int = 0
    status: dict[str, Any] | None = None
    name: str = ""  # the object's name when the URL has none (a create): from the response

    def wants(self, stage: str) -> bool:
        return self.decision.enabled and stage not in self.decision.omit_stages

    def set_request(self, obj: Any) -> None:
        if self.decision.at_least("Request") and obj is not None:
            self.request_object = _strip_managed_fields(obj) if self.decision.omit_managed_fields else obj

    def set_response(self, obj: Any) -> None:
        if self.decision.at_least("RequestResponse") and obj is not None:
            self.response_object = _strip_managed_fields(obj) if self.decision.omit_managed_fields else obj

    def event(self, stage: str) -> dict[str, Any]:
        a = self.attrs
        ev: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": self.decision.level,
            "auditID": self.audit_id, "stage": stage, "requestURI": self.uri, "verb": a.verb,
            "user": self.user.to_api(),
        }
        if self.impersonated is not None:
            ev["impersonatedUser"] = self.impersonated.to_api()
        ev["sourceIPs"] = self.source_ips
        if self.user_agent:
            ev["userAgent"] = self.user_agent
        if a.resource_request:
            ref: dict[str, Any] = {"resource": a.resource}
            if a.namespace:
                ref["namespace"] = a.namespace
            if a.name or self.name:
                ref["name"] = a.name or self.name
            if a.api_group:
                ref["apiGroup"] = a.api_group
            if a.api_version:
                ref["apiVersion"] = a.api_version
            if a.subresource:
                ref["subresource"] = a.subresource
            ev["objectRef"] = ref
        if stage != "RequestReceived":
            rs: dict[str, Any] = {"metadata": {}, "code": self.code}
            if self.status:
                for k in ("status", "message", "reason"):
                    if self.status.get(k):
                        rs[k] = self.status[k]
            ev["responseStatus"] = rs
        if self.request_object is not None:
            ev["requestObject"] = self.request_object
        if self.response_object is not None and stage == "ResponseComplete":
            ev["responseObject"] = self.response_object
        ev["requestReceivedTimestamp"] = self.received
        ev["stageTimestamp"] = micro_time()
        if self.annotations:
            ev["annotations"] = dict(self.annotations)
        return ev
