"""The apiserver's request filters and security state: TLS, authentication, impersonation,
authorization and audit, in kube-apiserver's filter order, before any endpoint runs.

``Security`` is built from ``SecurityOptions`` (the apiserver's flags) and owns:
- the TLS serving context (``ssl_context``: serving certificate; client certificates asked
  for and verified against ``--client-ca-file``);
- the authenticator chain (``authentication/``) with its object look-ups through the store;
- the authorizer chain (``authorization/``: ``system:masters``, Node, RBAC), the RBAC store
  and the Node graph, fed from the watch caches of the RBAC resources and pods;
- the audit policy and log writer (``audit/``);
- start-up work: Kubernetes' bootstrap RBAC policy reconciled and ``kube-public/cluster-info``
  published (primary worker only).

``filter(request)`` (a Sanic request middleware) authenticates (a connection's client
certificate user is computed once per connection), applies impersonation, derives the
authorization attributes, authorizes (401/403 as Kubernetes words them), opens the audit
context and sets ``meta.request.CURRENT`` for everything below. ``respond`` (response
middleware) and ``finish`` (end of a streamed response) write the audit stages.
``Security`` also implements ``meta.request.Authorizer`` for the layers below (escalation and
bind checks of RBAC writes, admission). With ``--authorization-mode AlwaysAllow`` and no TLS
(the benchmark's "off"), every request is allowed and nothing is audited unless a policy is
given.
"""

from __future__ import annotations

import base64
import dataclasses
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ujson
import yaml
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.audit.event import AuditContext
from controlplane.apiserver.audit.policy import NONE as AUDIT_NONE
from controlplane.apiserver.audit.policy import Policy
from controlplane.apiserver.audit.writer import AuditLogWriter
from controlplane.apiserver.authentication import impersonation
from controlplane.apiserver.authentication.authenticator import Authenticator, Unauthorized
from controlplane.apiserver.authentication.serviceaccount import DEFAULT_ISSUER, TokenIssuer, TokenValidator
from controlplane.apiserver.authentication.tokenfile import TokenFile
from controlplane.apiserver.authentication.x509 import user_from_peercert
from controlplane.apiserver.authorization import bootstrap_policy, escalation
from controlplane.apiserver.authorization.attributes import Attributes, Decision, request_attributes
from controlplane.apiserver.authorization.chain import AlwaysAllow, AuthorizerChain, forbidden_message
from controlplane.apiserver.authorization.feed import CachedPodGraph, RBACFeed
from controlplane.apiserver.authorization.node import NodeAuthorizer
from controlplane.apiserver.authorization.rbac import KINDS as RBAC_KINDS
from controlplane.apiserver.authorization.rbac import RBACAuthorizer, RBACStore
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.write import create_object, write_update
from controlplane.apiserver.meta import errors
from controlplane.apiserver.persistence.codec import object_key
from controlplane.apiserver.meta.request import CURRENT, RequestContext
from controlplane.log import get_logger
from controlplane.machinery.userinfo import ANONYMOUS_USER, UserInfo

log = get_logger(__name__)

RBAC_GROUP = "rbac.authorization.k8s.io"
_PLURALS = {"Role": "roles", "ClusterRole": "clusterroles", "RoleBinding": "rolebindings",
            "ClusterRoleBinding": "clusterrolebindings"}
_LOOKUP = {"ServiceAccount": "serviceaccounts", "Pod": "pods", "Secret": "secrets", "Node": "nodes"}
_STREAMING_SUBRESOURCES = ("exec", "attach", "portforward", "proxy")
_CONNECT_CREATE = ("exec", "attach", "portforward")
_NAME = re.compile(rb'"metadata":\{(?:[^{}]|\{[^{}]*\})*?"name":"([^"\\]+)"')


@dataclass
class SecurityOptions:
    """The apiserver's security flags (kube-apiserver's names)."""

    tls_cert_file: str | None = None
    tls_private_key_file: str | None = None
    client_ca_file: str | None = None
    token_auth_file: str | None = None
    service_account_key_files: list[str] = field(default_factory=list)
    service_account_signing_key_file: str | None = None
    service_account_issuer: str = DEFAULT_ISSUER
    api_audiences: list[str] = field(default_factory=list)
    anonymous_auth: bool = True
    authorization_mode: list[str] = field(default_factory=lambda: ["Node", "RBAC"])
    audit_policy_file: str | None = None
    audit_log_path: str | None = None
    audit_log_maxsize: float = 100
    audit_log_maxbackup: int = 10
    audit_log_maxage: float = 0
    encryption_provider_config: str | None = None
    kubelet_client_certificate: str | None = None
    kubelet_client_key: str | None = None
    kubelet_certificate_authority: str | None = None
    proxy_client_cert_file: str | None = None  # the aggregator's front-proxy identity
    proxy_client_key_file: str | None = None
    advertise_url: str = ""  # published in kube-public/cluster-info


