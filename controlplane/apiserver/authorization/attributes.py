"""What an authorizer decides on: Kubernetes' ``authorizer.Attributes`` (user, verb, the
resource or non-resource path) and the three-valued decision (allow, deny, no opinion).

The server layer derives ``Attributes`` from each request (``request_attributes``: verb
from method and path as kube-apiserver's RequestInfo does; ``list``/``watch`` for collection
GETs, ``deletecollection`` for collection DELETEs, ``patch``). Authorizers never see HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from controlplane.machinery.userinfo import UserInfo


class Decision(Enum):
    DENY = 0
    ALLOW = 1
    NO_OPINION = 2


@dataclass(frozen=True, slots=True)
class Attributes:
    user: UserInfo
    verb: str
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    resource_request: bool = True
    path: str = ""

    def cache_key(self) -> tuple:
        return (self.verb, self.namespace, self.api_group, self.resource, self.subresource, self.name,
                self.resource_request, self.path)

    def describe(self) -> str:
        """Kubernetes' Forbidden wording: ``User "u" cannot list resource "pods" in API group
        "" in the namespace "ns"``."""
        if not self.resource_request:
            return f'User "{self.user.name}" cannot {self.verb} path "{self.path}"'
        res = self.resource + (f"/{self.subresource}" if self.subresource else "")
        scope = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return f'User "{self.user.name}" cannot {self.verb} resource "{res}" in API group "{self.api_group}" {scope}'


@dataclass(frozen=True, slots=True)
class Result:
    decision: Decision
    reason: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOW


NO_OPINION = Result(Decision.NO_OPINION)

# verbs of a GET/POST/... on a path (kube-apiserver's RequestInfoFactory)
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
                 "GET": "get", "HEAD": "get"}
_NON_RESOURCE_METHOD = {"GET": "get", "HEAD": "head", "POST": "post", "PUT": "put", "PATCH": "patch",
                        "DELETE": "delete", "OPTIONS": "options"}


def request_attributes(user: UserInfo, method: str, path: str, query: dict[str, str] | None = None) -> Attributes:
    """kube-apiserver's RequestInfo for ``method path?query``: resource requests under
    ``/api/v1`` and ``/apis/G/V``; anything else (or a bare group/version path) is a
    non-resource request with the lower-cased method as verb."""
    q = query or {}
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Attributes(user, _NON_RESOURCE_METHOD.get(method, method.lower()), resource_request=False, path=path)
    if not rest:  # discovery of a group version
        return Attributes(user, _NON_RESOURCE_METHOD.get(method, method.lower()), resource_request=False, path=path)
    verb = _METHOD_VERBS.get(method, method.lower())
    if rest[0] == "watch":  # deprecated /watch/ prefix
        rest = rest[1:]
        verb = "watch"
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]  # /namespaces/NAME is the Namespace NAME "in" namespace NAME
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if not name:
        if verb == "get":
            verb = "watch" if q.get("watch") in ("true", "1") else "list"
        elif verb == "delete":
            verb = "deletecollection"
    elif verb == "get" and q.get("watch") in ("true", "1"):
        verb = "watch"
    if not name and verb in ("list", "watch"):
        fs = q.get("fieldSelector", "")
        for prefix in ("metadata.name==", "metadata.name="):
            if fs.startswith(prefix) and "," not in fs:
                name = fs[len(prefix):]
                break
    return Attributes(user, verb, namespace, group, version, resource, sub, name, True, path)
