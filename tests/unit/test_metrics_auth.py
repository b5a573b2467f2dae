"""The Metrics API's delegated authentication and authorization (``controlplane.client.delegatedauth``)
and the aggregation proxy's identity headers: request attributes as kube's RequestInfo, the
front-proxy certificate recognised only when its own CA signed it (and its name is allowed),
X-Remote-* read into a user, bearer tokens and decisions through TokenReview /
SubjectAccessReview (a recording fake client: no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from multidict import CIMultiDict

from controlplane.apiserver.aggregation.proxy import identity_headers
from controlplane.machinery.userinfo import UserInfo
from controlplane.client.delegatedauth import RequestAuth, request_attributes
from controlplane.pki import certs


@pytest.mark.parametrize("method,path,query,want", [
    ("GET", "/apis/metrics.k8s.io/v1beta1/nodes", {}, {"resourceAttributes": {
        "verb": "list", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "nodes"}}),
    ("GET", "/apis/metrics.k8s.io/v1beta1/nodes/n1", {}, {"resourceAttributes": {
        "verb": "get", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "nodes", "name": "n1"}}),
    ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/a/pods", {"watch": "true"}, {"resourceAttributes": {
        "verb": "watch", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "pods", "namespace": "a"}}),
    ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/a/pods/p", {}, {"resourceAttributes": {
        "verb": "get", "group": "metrics.k8s.io", "version": "v1beta1", "resource": "pods", "namespace": "a",
        "name": "p"}}),
    ("GET", "/apis/metrics.k8s.io/v1beta1", {}, {"nonResourceAttributes": {
        "verb": "get", "path": "/apis/metrics.k8s.io/v1beta1"}}),
    ("GET", "/apis", {}, {"nonResourceAttributes": {"verb": "get", "path": "/apis"}}),
    # custom.metrics.k8s.io: the metric is the subresource, * the name (kube's RequestInfo)
    ("GET", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/a/pods/*/cpu_usage", {}, {"resourceAttributes": {
        "verb": "get", "group": "custom.metrics.k8s.io", "version": "v1beta2", "resource": "pods", "namespace": "a",
        "name": "*", "subresource": "cpu_usage"}}),
    ("GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/a/queue_depth", {}, {"resourceAttributes": {
        "verb": "list", "group": "external.metrics.k8s.io", "version": "v1beta1", "resource": "queue_depth",
        "namespace": "a"}}),
])
def test_request_attributes(method, path, query, want):
    assert request_attributes(method, path, query) == want


class FakeClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict]] = []

    async def request(self, method: str, path: str, body: dict | None = None, **_: Any) -> dict:
        self.calls.append((path, body or {}))
        kind = "tokenreviews" if path.endswith("tokenreviews") else "subjectaccessreviews"
        return self.answers[kind](body)


class FakeSSL:
    def __init__(self, der: bytes | None, peercert: dict | None = None) -> None:
        self.der, self.peercert = der, peercert

    def getpeercert(self, binary_form: bool = False) -> Any:
        return self.der if binary_form else self.peercert


def _der(ck: certs.CertKey) -> bytes:
    return ck.cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def cas():
    cluster, front = certs.new_ca("cluster-ca"), certs.new_ca("front-proxy-ca")
    return cluster, front


def _auth(cas, client=None, allowed=("front-proxy-client",)) -> RequestAuth:
    cluster, front = cas
    return RequestAuth(client or FakeClient({}), requestheader_ca=front.cert_pem, allowed_names=allowed,
                       client_ca=cluster.cert_pem)


def _headers(*pairs: tuple[str, str]) -> CIMultiDict:
    return CIMultiDict(pairs)


REMOTE = (("X-Remote-User", "jane"), ("X-Remote-Group", "devs"), ("X-Remote-Group", "system:authenticated"),
          ("X-Remote-Extra-Scopes", "a"), ("X-Remote-Extra-Scopes", "b"))


def test_front_proxy_certificate_makes_the_headers_the_user(cas):
    cluster, front = cas
    proxy = certs.issue(front, "front-proxy-client", client=True)
    user = asyncio.run(_auth(cas).authenticate(FakeSSL(_der(proxy)), _headers(*REMOTE)))
    assert user == UserInfo.make("jane", ["devs", "system:authenticated"], extra={"scopes": ["a", "b"]})


@pytest.mark.parametrize("issuer,cn", [("cluster", "front-proxy-client"), ("front", "someone-else")])
def test_headers_are_ignored_without_the_right_front_proxy_certificate(cas, issuer, cn):
    cluster, front = cas
    ck = certs.issue(cluster if issuer == "cluster" else front, cn, client=True)
    peer = {"subject": ((("commonName", cn),),)}
    user = asyncio.run(_auth(cas).authenticate(FakeSSL(_der(ck), peer), _headers(*REMOTE)))
    # a cluster certificate is its own subject, never the headers; a front-proxy one with a
    # name not allowed is nobody
    assert user == (UserInfo.make(cn) if issuer == "cluster" else None)


def test_bearer_token_reviewed_and_cached(cas):
    client = FakeClient({"tokenreviews": lambda b: {"status": {"authenticated": b["spec"]["token"] == "good",
                                                               "user": {"username": "sa", "groups": ["g"]}}}})
    auth = _auth(cas, client)
    h = _headers(("Authorization", "Bearer good"))
    assert asyncio.run(auth.authenticate(None, h)).name == "sa"
    assert asyncio.run(auth.authenticate(None, h)).name == "sa"
    assert len(client.calls) == 1
    assert asyncio.run(auth.authenticate(None, _headers(("Authorization", "Bearer bad")))) is None
    assert asyncio.run(auth.authenticate(None, _headers())) is None


def test_authorize_sends_the_attributes_and_caches(cas):
    seen = []

    def sar(body):
        seen.append(body["spec"])
        return {"status": {"allowed": body["spec"]["user"] == "jane"}}
    auth = _auth(cas, FakeClient({"subjectaccessreviews": sar}))
    attrs = request_attributes("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/a/pods", {})
    jane = UserInfo.make("jane", ["devs"], extra={"k": ["v"]})
    assert asyncio.run(auth.authorize(jane, attrs)) is True
    assert asyncio.run(auth.authorize(jane, attrs)) is True
    assert asyncio.run(auth.authorize(UserInfo.make("bob"), attrs)) is False
    assert len(seen) == 2
    assert seen[0] == {"user": "jane", "groups": ["devs", "system:authenticated"], "extra": {"k": ["v"]}, **attrs}


def test_identity_headers_name_the_user():
    u = UserInfo.make("jane", ["devs"], extra={"authentication.kubernetes.io/pod-name": ["p"]})
    assert identity_headers(u) == [
        ("X-Remote-User", "jane"), ("X-Remote-Group", "devs"), ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-authentication.kubernetes.io%2Fpod-name", "p")]


@pytest.mark.parametrize("paths,path,want", [
    (("/healthz", "/readyz", "/livez"), "/livez", True),
    (("/healthz", "/readyz", "/livez"), "/livez/ping", False),
    (("/healthz", "/readyz", "/livez"), "/metrics", False),
    (("/livez/*",), "/livez/ping", True),
    (("/livez/*",), "/livez", False),
    (("*",), "/anything", True),
    ((), "/healthz", False),
], ids=["exact", "exact-not-prefix", "other", "star-prefix", "star-needs-slash", "star-all", "none"])
def test_always_allow_paths(cas, paths, path, want):
    """``--authorization-always-allow-paths`` as Kubernetes' path authorizer matches them."""
    cluster, front = cas
    auth = RequestAuth(FakeClient({}), client_ca=cluster.cert_pem, always_allow_paths=paths)
    assert auth.always_allowed(path) is want
