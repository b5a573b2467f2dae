"""Authentication and authorization of the agent's own API (the kubelet's port: logs, exec,
attach, port-forward, stats, metrics), delegated to the apiserver as the kubelet does.

Who: a client certificate the TLS layer verified against the cluster CA (CN = user, O =
groups; the apiserver comes as ``kube-apiserver-kubelet-client``), else a bearer token
checked with a ``TokenReview``. What: a ``SubjectAccessReview`` for verb (from the HTTP
method) on ``nodes/<subresource>`` of this node, the subresource from the path as the
kubelet maps it (``/stats`` -> ``stats``, ``/metrics`` -> ``metrics``, ``/logs`` -> ``log``,
``/pods`` -> ``pods``, ``/healthz`` -> ``healthz``, everything else -- containerLogs, exec,
attach, portForward -- ``proxy``). Results are cached as the kubelet's defaults: token
reviews 2 minutes, allowed decisions 5 minutes, denied ones 30 seconds.

No apiserver code is imported (the agent reaches the cluster only through the REST client).
Neighbours: ``server.AgentServer`` (the middleware that calls ``authenticate``/``authorize``).
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.machinery.userinfo import UserInfo, user_from_api, user_from_peercert
from controlplane.log import get_logger

log = get_logger(__name__)

TOKEN_TTL = 120.0
ALLOW_TTL = 300.0
DENY_TTL = 30.0
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_PATH_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"),
                      ("/pods", "pods"), ("/healthz", "healthz"), ("/configz", "configz"))


def caller_from_peercert(peercert: Mapping[str, Any] | None) -> UserInfo | None:
    return user_from_peercert(dict(peercert) if peercert else None)


def _spec(user: UserInfo) -> dict[str, Any]:
    """The user part of a SubjectAccessReview spec."""
    out: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = user.extra_dict
    return out


def node_subresource(path: str) -> str:
    for prefix, sub in _PATH_SUBRESOURCES:
        if path == prefix or path.startswith(prefix + "/"):
            return sub
    return "proxy"


class Unauthenticated(Exception):
    pass


class DelegatedAuth:
    def __init__(self, client: RestClient, node: str) -> None:
        self.client = client
        self.node = node
        self._tokens: dict[str, tuple[UserInfo | None, float]] = {}
        self._decisions: dict[tuple[UserInfo, str, str, str], tuple[bool, str, float]] = {}

    async def authenticate(self, peercert: Mapping[str, Any] | None, headers: Mapping[str, str]) -> UserInfo:
        c = caller_from_peercert(peercert)
        if c is not None:
            return c
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("no client certificate or bearer token")
        return await self._review_token(token.strip())

    async def _review_token(self, token: str) -> UserInfo:
        now = time.monotonic()
        hit = self._tokens.get(token)
        if hit is not None and hit[1] > now:
            if hit[0] is None:
                raise Unauthenticated("invalid bearer token")
            return hit[0]
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            out = await self.client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review)
        except ApiStatusError as e:
            log.warning("token review failed", error=str(e))
            raise Unauthenticated("token review failed") from e
        st = (out or {}).get("status") or {}
        caller = None
        if st.get("authenticated"):
            u = st.get("user") or {}
            caller = user_from_api(u)
        if len(self._tokens) > 4096:
            self._tokens.clear()
        self._tokens[token] = (caller, now + (TOKEN_TTL if caller else DENY_TTL))
        if caller is None:
            raise Unauthenticated("invalid bearer token")
        return caller

    async def authorize(self, caller: UserInfo, method: str, path: str, node: str | None = None) -> tuple[bool, str]:
        """``node``: the Node asked about (default: this agent's; simulated nodes serve many)."""
        verb = _VERBS.get(method.upper(), method.lower())
        sub = node_subresource(path)
        name = node or self.node
        key = (caller, verb, sub, name)
        now = time.monotonic()
        hit = self._decisions.get(key)
        if hit is not None and hit[2] > now:
            return hit[0], hit[1]
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
               "spec": {**_spec(caller), "resourceAttributes": {"verb": verb, "resource": "nodes",
                                                                "subresource": sub, "name": name}}}
        try:
            out = await self.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=sar)
        except ApiStatusError as e:
            log.warning("subject access review failed", error=str(e))
            return False, "authorization check failed"
        st = (out or {}).get("status") or {}
        allowed = bool(st.get("allowed"))
        why = (f"Forbidden (user={caller.name}, verb={verb}, resource=nodes, subresource={sub})")
        if len(self._decisions) > 65536:  # simulated nodes: one entry per node
            self._decisions.clear()
        self._decisions[key] = (allowed, why, now + (ALLOW_TTL if allowed else DENY_TTL))
        return allowed, why
