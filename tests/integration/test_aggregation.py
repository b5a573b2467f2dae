"""The aggregation layer with an API server of the test's own (a small HTTPS server for
``wardle.example.com/v1alpha1`` flunders, as Kubernetes' sample-apiserver): the APIService's
``Available`` condition walks through ServiceNotFound, EndpointsNotFound, MissingEndpoints,
FailedDiscoveryCheck and Passed as the Service and Endpoints appear; then the group is in
``/apis``, ``kubectl api-resources`` and ``kubectl get flunders`` go through the apiserver to
the backend over TLS verified with the APIService's caBundle (without the client's
Authorization header); aggregated discovery carries the backend's resources (Current, then Stale
with the last ones while it does not answer); once the APIService is deleted the group is gone."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web

from controlplane.etcd_process import free_port
from controlplane.metrics.tls import self_signed
from tests.fixtures.apiserver import make_kubectl

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GV = "wardle.example.com/v1alpha1"


class Backend:
    """The test's aggregated API server, on a thread of its own."""

    def __init__(self, cert: Path, key: Path, front_proxy_ca: Path) -> None:
        self.port = free_port()
        self.seen: list[dict[str, str]] = []
        self.identities: list[tuple[str, str, list[str]]] = []  # (client certificate CN, X-Remote-User, groups)
        self.cert, self.key, self.front_proxy_ca = cert, key, front_proxy_ca
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _app(self) -> web.Application:
        app = web.Application()

        async def resources(request: web.Request) -> web.Response:
            record(request)
            return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
                {"name": "flunders", "singularName": "flunder", "namespaced": True, "kind": "Flunder",
                 "verbs": ["get", "list"]}]})

        def record(request: web.Request) -> None:
            self.seen.append(dict(request.headers))
            peer = request.transport.get_extra_info("peercert") if request.transport else None
            cn = next((v for rdn in (peer or {}).get("subject", ()) for k, v in rdn if k == "commonName"), "")
            self.identities.append((cn, request.headers.get("X-Remote-User", ""),
                                    request.headers.getall("X-Remote-Group", [])))

        async def flunders(request: web.Request) -> web.Response:
            record(request)
            ns = request.match_info["ns"]
            return web.json_response({"kind": "FlunderList", "apiVersion": GV, "metadata": {"resourceVersion": "1"},
                                      "items": [{"kind": "Flunder", "apiVersion": GV, "metadata": {
                                          "name": "my-flunder", "namespace": ns,
                                          "creationTimestamp": "2026-01-01T00:00:00Z"}}]})

        app.router.add_get(f"/apis/{GV}", resources)
        app.router.add_get(f"/apis/{GV}/namespaces/{{ns}}/flunders", flunders)
        return app

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        ctx.load_verify_locations(str(self.front_proxy_ca))  # request-header authentication, as kube's
        ctx.verify_mode = ssl.CERT_OPTIONAL
        runner = web.AppRunner(self._app(), access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port, ssl_context=ctx).start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())

    def start(self) -> "Backend":
        self.thread.start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _available(kubectl) -> tuple[str, str]:
    r = kubectl("get", "apiservice", "v1alpha1.wardle.example.com", "-o", "json", check=False)
    for c in (json.loads(r.stdout).get("status") or {}).get("conditions") or [] if r.returncode == 0 else []:
        if c["type"] == "Available":
            return c["status"], c["reason"]
    return "", ""


