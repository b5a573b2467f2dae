"""Who may use a component's own HTTPS port, decided as the generic apiserver's delegated
authentication and authorization decide it (k8s.io/apiserver's ``DelegatingAuthenticationOptions``
and ``DelegatingAuthorizationOptions``): the Metrics API of the metrics component
(``controlplane.metrics.api``) and every component's metrics and health port
(``controlplane.cmd.statusserver``: the controller-manager's, the scheduler's, the
metrics-server's and the agent's ``/metrics``, as kube-controller-manager and kube-scheduler
serve theirs on 10257/10259). Nothing of the apiserver is imported: a component reaches the
cluster only through ``controlplane.client``.

Authentication, in kube's order:

- **request header** (how the aggregation layer forwards a request): a client certificate
  signed by the front-proxy CA (``--requestheader-client-ca-file``; its CommonName among
  ``--requestheader-allowed-names`` when given) makes the ``X-Remote-User``,
  ``X-Remote-Group`` and ``X-Remote-Extra-*`` headers the user. The issuer is checked against
  that CA itself, so a certificate of the cluster CA can never pass headers;
- a **client certificate** of the cluster CA (``--client-ca-file``): CN = user, O = groups;
- a **bearer token**, checked with a ``TokenReview`` (cached 10 s, as the webhook
  authenticator's default);
- nothing: 401.

Authorization: a ``SubjectAccessReview`` with the request's attributes (``get``/``list``
``nodes``/``pods`` in ``metrics.k8s.io``, with namespace and name; a non-resource path for
discovery; ``/metrics``: ``get`` of that path), allowed and denied answers cached 10 s;
``--authorization-always-allow-paths`` (``/healthz``, ``/readyz``, ``/livez`` by default; a
trailing ``*`` matches a prefix, as Kubernetes' path authorizer) skip both, so the anonymous
liveness probes pass. The component's identity needs ``tokenreviews`` and
``subjectaccessreviews`` ``create`` (bootstrap policy: ``system:auth-delegator`` bound to
``system:metrics-server``; the same rules are in ``system:kube-controller-manager``,
``system:kube-scheduler`` and ``system:node``, as Kubernetes' policy has them).

Answers: no credential, or one that is not accepted, is 401 ``Unauthorized``; a user the
SubjectAccessReview does not allow is 403 with Kubernetes' message (``forbidden: User "jane"
cannot get path "/metrics"``).
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.userinfo import UserInfo, user_from_api, user_from_peercert

log = get_logger(__name__)

TTL = 10.0
ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")  # --authorization-always-allow-paths' default
_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class Denied:
    code: int
    reason: str
    message: str


def request_attributes(method: str, path: str, query: Any) -> dict[str, Any]:
    """The SubjectAccessReview attributes of a request (kube's RequestInfo, for one group)."""
    parts = [p for p in path.strip("/").split("/") if p]
    verb = _VERBS.get(method.upper(), method.lower())
    if len(parts) >= 4 and parts[0] == "apis":
        rest = parts[3:]
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        resource, name = rest[0], rest[1] if len(rest) > 1 else ""
        if verb == "get" and not name:
            verb = "watch" if str(query.get("watch", "")) in ("1", "true") else "list"
        attrs = {"verb": verb, "group": parts[1], "version": parts[2], "resource": resource}
        if ns:
            attrs["namespace"] = ns
        if name:
            attrs["name"] = name
        if len(rest) > 2:  # custom.metrics.k8s.io: .../pods/NAME/METRIC, the metric as the subresource
            attrs["subresource"] = rest[2]
        return {"resourceAttributes": attrs}
    return {"nonResourceAttributes": {"verb": verb, "path": path}}


class RequestAuth:
    def __init__(self, client: RestClient, *, requestheader_ca: bytes | None = None,
                 allowed_names: tuple[str, ...] = (), client_ca: bytes | None = None,
                 always_allow_paths: tuple[str, ...] = ALWAYS_ALLOW_PATHS) -> None:
        self.client = client
        self.front_proxy_cas = x509.load_pem_x509_certificates(requestheader_ca) if requestheader_ca else []
        self.allowed_names = allowed_names
        self.client_ca = client_ca
        self.always_allow = always_allow_paths
        self._tokens: dict[str, tuple[UserInfo | None, float]] = {}
        self._decisions: dict[tuple[UserInfo, str], tuple[bool, float]] = {}

    def server_context(self, ctx: ssl.SSLContext) -> ssl.SSLContext:
        """Ask for client certificates, trusted if issued by either CA (which one decides below)."""
        cas = b"".join(c for c in (self.client_ca,) if c)
        for ca in self.front_proxy_cas:
            cas += ca.public_bytes(serialization.Encoding.PEM)
        if cas:
            ctx.load_verify_locations(cadata=cas.decode())
            ctx.verify_mode = ssl.CERT_OPTIONAL
        return ctx

    def _front_proxy(self, der: bytes | None) -> bool:
        if not der or not self.front_proxy_cas:
            return False
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            return False
        signed = False
        for ca in self.front_proxy_cas:
            try:
                cert.verify_directly_issued_by(ca)
                signed = True
                break
            except (InvalidSignature, ValueError, TypeError):
                continue
        if not signed:
            return False
        if not self.allowed_names:
            return True
        cns = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
        return any(cn in self.allowed_names for cn in cns)

    async def authenticate(self, ssl_object: Any, headers: Any) -> UserInfo | None:
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if self._front_proxy(der):
            name = headers.get("X-Remote-User", "")
            if name:
                groups = headers.getall("X-Remote-Group", []) if hasattr(headers, "getall") else []
                extra: dict[str, list[str]] = {}
                for k, v in headers.items():
                    if k.lower().startswith("x-remote-extra-"):
                        extra.setdefault(unquote(k[len("x-remote-extra-"):]).lower(), []).append(v)
                return UserInfo.make(name, groups, extra=extra)
        elif der and self.client_ca:
            user = user_from_peercert(ssl_object.getpeercert())
            if user is not None and not self._front_proxy_signed(der):
                return user
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return await self._review(token.strip())
        return None

    def _front_proxy_signed(self, der: bytes) -> bool:
        """A front-proxy certificate whose name is not allowed is nobody (never a cert user)."""
        saved, self.allowed_names = self.allowed_names, ()
        try:
            return self._front_proxy(der)
        finally:
            self.allowed_names = saved

    async def _review(self, token: str) -> UserInfo | None:
        now = time.monotonic()
        hit = self._tokens.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            out = await self.client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=body)
        except ApiStatusError as e:
            log.warning("token review failed", error=str(e))
            return None
        st = (out or {}).get("status") or {}
        user = user_from_api(st.get("user") or {}) if st.get("authenticated") else None
        if len(self._tokens) > 4096:
            self._tokens.clear()
        self._tokens[token] = (user, now + TTL)
        return user

    async def authorize(self, user: UserInfo, attrs: dict[str, Any]) -> bool:
        key = (user, repr(sorted((k, sorted(v.items())) for k, v in attrs.items())))
        now = time.monotonic()
        hit = self._decisions.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups), **attrs}
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = user.extra_dict
        sar = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            out = await self.client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=sar)
        except ApiStatusError as e:
            log.warning("subject access review failed", error=str(e))
            return False
        allowed = bool(((out or {}).get("status") or {}).get("allowed"))
        if len(self._decisions) > 4096:
            self._decisions.clear()
        self._decisions[key] = (allowed, now + TTL)
        return allowed

    def always_allowed(self, path: str) -> bool:
        """``--authorization-always-allow-paths``: exact paths, or prefixes ending in ``*``."""
        return any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in self.always_allow)

    async def check(self, request: Any) -> Denied | None:
        """None when the request may go on, else the answer to give (401/403). ``request``:
        an aiohttp request (``transport``, ``headers``, ``method``, ``path``, ``query``)."""
        if self.always_allowed(request.path):
            return None
        ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
        user = await self.authenticate(ssl_object, request.headers)
        if user is None:
            return Denied(401, "Unauthorized", "Unauthorized")
        attrs = request_attributes(request.method, request.path, request.query)
        if await self.authorize(user, attrs):
            return None
        ra = attrs.get("resourceAttributes")
        if ra is not None:
            scope = f' in the namespace "{ra["namespace"]}"' if ra.get("namespace") else " at the cluster scope"
            named = f' "{ra["name"]}"' if ra.get("name") else ""
            msg = (f'{ra["resource"]}.{ra["group"]}{named} is forbidden: User "{user.name}" cannot {ra["verb"]} '
                   f'resource "{ra["resource"]}" in API group "{ra["group"]}"{scope}')
        else:
            na = attrs["nonResourceAttributes"]
            msg = f'forbidden: User "{user.name}" cannot {na["verb"]} path "{na["path"]}"'
        return Denied(403, "Forbidden", msg)
