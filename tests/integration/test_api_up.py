"""``controlplane up``: embedded etcd + apiserver, kubeconfig, one ``ready`` line, clean stop on
SIGTERM, the default ``local-path`` StorageClass, and every object kept across a restart on the same data dir; secured as issue 14 asks:
HTTPS verified with the cluster CA, anonymous requests refused, components under their own
identities, the PKI kept (not re-issued) across a restart."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

import pytest

from controlplane.etcd_process import free_port
from tests.fixtures.apiserver import REPO, make_kubectl
from tests.fixtures.network import TestNet, allocate_test_net, network_leftovers

pytestmark = pytest.mark.integration


def _start_up(data_dir: Path, port: int, net: TestNet) -> tuple[subprocess.Popen, str]:
    # never the default CIDRs: another instance on this machine may be using them
    proc = subprocess.Popen([sys.executable, "-m", "controlplane", "up", "--data-dir", str(data_dir),
                             "--port", str(port), "--cluster-cidr", net.cluster_cidr, "--service-cidr",
                             net.service_cidr], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 90
    lines = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "ready" in line:
                return proc, line
        if proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"controlplane up did not get ready: {lines}")


def _stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("controlplane up did not stop on SIGTERM")


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_up_serves_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    data, port, net = tmp_path / "data", free_port(), allocate_test_net()
    proc, line = _start_up(data, port, net)
    try:
        info = json.loads(line)
        assert info["server"] == f"https://127.0.0.1:{port}"
        cfg = yaml.safe_load((data / "kubeconfig").read_text())
        assert cfg["clusters"][0]["cluster"]["certificate-authority-data"]
        assert "insecure-skip-tls-verify" not in cfg["clusters"][0]["cluster"]
        kubectl = make_kubectl(data / "kubeconfig", tmp_path / "cache")
        assert "kube-system" in kubectl("get", "ns").stdout
        # as k3s: the local-path StorageClass, the default
        sc = kubectl("get", "sc", "--no-headers").stdout.split()
        assert sc[:5] == ["local-path", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer"]
        kubectl("create", "configmap", "keepme", "--from-literal=a=b")
        assert "kubernetes-admin" in kubectl("auth", "whoami").stdout
        if os.geteuid() == 0:  # as k3s: the server's own node carries its roles
            deadline, roles = time.monotonic() + 60, ""
            while time.monotonic() < deadline:
                rows = kubectl("get", "nodes", "--no-headers").stdout.split()
                roles = rows[2] if len(rows) > 2 else ""
                if roles == "control-plane,etcd,master":
                    break
                time.sleep(0.5)
            assert roles == "control-plane,etcd,master", rows
        anon = ssl.create_default_context(cafile=str(data / "pki" / "ca.crt"))
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/api/v1/secrets", timeout=10, context=anon)
            raise AssertionError("anonymous list of secrets succeeded")
        except urllib.error.HTTPError as e:
            assert e.code == 403
        for name in ("controller-manager", "scheduler"):
            kc = yaml.safe_load((data / "kubeconfigs" / f"{name}.kubeconfig").read_text())
            assert kc["users"][0]["name"] == f"system:kube-{name}"
        issued = (data / "pki" / "apiserver.crt").read_bytes()
    finally:
        rc = _stop(proc)
    assert rc == 0
    assert _port_closed(port)
    # stopping `up` leaves the node's pods and their network (safety routes included, tagged
    # with the apiserver URL) for the next run; started again on another port, `up` clears its
    # own data dir's stale network instead of refusing the CIDRs as "routed by someone else"
    if os.geteuid() == 0:
        routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
        assert f"unreachable {net.cluster_cidr} proto 211" in routes
    port2 = free_port()
    proc, line = _start_up(data, port2, net)
    try:
        assert json.loads(line)["server"] == f"https://127.0.0.1:{port2}"
        kubectl = make_kubectl(data / "kubeconfig", tmp_path / "cache2")
        out = json.loads(kubectl("get", "configmap", "keepme", "-o", "json").stdout)
        assert out["data"] == {"a": "b"}
        assert (data / "pki" / "apiserver.crt").read_bytes() == issued, "a current certificate is kept"
    finally:
        assert _stop(proc) == 0
        _down_clean(data, net)


def _down_clean(data: Path, net: TestNet) -> None:
    r = subprocess.run([sys.executable, "-m", "controlplane", "down", "--data-dir", str(data)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and "network" in report["checked"], report
    if os.geteuid() == 0:
        assert network_leftovers(data / "agent", socket.gethostname().lower(), net) == []