def _aggregated(api) -> dict | None:
    """wardle's version in the aggregated discovery of ``/apis`` (apidiscovery.k8s.io/v2)."""
    with api.http() as h:
        r = h.get("/apis", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    assert r.status_code == 200, r.text
    for item in r.json()["items"]:
        if item["metadata"].get("name") == "wardle.example.com":
            return next((v for v in item["versions"] if v["version"] == "v1alpha1"), None)
    return None


def _wait(what: str, fn, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")


def test_any_aggregated_api(fresh_apiserver, tmp_path: Path) -> None:
    kubectl = make_kubectl(fresh_apiserver.kubeconfig, tmp_path / "cache")
    cert, key = self_signed(tmp_path / "certs", ("api.wardle.svc", "localhost"))
    backend = Backend(cert, key, fresh_apiserver.pki.crt("front-proxy-ca")).start()
    try:
        kubectl("create", "namespace", "wardle")
        kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1alpha1.wardle.example.com"},
            "spec": {"group": "wardle.example.com", "version": "v1alpha1", "groupPriorityMinimum": 1000,
                     "versionPriority": 15, "caBundle": base64.b64encode(cert.read_bytes()).decode(),
                     "service": {"namespace": "wardle", "name": "api", "port": 443}}}))
        _wait("ServiceNotFound", lambda: _available(kubectl) == ("False", "ServiceNotFound"))
        out = kubectl("get", "apiservices").stdout
        assert "v1alpha1.wardle.example.com" in out and "wardle/api" in out and "False (ServiceNotFound)" in out, out
        kubectl("apply", "-n", "wardle", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": backend.port}]}}))
        _wait("EndpointsNotFound", lambda: _available(kubectl) == ("False", "EndpointsNotFound"))

        def endpoints(port: int, name: str = "https") -> None:
            kubectl("apply", "-n", "wardle", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "api"},
                "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": name, "port": port}]}]}))
        endpoints(backend.port, "other")
        _wait("MissingEndpoints", lambda: _available(kubectl) == ("False", "MissingEndpoints"))
        assert kubectl("get", "--raw", f"/apis/{GV}", check=False).returncode != 0  # 503 while unavailable
        endpoints(free_port())  # nothing listens there
        _wait("FailedDiscoveryCheck", lambda: _available(kubectl) == ("False", "FailedDiscoveryCheck"))
        endpoints(backend.port)
        _wait("Available", lambda: _available(kubectl) == ("True", "Passed"))

        groups = json.loads(kubectl("get", "--raw", "/apis").stdout)["groups"]
        wardle = next(g for g in groups if g["name"] == "wardle.example.com")
        assert wardle["preferredVersion"]["groupVersion"] == GV
        # aggregated discovery: the backend's legacy list converted, Current while it answers
        version = _aggregated(fresh_apiserver)
        assert version["freshness"] == "Current", version
        assert [(r["resource"], r["scope"], r["responseKind"]["kind"]) for r in version["resources"]] == \
            [("flunders", "Namespaced", "Flunder")]
        assert "flunders" in kubectl("api-resources", "--api-group=wardle.example.com").stdout
        listed = kubectl("get", "flunders", "-n", "wardle").stdout
        assert "my-flunder" in listed, listed
        assert backend.seen and all("Authorization" not in h and "authorization" not in h for h in backend.seen)
        assert all(h.get("X-Forwarded-For") == "127.0.0.1" for h in backend.seen if "X-Forwarded-For" in h)
        # who asked travels as kube-aggregator sends it: the front-proxy certificate plus X-Remote-*
        # (the availability check as system:kube-aggregator); a client's own X-Remote-* never passes
        assert ("front-proxy-client", "system:kube-aggregator", ["system:masters"]) in backend.identities
        with fresh_apiserver.http() as h:
            r = h.get(f"/apis/{GV}/namespaces/wardle/flunders",
                      headers={"X-Remote-User": "mallory", "X-Remote-Group": "system:masters"})
            assert r.status_code == 200, r.text
        cn, user, groups = backend.identities[-1]
        assert (cn, user) == ("front-proxy-client", "kubernetes-admin"), backend.identities[-1]
        assert "system:masters" in groups and "system:authenticated" in groups and "mallory" not in groups

        # the backend stops answering: Stale, with the resources it gave last (kube-aggregator)
        endpoints(free_port())
        _wait("FailedDiscoveryCheck", lambda: _available(kubectl) == ("False", "FailedDiscoveryCheck"))
        stale = _wait("Stale", lambda: (v := _aggregated(fresh_apiserver)) and v["freshness"] == "Stale" and v)
        assert [r["resource"] for r in stale["resources"]] == ["flunders"]
        endpoints(backend.port)
        _wait("Available again", lambda: _available(kubectl) == ("True", "Passed"))
        _wait("Current again", lambda: (_aggregated(fresh_apiserver) or {}).get("freshness") == "Current")

        kubectl("delete", "apiservice", "v1alpha1.wardle.example.com")
        _wait("the group gone", lambda: "wardle.example.com" not in kubectl("get", "--raw", "/apis").stdout)
        assert kubectl("get", "--raw", f"/apis/{GV}", check=False).returncode != 0
        assert _aggregated(fresh_apiserver) is None
    finally:
        backend.stop()
