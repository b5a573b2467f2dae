"""Who a request comes from: Kubernetes' ``user.Info`` (name, uid, groups, extra) and the
well-known user and group names. Produced by the apiserver's authenticators
(``apiserver/authentication``), read by its authorizers, audit log and admission chain (the
request context), and by the node agent's delegated authentication; here, below all of them,
so none of those has to import another for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"
NODES = "system:nodes"
NODE_PREFIX = "system:node:"
SERVICE_ACCOUNTS = "system:serviceaccounts"
SA_PREFIX = "system:serviceaccount:"
BOOTSTRAPPERS = "system:bootstrappers"
APISERVER = "system:apiserver"

# user.Info extra keys Kubernetes sets for ServiceAccount tokens bound to a pod/node
EXTRA_POD_NAME = "authentication.kubernetes.io/pod-name"
EXTRA_POD_UID = "authentication.kubernetes.io/pod-uid"
EXTRA_NODE_NAME = "authentication.kubernetes.io/node-name"
EXTRA_NODE_UID = "authentication.kubernetes.io/node-uid"
EXTRA_CREDENTIAL_ID = "authentication.kubernetes.io/credential-id"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated (or anonymous) user. Hashable: decisions are cached per user."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())  # sorted, hashable

    @classmethod
    def make(cls, name: str, groups: list[str] | tuple[str, ...] = (), uid: str = "",
             extra: dict[str, list[str]] | None = None, *, authenticated: bool = True) -> "UserInfo":
        gs = list(dict.fromkeys(groups))
        if authenticated and name != ANONYMOUS and AUTHENTICATED not in gs:
            gs.append(AUTHENTICATED)
        ex = tuple(sorted((k, tuple(v)) for k, v in (extra or {}).items()))
        return cls(name, uid, tuple(gs), ex)

    @property
    def extra_dict(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.extra}

    def to_api(self) -> dict[str, Any]:
        """The ``UserInfo`` JSON of TokenReview / SelfSubjectReview / audit events."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = self.extra_dict
        return out

    @property
    def is_anonymous(self) -> bool:
        return self.name == ANONYMOUS

    def node_name(self) -> str | None:
        """``system:node:<name>`` in group ``system:nodes`` -> ``<name>`` (else None)."""
        if self.name.startswith(NODE_PREFIX) and NODES in self.groups:
            return self.name[len(NODE_PREFIX):] or None
        return None

    def service_account(self) -> tuple[str, str] | None:
        """``system:serviceaccount:<ns>:<name>`` -> (ns, name)."""
        if self.name.startswith(SA_PREFIX):
            ns, _, name = self.name[len(SA_PREFIX):].partition(":")
            if ns and name:
                return ns, name
        return None


ANONYMOUS_USER = UserInfo(ANONYMOUS, "", (UNAUTHENTICATED,))


def service_account_user(namespace: str, name: str, uid: str = "",
                         extra: dict[str, list[str]] | None = None) -> UserInfo:
    return UserInfo.make(f"{SA_PREFIX}{namespace}:{name}",
                         [SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}"], uid, extra)


def user_from_api(d: dict[str, Any]) -> UserInfo:
    """A ``UserInfo`` from the API's JSON shape (SubjectAccessReview spec, impersonation)."""
    return UserInfo(str(d.get("user") or d.get("username") or ""), str(d.get("uid") or ""),
                    tuple(d.get("groups") or ()),
                    tuple(sorted((k, tuple(v)) for k, v in (d.get("extra") or {}).items())))


def user_from_peercert(peercert: dict[str, Any] | None) -> UserInfo | None:
    """The user of a client certificate the TLS layer verified (Python's ``getpeercert()``
    shape: ``{'subject': ((('organizationName', 'g'),), (('commonName', 'u'),)), ...}``):
    CN = user, O = groups, as kube-apiserver's ``--client-ca-file`` authenticator reads it.
    None without a (verified) certificate or without a CommonName."""
    if not peercert:
        return None
    cn = ""
    groups: list[str] = []
    for rdn in peercert.get("subject") or ():
        for attr, value in rdn:
            if attr == "commonName" and not cn:
                cn = value
            elif attr == "organizationName":
                groups.append(value)
    if not cn:
        return None
    return UserInfo.make(cn, groups)
