"""Impersonation (``Impersonate-User``, ``Impersonate-Group``, ``Impersonate-Uid``,
``Impersonate-Extra-<key>`` headers; ``kubectl --as/--as-group``): after authentication, a
request may act as another user if the authenticated user may ``impersonate`` each requested
user (``users``, or ``serviceaccounts`` for ``system:serviceaccount:<ns>:<name>``), group
(``groups``), uid (``uids.authentication.k8s.io``) and extra value
(``userextras/<key>.authentication.k8s.io``), as kube-apiserver's impersonation filter does.

``requested`` parses the headers (groups, uid or extras without a user: 400); ``checks``
lists the (verb, group, resource, subresource, namespace, name) attributes to authorize;
``impersonated_user`` builds the resulting ``UserInfo`` (ServiceAccounts get their groups,
everyone but ``system:anonymous`` gets ``system:authenticated``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping
from urllib.parse import unquote

from controlplane.machinery import userinfo as u
from controlplane.machinery.userinfo import UserInfo

H_USER, H_GROUP, H_UID, H_EXTRA = "impersonate-user", "impersonate-group", "impersonate-uid", "impersonate-extra-"


class BadImpersonation(ValueError):
    """-> 400: impersonation headers that do not make a request."""


@dataclass
class Requested:
    user: str
    groups: list[str] = field(default_factory=list)
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)


def requested(headers: Iterable[tuple[str, str]]) -> Requested | None:
    """The impersonation a request asks for (``headers``: (name, value) pairs, repeated names
    allowed), or None."""
    user = uid = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}
    seen = False
    for k, v in headers:
        lk = k.lower()
        if lk == H_USER:
            user, seen = v, True
        elif lk == H_GROUP:
            groups.append(v)
            seen = True
        elif lk == H_UID:
            uid, seen = v, True
        elif lk.startswith(H_EXTRA):
            extra.setdefault(unquote(lk[len(H_EXTRA):]), []).append(v)
            seen = True
    if not seen:
        return None
    if not user:
        raise BadImpersonation("requested " + ", ".join(
            ([f"groups {groups}"] if groups else []) + ([f"uid {uid}"] if uid else []) +
            ([f"extra {sorted(extra)}"] if extra else [])) + " without impersonating a user")
    return Requested(user, groups, uid, extra)


def checks(req: Requested) -> list[tuple[str, str, str, str, str]]:
    """(group, resource, subresource, namespace, name) to authorize with verb ``impersonate``."""
    out: list[tuple[str, str, str, str, str]] = []
    sa = UserInfo(req.user).service_account()
    if sa is not None:
        out.append(("", "serviceaccounts", "", sa[0], sa[1]))
    else:
        out.append(("", "users", "", "", req.user))
    for g in req.groups:
        out.append(("", "groups", "", "", g))
    if req.uid:
        out.append(("authentication.k8s.io", "uids", "", "", req.uid))
    for k, values in req.extra.items():
        for v in values:
            out.append(("authentication.k8s.io", "userextras", k, "", v))
    return out


def impersonated_user(req: Requested) -> UserInfo:
    groups = list(req.groups)
    sa = UserInfo(req.user).service_account()
    if sa is not None and not req.groups:
        groups = [u.SERVICE_ACCOUNTS, f"{u.SERVICE_ACCOUNTS}:{sa[0]}"]
    if req.user == u.ANONYMOUS:
        if u.UNAUTHENTICATED not in groups:
            groups.append(u.UNAUTHENTICATED)
        return UserInfo.make(req.user, groups, req.uid, req.extra, authenticated=False)
    return UserInfo.make(req.user, groups, req.uid, req.extra)


def header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, v) for k, v in items if k.lower().startswith("impersonate-")]
