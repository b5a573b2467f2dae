"""The components' own metrics/health ports on a real ``controlplane up``, as Kubernetes' secure
ports (kube-controller-manager 10257, kube-scheduler 10259, metrics-server): HTTPS with a
serving certificate of the cluster CA, delegated authentication (client certificate, bearer
token through the real apiserver's TokenReview) and authorization (SubjectAccessReview,
``get`` on the path). Anonymous ``/metrics`` is 401, a user RBAC does not allow is 403 with
Kubernetes' message, ``system:monitoring`` and the admin get the metrics, ``/livez`` /
``/readyz`` / ``/healthz`` answer anyone, plain HTTP is refused."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from controlplane.pki.cluster import ClusterPKI
from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.up import UpInstance, http_get

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

# component -> a metric it always has
SECURE = {"controller-manager": "rest_client_requests_total", "scheduler": "scheduler_schedule_attempts_total",
          "metrics-server": "metrics_server_", "agent": "kubelet_running_pods"}


def _ctx(inst: UpInstance, work: Path, user: str | None = None, groups: tuple[str, ...] = ()) -> ssl.SSLContext:
    ctx = inst.ca_tls()
    if user is not None:
        ck = ClusterPKI(inst.data_dir / "pki").user_cert(user, groups)
        crt, key = work / f"{user.replace(':', '_')}.crt", work / f"{user.replace(':', '_')}.key"
        ck.write(crt, key)
        ctx.load_cert_chain(str(crt), str(key))
    return ctx


def _bearer(url: str, ctx: ssl.SSLContext, token: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_component_ports_are_secure_ports(up_factory, tmp_path: Path) -> None:
    inst: UpInstance = up_factory("sec", args=["--apiserver-workers", "1", "--dashboard-port", "0",
                                               "--disable", "gitops-controller,ingress-controller"])
    comps = [c for c in SECURE if c != "agent" or HAVE_RUNC]
    anonymous = inst.ca_tls()
    jane = _ctx(inst, tmp_path, "jane", ("devs",))
    monitor = _ctx(inst, tmp_path, "system:prometheus", ("system:monitoring",))
    admin = inst.admin_tls()
    # a ServiceAccount token (TokenRequest): authenticated, but no RBAC for /metrics
    kubectl = inst.kubectl(tmp_path / "kubectl-cache")
    token = kubectl("create", "token", "default", "-n", "default").stdout.strip()
    assert token

    for comp in comps:
        url = inst.component_url(comp, "/metrics")
        assert url is not None and url.startswith("https://127.0.0.1:"), (comp, url)

        code, body = http_get(url, context=anonymous)
        assert code == 401, (comp, code, body)
        st = json.loads(body)
        assert (st["kind"], st["reason"], st["message"]) == ("Status", "Unauthorized", "Unauthorized")

        code, body = _bearer(url, anonymous, "not-a-token")
        assert code == 401, (comp, code, body)

        code, body = http_get(url, context=jane)
        assert code == 403, (comp, code, body)
        assert json.loads(body)["message"] == 'forbidden: User "jane" cannot get path "/metrics"', comp

        code, body = _bearer(url, anonymous, token)
        assert code == 403, (comp, code, body)
        assert json.loads(body)["message"] == \
            'forbidden: User "system:serviceaccount:default:default" cannot get path "/metrics"', comp

        for who in (monitor, admin):
            code, body = http_get(url, context=who)
            assert code == 200 and SECURE[comp] in body, (comp, code, body[:300])

        for ep in ("/livez", "/readyz", "/healthz"):
            code, body = http_get(inst.component_url(comp, ep), context=anonymous)
            assert (code, body) == (200, "ok"), (comp, ep, code, body)

        plain = url.replace("https://", "http://")
        code, _ = http_get(plain)
        assert code != 200, comp  # no plain HTTP on a secure port

    # the metrics-server also serves its own /metrics on its secure port (the Metrics API's)
    port = int((inst.data_dir / "metrics-server.port").read_text())
    assert http_get(f"https://127.0.0.1:{port}/metrics", context=anonymous)[0] == 401
    code, body = http_get(f"https://127.0.0.1:{port}/metrics", context=monitor)
    assert code == 200 and "metrics_server_" in body
    # the ready line lists the secure URLs
    for comp in ("controller-manager", "scheduler", "metrics-server"):
        assert inst.ready_line["metrics"][comp].startswith("https://127.0.0.1:"), inst.ready_line
