"""``kubectl get componentstatuses`` against a real apiserver (and its real etcd): a component
answering ``ok`` on ``/healthz`` over plain HTTP and one over HTTPS with a self-signed
certificate (both found through port files, as ``up`` passes them), one answering 500, one
whose port is closed, and the etcd server; Kubernetes' columns, conditions and deprecation
Warning; only get and list."""

from __future__ import annotations

import datetime
import http.server
import json
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from controlplane.etcd_process import free_port
from tests.fixtures.apiserver import KUBECTL, _start, make_kubectl


class _Health(http.server.BaseHTTPRequestHandler):
    code, body = 200, b"ok"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.code if self.path == "/healthz" else 404)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *a: object) -> None:
        pass


class _Failing(_Health):
    code, body = 500, b"[-]informer-sync failed: not synced"


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scheduler")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


@pytest.fixture
def components(tmp_path):
    servers = []
    for handler, tls in ((_Health, False), (_Health, True), (_Failing, False)):
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls:
            srv.socket = _self_signed(tmp_path).wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
    files = {}
    for name, port in (("controller-manager", servers[0].server_port), ("scheduler", servers[1].server_port),
                       ("closed", free_port())):
        files[name] = tmp_path / f"{name}.metrics-port"
        files[name].write_text(f"{port}\n")
    yield files, servers
    for s in servers:
        s.shutdown()
        s.server_close()


def test_componentstatuses(tmp_path, components):
    files, servers = components
    args = ["--component-status", f"controller-manager={files['controller-manager']}",
            "--component-status", f"scheduler={files['scheduler']}",
            "--component-status", f"flaky=http://127.0.0.1:{servers[2].server_port}/healthz",
            "--component-status", f"gone={files['closed']}"]
    api = _start(tmp_path / "api", args)
    try:
        kubectl = make_kubectl(api.kubeconfig, tmp_path / "cache")
        assert Path(KUBECTL).exists()
        r = kubectl("get", "componentstatuses")
        assert "Warning: v1 ComponentStatus is deprecated in v1.19+" in r.stderr
        rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
        assert r.stdout.splitlines()[0].split() == ["NAME", "STATUS", "MESSAGE", "ERROR"]
        assert rows["controller-manager"][1:] == ["Healthy", "ok"]
        assert rows["scheduler"][1:] == ["Healthy", "ok"]  # HTTPS, self-signed: not verified, as kube-apiserver
        assert rows["etcd-0"][1:] == ["Healthy", "ok"]  # through the apiserver's etcd client certificate
        assert rows["flaky"][1] == "Unhealthy" and "HTTP probe failed with statuscode: 500" in r.stdout
        assert rows["gone"][1] == "Unhealthy" and "connect: connection refused" in r.stdout
        items = json.loads(kubectl("get", "cs", "-o", "json").stdout)["items"]
        by = {i["metadata"]["name"]: i["conditions"][0] for i in items}
        assert by["scheduler"] == {"type": "Healthy", "status": "True", "message": "ok"}
        assert by["flaky"]["status"] == "False" and by["flaky"]["message"] == "[-]informer-sync failed: not synced"
        assert by["gone"]["status"] == "Unknown" and by["gone"]["error"].startswith('Get "https://127.0.0.1:')
        one = json.loads(kubectl("get", "cs", "etcd-0", "-o", "json").stdout)
        assert one["kind"] == "ComponentStatus" and one["conditions"][0]["status"] == "True"
        r = kubectl("get", "cs", "nosuch", check=False)
        assert r.returncode != 0 and 'componentstatuses "nosuch" not found' in r.stderr
        r = kubectl("delete", "cs", "scheduler", check=False)
        assert r.returncode != 0 and "MethodNotAllowed" in r.stderr
        resources = kubectl("api-resources", "--api-group=").stdout
        assert any(line.split()[:2] == ["componentstatuses", "cs"] for line in resources.splitlines())
    finally:
        api.stop()
        api.etcd.stop()
