"""``controlplane kubeconfig --user`` (making a user) and ``controlplane token``'s helpers."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import yaml

from controlplane.cli import main
from controlplane.cmd.token import ca_cert_hash, parse_ttl
from controlplane.kubeconfig import write_kubeconfig
from controlplane.pki import certs
from controlplane.pki.cluster import ClusterPKI


def test_kubeconfig_for_a_new_user(tmp_path):
    pki = ClusterPKI(tmp_path / "pki")
    pki.ensure(hostname="h")
    write_kubeconfig(tmp_path / "kubeconfig", "https://127.0.0.1:6443", ca_pem=pki.ca_pem)
    out = tmp_path / "jane.kubeconfig"
    assert main(["kubeconfig", "--data-dir", str(tmp_path), "--user", "jane", "--group", "devs", "-o", str(out)]) == 0
    cfg = yaml.safe_load(out.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"]) == pki.ca_pem
    cert = certs.load_cert(base64.b64decode(cfg["users"][0]["user"]["client-certificate-data"]))
    assert certs.subject_user(cert) == ("jane", ["devs"]) and certs.signed_by(cert, pki.ca().cert)
    assert out.stat().st_mode & 0o077 == 0


def test_kubeconfig_without_a_cluster(tmp_path, capsys):
    assert main(["kubeconfig", "--data-dir", str(tmp_path), "--user", "x"]) == 1
    assert "no cluster CA" in capsys.readouterr().err


@pytest.mark.parametrize("text,want", [("30m", dt.timedelta(minutes=30)), ("24h", dt.timedelta(hours=24)),
                                       ("7d", dt.timedelta(days=7)), ("90", dt.timedelta(seconds=90)), ("0", None)])
def test_parse_ttl(text, want):
    assert parse_ttl(text) == want


def test_ca_cert_hash_matches_the_agents(tmp_path):
    from controlplane.agent.bootstrap import ca_hash

    pki = ClusterPKI(tmp_path)
    pki.ensure(hostname="h")
    assert ca_cert_hash(pki.ca_pem) == ca_hash(pki.ca_pem) and ca_hash(pki.ca_pem).startswith("sha256:")
