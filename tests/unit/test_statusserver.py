"""Every component's metrics/health port (``controlplane.cmd.statusserver``) on a real loopback
socket: plain HTTP without a serving certificate; with one, HTTPS whose callers are
authenticated (cluster client certificate, bearer token through a TokenReview) and authorized
(SubjectAccessReview for ``get`` on the path) by a recording fake of the apiserver's review
APIs, anonymous only on the always-allowed paths; Kubernetes' 401/403 Status answers."""

from __future__ import annotations

import argparse
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from controlplane.cmd import statusserver
from controlplane.machinery.healthz import HealthChecks
from controlplane.pki import certs

TOKENS = {"good-token": {"username": "token-user", "groups": ["system:authenticated"]},
          "monitor-token": {"username": "system:serviceaccount:mon:prom", "groups": ["system:monitoring"]}}
MONITORING = ("/metrics", "/healthz", "/healthz/*", "/livez", "/livez/*", "/readyz", "/readyz/*")  # system:monitoring


class FakeReviews:
    """The apiserver's TokenReview / SubjectAccessReview, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.closed = False

    async def request(self, method: str, path: str, body: dict | None = None, **_: Any) -> dict:
        self.calls.append((path, body or {}))
        spec = (body or {})["spec"]
        if path.endswith("tokenreviews"):
            user = TOKENS.get(spec["token"])
            return {"status": {"authenticated": True, "user": user} if user else {"authenticated": False}}
        groups, path = set(spec.get("groups") or []), spec["nonResourceAttributes"]["path"]
        monitoring = any(path.startswith(p[:-1]) if p.endswith("*") else path == p for p in MONITORING)
        return {"status": {"allowed": "system:masters" in groups or ("system:monitoring" in groups and monitoring)}}

    async def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    ca = certs.new_ca("test-ca")
    (d / "ca.crt").write_bytes(ca.cert_pem)
    certs.issue(ca, "kube-scheduler", sans=["127.0.0.1", "localhost"], server=True).write(d / "s.crt", d / "s.key")
    certs.issue(ca, "jane", client=True).write(d / "jane.crt", d / "jane.key")
    certs.issue(ca, "kubernetes-admin", orgs=["system:masters"], client=True).write(d / "admin.crt", d / "admin.key")
    certs.issue(ca, "system:prometheus", orgs=["system:monitoring"], client=True).write(d / "prom.crt", d / "prom.key")
    other = certs.new_ca("other-ca")
    certs.issue(other, "mallory", orgs=["system:masters"], client=True).write(d / "evil.crt", d / "evil.key")
    return {"dir": d}


def _registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("test_things", "things", registry=reg).inc(3)
    return reg


def _health() -> HealthChecks:
    h = HealthChecks()
    h.add("ping", lambda: None)
    h.add("informer-sync", lambda: "informers not synced: pods", ("readyz",))
    return h


def _get(url: str, ctx: ssl.SSLContext | None = None, headers: dict | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def secure(pki):
    d = pki["dir"]
    fake = FakeReviews()
    serving = statusserver.SecureServing(d / "s.crt", d / "s.key", d / "ca.crt", ("/healthz", "/readyz", "/livez"),
                                         lambda: fake)  # type: ignore[arg-type, return-value]
    srv = statusserver.StatusServer(_health(), _registry(), 0, serving)
    port = srv.start()
    yield srv, port, fake
    srv.stop()
    assert fake.closed


def _client(d: Path, who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(d / "ca.crt"))
    if who:
        ctx.load_cert_chain(str(d / f"{who}.crt"), str(d / f"{who}.key"))
    return ctx


@pytest.mark.parametrize("path,who,token,code,text", [
    ("/metrics", None, None, 401, '"reason":"Unauthorized"'),
    ("/metrics", None, "bad-token", 401, '"message":"Unauthorized"'),
    ("/metrics", "jane", None, 403, 'forbidden: User \\"jane\\" cannot get path \\"/metrics\\"'),
    ("/metrics", None, "good-token", 403, 'User \\"token-user\\" cannot get path \\"/metrics\\"'),
    ("/metrics", "prom", None, 200, "test_things_total 3.0"),
    ("/metrics", None, "monitor-token", 200, "test_things_total 3.0"),
    ("/livez", None, None, 200, "ok"),
    ("/healthz", None, None, 200, "ok"),
    ("/readyz", None, None, 500, "[-]informer-sync failed: reason withheld"),
    ("/livez?verbose", None, None, 200, "[+]ping ok"),
    ("/livez/ping", None, None, 401, "Unauthorized"),  # only the exact paths are always allowed
    ("/livez/ping", "prom", None, 200, "ok"),
    ("/nothing", "prom", None, 403, 'cannot get path \\"/nothing\\"'),  # authorized before routed, as Kubernetes
    ("/nothing", "admin", None, 404, "Not Found"),
    ("/metrics", "admin", None, 200, "# TYPE test_things_total counter"),
], ids=["anonymous", "bad-token", "cert-no-rbac", "token-no-rbac", "monitoring-cert",
        "monitoring-token", "livez", "healthz", "readyz-failing", "livez-verbose", "check-needs-auth",
        "check-monitoring", "unknown-path-denied", "unknown-path-admin", "admin"])
def test_secure_port(secure, pki, path, who, token, code, text):
    _, port, _ = secure
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    got, body = _get(f"https://127.0.0.1:{port}{path}", _client(pki["dir"], who), headers)
    assert got == code, body
    assert text in body
    if code in (401, 403):
        st = json.loads(body)
        assert st["kind"] == "Status" and st["code"] == code and st["status"] == "Failure"


def test_foreign_certificate_fails_the_handshake(secure, pki):
    """A client certificate the client CA did not sign ends the TLS handshake, as Go's
    ``VerifyClientCertIfGiven`` does: it is never taken for a user (nor for anonymous)."""
    _, port, _ = secure
    with pytest.raises((ssl.SSLError, ConnectionError, urllib.error.URLError)):
        _get(f"https://127.0.0.1:{port}/livez", _client(pki["dir"], "evil"))


def test_secure_port_reviews_as_kubernetes(secure, pki):
    """The SubjectAccessReview carries the user and a non-resource ``get`` of the path."""
    _, port, fake = secure
    assert _get(f"https://127.0.0.1:{port}/metrics?x=1", _client(pki["dir"], "jane"))[0] == 403
    sars = [b["spec"] for p, b in fake.calls if p.endswith("subjectaccessreviews") and b["spec"]["user"] == "jane"]
    assert sars, fake.calls  # (a decision is cached 10 s: the first request of jane's made it)
    assert sars[0]["nonResourceAttributes"] == {"verb": "get", "path": "/metrics"}
    assert not [c for c in fake.calls if c[1]["spec"].get("user") == "system:anonymous"]  # 401 asks nothing


def test_plain_port_without_certificate():
    srv = statusserver.StatusServer(_health(), _registry(), 0, None)
    port = srv.start()
    try:
        assert srv.scheme == "http" and srv.auth is None
        code, body = _get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200 and "test_things_total 3.0" in body
        code, body = _get(f"http://127.0.0.1:{port}/metrics", headers={"Accept": "application/openmetrics-text"})
        assert code == 200 and body.rstrip().endswith("# EOF")
        assert _get(f"http://127.0.0.1:{port}/readyz/informer-sync")[0] == 500
        assert _get(f"http://127.0.0.1:{port}/healthz/ping")[0] == 200
        assert _get(f"http://127.0.0.1:{port}/elsewhere")[0] == 404
    finally:
        srv.stop()


def _args(**kw: Any) -> argparse.Namespace:
    base = {"tls_cert_file": None, "tls_private_key_file": None, "client_ca_file": None,
            "authorization_always_allow_paths": "/healthz,/readyz,/livez", "kubeconfig": "k.kubeconfig"}
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("args,want", [
    (_args(), None),
    (_args(tls_cert_file="c", tls_private_key_file="k", client_ca_file="ca"),
     ("c", "k", "ca", ("/healthz", "/readyz", "/livez"), True)),
    (_args(tls_cert_file="c", tls_private_key_file="k", authorization_always_allow_paths="/livez, /metrics/*"),
     ("c", "k", None, ("/livez", "/metrics/*"), True)),
    (_args(tls_cert_file="c", tls_private_key_file="k", delegated_auth=False),
     ("c", "k", None, ("/healthz", "/readyz", "/livez"), False)),
], ids=["no-certificate-plain", "secure", "allow-paths", "delegation-off"])
def test_secure_serving_from_flags(args, want):
    got = statusserver.secure_serving(args, "scheduler")
    if want is None:
        assert got is None
        return
    cert, key, ca, paths, delegated = want
    assert (str(got.cert), str(got.key), str(got.client_ca) if got.client_ca else None, got.always_allow,
            got.client is not None) == (cert, key, ca, paths, delegated)


@pytest.mark.parametrize("args,message", [
    (_args(tls_cert_file="c"), "--tls-private-key-file"),
    (_args(tls_cert_file="c", tls_private_key_file="k", kubeconfig=None), "--kubeconfig"),
], ids=["no-key", "no-identity"])
def test_secure_serving_flag_errors(args, message):
    with pytest.raises(SystemExit, match=message):
        statusserver.secure_serving(args, "scheduler")