class _LazyGraph(CachedPodGraph):
    """The Node authorizer's graph before ``start`` gave it the pod cache: knows nothing."""

    def __init__(self) -> None:
        super().__init__(None)  # type: ignore[arg-type]

    def has(self, node: str, kind: str, namespace: str, name: str) -> bool:
        return self.pods is not None and super().has(node, kind, namespace, name)


class Security:
    def __init__(self, opts: SecurityOptions) -> None:
        self.opts = opts
        self.api: Any = None
        self.tls = bool(opts.tls_cert_file and opts.tls_private_key_file)
        self.issuer: TokenIssuer | None = None
        if opts.service_account_signing_key_file:
            self.issuer = TokenIssuer(Path(opts.service_account_signing_key_file).read_bytes(),
                                      issuer=opts.service_account_issuer)
        pubs = [Path(f).read_bytes() for f in opts.service_account_key_files]
        self.audiences = list(opts.api_audiences or [opts.service_account_issuer])
        self.validator: TokenValidator | None = None
        if pubs:
            self.validator = TokenValidator(pubs, issuers=[opts.service_account_issuer], audiences=self.audiences,
                                            get=self._get)
        token_file = TokenFile.load(opts.token_auth_file) if opts.token_auth_file else None
        self.authn = Authenticator(token_file=token_file, service_accounts=self.validator, get=self._get,
                                   anonymous=opts.anonymous_auth)
        self.rbac_store = RBACStore()
        self.rbac = RBACAuthorizer(self.rbac_store)
        self.graph = _LazyGraph()  # the pod watch cache, once there is one (start)
        self.always_allow = "AlwaysAllow" in opts.authorization_mode
        authorizers: list[Any] = []
        for mode in opts.authorization_mode:
            if mode == "Node":
                authorizers.append(NodeAuthorizer(self.graph))
            elif mode == "RBAC":
                authorizers.append(self.rbac)
            elif mode != "AlwaysAllow":
                raise ValueError(f"unsupported authorization mode {mode!r} (Node, RBAC, AlwaysAllow)")
        self.chain = AuthorizerChain(authorizers)
        self.policy = Policy.load(opts.audit_policy_file) if opts.audit_policy_file else None
        self.audit_log = AuditLogWriter(opts.audit_log_path, max_size_mb=opts.audit_log_maxsize,
                                        max_backups=opts.audit_log_maxbackup, max_age_days=opts.audit_log_maxage) \
            if (self.policy is not None and opts.audit_log_path) else None
        self.kubelet_ssl = self._kubelet_ssl()
        # the "off" configuration (AlwaysAllow, plain HTTP, no audit) runs no filter at all
        self.filters_requests = self.tls or not self.always_allow or self.audit_log is not None

    # -- TLS -------------------------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.opts.tls_cert_file, self.opts.tls_private_key_file)  # type: ignore[arg-type]
        if self.opts.client_ca_file:
            ctx.load_verify_locations(self.opts.client_ca_file)
            ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])  # no HTTP/2 here
        return ctx

    def _kubelet_ssl(self) -> ssl.SSLContext | None:
        o = self.opts
        if not (o.kubelet_client_certificate and o.kubelet_client_key):
            return None
        if o.kubelet_certificate_authority:
            ctx = ssl.create_default_context(cafile=o.kubelet_certificate_authority)
            ctx.check_hostname = False  # agents are addressed by IP; the chain is still verified
        else:  # kube-apiserver's default: the kubelet's serving certificate is not verified
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(o.kubelet_client_certificate, o.kubelet_client_key)
        return ctx

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, api: Any) -> None:
        """After the watch caches exist: feed RBAC and the Node graph from them, reconcile the
        bootstrap policy (primary worker), start the audit writer."""
        self.api = api
        if not self.always_allow:
            for kind in RBAC_KINDS:
                info = api.registry.get(RBAC_GROUP, "v1", _PLURALS[kind])
                cache = await api.caches.cache_for(info)
                cache.observe(RBACFeed(self.rbac_store, kind))
            self.graph.pods = await api.caches.cache_for(api.registry.get("", "v1", "pods"))
            pv_info = api.registry.get("", "v1", "persistentvolumes")
            if pv_info is not None:
                self.graph.volumes = await api.caches.cache_for(pv_info)
                self.graph.volume_key = lambda name, info=pv_info: object_key(info, None, name)
            if api.primary:
                await self.reconcile_bootstrap_policy()
        if api.primary and self.opts.client_ca_file:
            await self.publish_cluster_info()
        if self.audit_log is not None:
            await self.audit_log.start()

    async def stop(self) -> None:
        if self.audit_log is not None:
            await self.audit_log.stop()

    async def _get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        info = self.api.registry.get("", "v1", _LOOKUP[kind])
        return await self.api.store.get_or_none(info, namespace if info.namespaced else None, name)

    async def reconcile_bootstrap_policy(self) -> None:
        """Kubernetes' default roles and bindings: missing ones created, missing rules and
        subjects added (``rbac.authorization.kubernetes.io/autoupdate: "false"`` respected)."""
        written = 0
        for kind, wanted in bootstrap_policy.policy():
            info = self.api.registry.get(RBAC_GROUP, "v1", _PLURALS[kind])
            name = wanted["metadata"]["name"]
            namespace = wanted["metadata"].get("namespace")  # kube-system Roles and RoleBindings
            existing = await self.api.store.get_or_none(info, namespace, name)
            out = bootstrap_policy.reconcile(existing, wanted)
            if out is None:
                continue
            try:
                if existing is None:
                    await create_object(self.api, info, out, strict=False, manager="controlplane-apiserver", dry=False)
                else:
                    async def compute(current: dict[str, Any], out: dict[str, Any] = out) -> dict[str, Any]:
                        return bootstrap_policy.reconcile(current, out) or current
                    await write_update(self.api, info, namespace, name, compute, subresource="", strict=False,
                                       manager="controlplane-apiserver", dry=False)
                written += 1
            except errors.ApiError as e:
                if e.reason not in ("AlreadyExists", "Conflict"):
                    raise
        if written:
            log.info("bootstrap RBAC policy reconciled", written=written)

    async def publish_cluster_info(self) -> None:
        """``kube-public/cluster-info`` (a kubeconfig with the server and the CA, as kubeadm
        publishes it) and the Role/RoleBinding that let anonymous joiners read it."""
        ca = Path(self.opts.client_ca_file).read_bytes()  # type: ignore[arg-type]
        kubeconfig = yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "clusters": [
            {"name": "", "cluster": {"server": self.opts.advertise_url,
                                     "certificate-authority-data": base64.b64encode(ca).decode()}}],
            "contexts": [], "users": [], "current-context": "", "preferences": {}}, sort_keys=False)
        objs = [
            ("", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                "metadata": {"name": "cluster-info", "namespace": "kube-public"},
                                "data": {"kubeconfig": kubeconfig}}),
            (RBAC_GROUP, "roles", {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "Role",
                                   "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                                                "namespace": "kube-public"},
                                   "rules": [bootstrap_policy.r(["get"], [""], ["configmaps"], ["cluster-info"])]}),
            (RBAC_GROUP, "rolebindings", {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "RoleBinding",
                                          "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo",
                                                       "namespace": "kube-public"},
                                          "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role",
                                                      "name": "kubeadm:bootstrap-signer-clusterinfo"},
                                          "subjects": [bootstrap_policy.user("system:anonymous")]}),
        ]
        for group, plural, obj in objs:
            info = self.api.registry.get(group, "v1", plural)
            current = await self.api.store.get_or_none(info, "kube-public", obj["metadata"]["name"])
            try:
                if current is None:
                    await create_object(self.api, info, obj, strict=False, manager="controlplane-apiserver", dry=False)
                elif group == "" and current.get("data") != obj["data"]:
                    async def compute(cur: dict[str, Any], data: dict[str, Any] = obj["data"]) -> dict[str, Any]:
                        return {**cur, "data": data}
                    await write_update(self.api, info, "kube-public", "cluster-info", compute, subresource="",
                                       strict=False, manager="controlplane-apiserver", dry=False)
            except errors.ApiError as e:
                if e.reason not in ("AlreadyExists", "Conflict"):
                    raise

    # -- meta.request.Authorizer -----------------------------------------------------------
    def allowed(self, user: UserInfo, verb: str, *, group: str = "", resource: str = "", subresource: str = "",
                namespace: str = "", name: str = "", path: str = "") -> bool:
        if self.always_allow:
            return True
        return self.chain.allowed(user, verb, group=group, resource=resource, subresource=subresource,
                                  namespace=namespace, name=name, path=path)

    def check_role_write(self, user: UserInfo, kind: str, obj: dict[str, Any]) -> str | None:
        if self.always_allow:
            return None
        return escalation.check_role(self.chain, self.rbac, user, kind, obj)

    def check_binding_write(self, user: UserInfo, kind: str, obj: dict[str, Any]) -> str | None:
        if self.always_allow:
            return None
        return escalation.check_binding(self.chain, self.rbac, user, kind, obj)

    # -- the request filter ----------------------------------------------------------------
    async def filter(self, request: Request) -> HTTPResponse | None:
        conn = request.conn_info
        cert_user = getattr(conn.ctx, "cert_user", None) if conn is not None else None
        if cert_user is None:
            peercert = request.transport.get_extra_info("peercert") if self.tls and request.transport else None
            cert_user = user_from_peercert(peercert) or False
            if conn is not None:
                conn.ctx.cert_user = cert_user
        headers = request.headers
        try:
            user: UserInfo = await self.authn.authenticate_user(cert_user or None, headers)
        except Unauthorized as e:
            log.info("unauthorized", path=request.path, reason=e.reason)
            return self._deny(request, None, 401, errors.ApiError(401, "Unauthorized", "Unauthorized"))
        real: UserInfo | None = None
        if any(k.lower().startswith("impersonate-") for k in headers.keys()):
            try:
                req = impersonation.requested(impersonation.header_pairs(headers.items()))
            except impersonation.BadImpersonation as e:
                return self._deny(request, None, 400, errors.bad_request(str(e)))
            if req is not None:
                for group, resource, sub, ns, name in impersonation.checks(req):
                    a = Attributes(user, "impersonate", ns, group, "", resource, sub, name)
                    if not (self.always_allow or self.chain.authorize(a).allowed):
                        return self._deny(request, a, 403, errors.ApiError(
                            403, "Forbidden", forbidden_message(a), details={"name": name, "kind": resource}))
                real, user = user, impersonation.impersonated_user(req)
        attrs = request_attributes(user, request.method, request.path, request.args)
        if self.always_allow:
            result = None
        else:
            result = self.chain.authorize(attrs)
            if not result.allowed:
                details: dict[str, Any] = {"kind": attrs.resource} if attrs.resource_request else {}
                if attrs.name:
                    details["name"] = attrs.name
                if attrs.api_group:
                    details["group"] = attrs.api_group
                reason = result.reason if result.decision is Decision.DENY or "relationship" in result.reason else ""
                err = errors.ApiError(403, "Forbidden", forbidden_message(attrs, reason), details=details)
                return self._deny(request, attrs, 403, err, user=user, real=real)
            if attrs.subresource in _CONNECT_CREATE and attrs.verb == "get" and attrs.resource == "pods" \
                    and (headers.get("upgrade") or "").lower() == "websocket":
                # a WebSocket upgrade (a GET) of exec/attach/portforward also needs ``create``, as
                # Kubernetes checks (AuthorizePodWebsocketUpgradeCreatePermission)
                create = dataclasses.replace(attrs, verb="create")
                if not self.chain.authorize(create).allowed:
                    err = errors.ApiError(403, "Forbidden", forbidden_message(create), details={
                        "kind": create.resource, "name": create.name})
                    return self._deny(request, create, 403, err, user=user, real=real)
        audit = self._audit_context(request, attrs, user, real, result)
        CURRENT.set(RequestContext(user, attrs, self, real, audit))
        return None

    def _audit_context(self, request: Request, attrs: Attributes, user: UserInfo, real: UserInfo | None,
                       result: Any) -> AuditContext | None:
        if self.audit_log is None:
            request.ctx.audit = None
            return None
        decision = self.policy.decide(attrs)  # type: ignore[union-attr]
        if not decision.enabled:
            request.ctx.audit = None
            return None
        ctx = AuditContext(decision, attrs, request.method, request.path + (f"?{request.query_string}" if request.query_string else ""),
                           [request.ip or ""], request.headers.get("user-agent", ""),
                           real or user, impersonated=user if real is not None else None)
        ctx.annotations["authorization.k8s.io/decision"] = "allow"
        if result is not None and result.reason:
            ctx.annotations["authorization.k8s.io/reason"] = result.reason
        if decision.at_least("Request") and request.body:
            try:
                ctx.set_request(ujson.loads(request.body))
            except ValueError:
                pass
        request.ctx.audit = ctx
        if ctx.wants("RequestReceived"):
            self.audit_log.write(ctx.event("RequestReceived"))
        return ctx

    def _deny(self, request: Request, attrs: Attributes | None, code: int, err: errors.ApiError, *,
              user: UserInfo | None = None, real: UserInfo | None = None) -> HTTPResponse:
        request.ctx.audit = None
        if self.audit_log is not None and attrs is not None:
            decision = self.policy.decide(attrs)  # type: ignore[union-attr]
            if decision.enabled:
                ctx = AuditContext(decision, attrs, request.method, request.path, [request.ip or ""],
                                   request.headers.get("user-agent", ""), real or attrs.user,
                                   impersonated=attrs.user if real is not None else None)
                ctx.code = code
                ctx.status = {"status": "Failure", "message": err.message, "reason": err.reason}
                ctx.annotations["authorization.k8s.io/decision"] = "forbid"
                ctx.annotations["authorization.k8s.io/reason"] = ""
                self.audit_log.write(ctx.event("ResponseComplete"))
        elif self.audit_log is not None and code == 401:
            # who is unknown: Kubernetes logs these at Metadata for system:anonymous' view of it
            a = request_attributes(ANONYMOUS_USER, request.method, request.path, request.args)
            decision = self.policy.decide(a)  # type: ignore[union-attr]
            if decision.enabled:
                ctx = AuditContext(decision, a, request.method, request.path, [request.ip or ""],
                                   request.headers.get("user-agent", ""), ANONYMOUS_USER)
                ctx.code = 401
                ctx.status = {"status": "Failure", "message": "Unauthorized", "reason": "Unauthorized"}
                self.audit_log.write(ctx.event("ResponseComplete"))
        return hc.status_response(err)

    def respond(self, request: Request, response: HTTPResponse | None) -> None:
        """Response middleware: the audit stage of a response (ResponseStarted for streams,
        which ``finish`` completes)."""
        ctx: AuditContext | None = getattr(request.ctx, "audit", None)
        if ctx is None or response is None:
            return
        ctx.code = response.status
        if response.status >= 400 and response.body:
            try:
                st = ujson.loads(response.body)
                if isinstance(st, dict) and st.get("kind") == "Status":
                    ctx.status = st
            except ValueError:
                pass
        elif ctx.decision.at_least("RequestResponse") and response.body:
            try:
                ctx.set_response(ujson.loads(response.body))
            except ValueError:
                pass
        if not ctx.attrs.name and ctx.attrs.verb == "create" and response.status < 300 and response.body:
            m = _NAME.search(response.body, 0, 2048)  # metadata comes first in what we answer
            if m is not None:
                ctx.name = m.group(1).decode()
        a = ctx.attrs
        streaming = a.verb == "watch" or a.subresource in _STREAMING_SUBRESOURCES or \
            (a.subresource == "log" and request.args.get("follow") in ("true", "1")) or response.status == 101
        if streaming:
            request.ctx.audit_pending = True
            if ctx.wants("ResponseStarted"):
                self.audit_log.write(ctx.event("ResponseStarted"))  # type: ignore[union-attr]
            return
        self._complete(request, ctx)

    def stream_started(self, request: Request, code: int) -> None:
        """A stream the response middleware does not see (a WebSocket exec): ResponseStarted."""
        ctx: AuditContext | None = getattr(request.ctx, "audit", None)
        if ctx is None or getattr(request.ctx, "audit_pending", False):
            return
        ctx.code = code
        request.ctx.audit_pending = True
        if ctx.wants("ResponseStarted"):
            self.audit_log.write(ctx.event("ResponseStarted"))  # type: ignore[union-attr]

    def finish(self, request: Request, code: int | None = None) -> None:
        """End of a streamed response (watch, exec, log follow): its ResponseComplete."""
        ctx: AuditContext | None = getattr(request.ctx, "audit", None)
        if ctx is None:
            return
        if code is not None and not ctx.code:
            ctx.code = code
        if getattr(request.ctx, "audit_pending", False):
            self._complete(request, ctx)

    def _complete(self, request: Request, ctx: AuditContext) -> None:
        request.ctx.audit = None
        request.ctx.audit_pending = False
        if ctx.wants("ResponseComplete"):
            self.audit_log.write(ctx.event("ResponseComplete"))  # type: ignore[union-attr]
