"""The authorizer chain, in kube-apiserver's order: members of ``system:masters`` are allowed
everything (the privileged-group short cut), then the Node authorizer, then RBAC. The first
ALLOW or DENY wins; if every authorizer has no opinion the request is forbidden.

``forbidden_message`` words the 403 as Kubernetes does. ``check(user, verb, ...)`` is the
convenience the strategies (escalation/bind checks), impersonation and the access reviews
use. Neighbours: ``rbac``, ``node``; the server layer calls ``authorize``.
"""

from __future__ import annotations

from typing import Protocol

from controlplane.machinery.userinfo import MASTERS, UserInfo
from controlplane.apiserver.authorization.attributes import NO_OPINION, Attributes, Decision, Result

_MASTERS_ALLOW = Result(Decision.ALLOW, "")


class Authorizer(Protocol):
    def authorize(self, a: Attributes) -> Result: ...


class AuthorizerChain:
    def __init__(self, authorizers: list[Authorizer], privileged_groups: tuple[str, ...] = (MASTERS,)) -> None:
        self.authorizers = authorizers
        self.privileged = privileged_groups

    def authorize(self, a: Attributes) -> Result:
        for g in a.user.groups:
            if g in self.privileged:
                return _MASTERS_ALLOW
        reasons = []
        for z in self.authorizers:
            res = z.authorize(a)
            if res.decision is not Decision.NO_OPINION:
                return res
            if res.reason:
                reasons.append(res.reason)
        return Result(Decision.NO_OPINION, "; ".join(reasons)) if reasons else NO_OPINION

    def allowed(self, user: UserInfo, verb: str, *, group: str = "", resource: str = "", subresource: str = "",
                namespace: str = "", name: str = "", path: str = "") -> bool:
        a = Attributes(user, verb, namespace, group, "", resource, subresource, name, not path, path)
        return self.authorize(a).allowed


class AlwaysAllow:
    """``--authorization-mode=AlwaysAllow`` (the apiserver's ``--no-auth`` mode, the bench's "off")."""

    def authorize(self, a: Attributes) -> Result:
        return _MASTERS_ALLOW

    def allowed(self, user: UserInfo, verb: str, **kw: str) -> bool:
        return True


def forbidden_message(a: Attributes, reason: str = "") -> str:
    """``pods is forbidden: User "u" cannot list resource "pods" in API group "" in the
    namespace "ns"`` (+ ``: reason`` when an authorizer gave one)."""
    if not a.resource_request:
        msg = f'forbidden: User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    else:
        res = a.resource + (f"/{a.subresource}" if a.subresource else "")
        gr = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
        target = f'{gr} "{a.name}"' if a.name else gr
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        msg = (f'{target} is forbidden: User "{a.user.name}" cannot {a.verb} resource "{res}" in API group '
               f'"{a.api_group}" {scope}')
    return f"{msg}: {reason}" if reason else msg
