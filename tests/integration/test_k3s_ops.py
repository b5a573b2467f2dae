"""k3s's operator commands on a real ``controlplane up`` (one instance for the module, with only
what the commands need: etcd, the apiserver and its defaults; no agent, DNS, ingress, ...):
``secrets-encrypt rotate-keys`` while it runs (Secrets under the new key in etcd, still
readable, k3s's status text), the apiserver's automatic reload keeping the old configuration
when the file is broken, k3s's multi-step ``prepare``/``rotate``/``reencrypt`` and
``disable``/``enable``, then ``certificate rotate`` with ``up`` stopped and the next ``up``
serving a new certificate."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from controlplane.apiserver.persistence.encryption.reload import config_hash
from controlplane.cmd.etcd_snapshot import member_of
from controlplane.cmd.secrets_encrypt import parse_reports
from tests.fixtures.apiserver import REPO
from tests.fixtures.up import UpInstance, http_get

pytestmark = pytest.mark.integration

# only what the commands need; the rest of `up` is tested elsewhere
LEAN = ["--disable-agent", "--disable", "registry,gitops-controller,dashboard,ingress-controller,dns,scheduler,"
        "controller-manager"]


def controlplane(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlplane", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def inst(tmp_path_factory):
    i = UpInstance(tmp_path_factory.mktemp("k3sops") / "data", args=LEAN)
    i.start()
    yield i
    i.stop()
    rep = i.down()
    assert rep["rc"] == 0 and not rep["errors"], rep


def stored(inst: UpInstance, key: str) -> bytes:
    out = subprocess.run(["etcdctl", *member_of(inst.data_dir).etcdctl_args(), "get", key, "--print-value-only"],
                         capture_output=True, timeout=30, env={"ETCDCTL_API": "3"})
    return out.stdout


def reload_failures(inst: UpInstance) -> float:
    code, text = http_get(inst.url + "/metrics", timeout=10, context=inst.admin_tls())
    assert code == 200, text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("apiserver_encryption_config_controller_automatic_reloads_total{") and \
                'status="failure"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_secrets_encrypt_rotate_keys(inst: UpInstance, tmp_path: Path) -> None:
    kubectl = inst.kubectl(tmp_path / "kc")
    for n in range(3):
        kubectl("create", "secret", "generic", f"s{n}", f"--from-literal=k=v{n}")
    assert stored(inst, "/registry/core/secrets/default/s0").startswith(b"k8s:enc:aescbc:v1:key1:")
    d = str(inst.data_dir)

    st = controlplane("secrets-encrypt", "--data-dir", d, "status")
    assert st.returncode == 0, st.stderr
    assert st.stdout.splitlines()[:3] == ["Encryption Status: Enabled", "Current Rotation Stage: start",
                                          "Server Encryption Hashes: All hashes match"]
    assert st.stdout.splitlines()[-1].split() == ["*", "AES-CBC", "key1"]

    # a second rotation while one runs is refused (the lock a running rotation holds)
    lock = inst.data_dir / "server" / "secrets-encrypt.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = controlplane("secrets-encrypt", "--data-dir", d, "rotate-keys")
    assert busy.returncode == 1 and "another secrets-encrypt rotation is in progress" in busy.stderr

    rot = controlplane("secrets-encrypt", "--data-dir", d, "rotate-keys")
    assert rot.returncode == 0, rot.stdout + rot.stderr
    assert rot.stdout.strip().splitlines()[-1] == "keys rotated, reencryption finished"
    cfg = yaml.safe_load((inst.data_dir / "encryption-config.yaml").read_text())
    keys = cfg["resources"][0]["providers"][0]["aescbc"]["keys"]
    assert len(keys) == 1 and keys[0]["name"].startswith("aescbckey-")  # the old key is gone
    assert cfg["resources"][0]["providers"][1] == {"identity": {}}
    for n in range(3):  # in etcd under the new key, and still readable through the API
        assert stored(inst, f"/registry/core/secrets/default/s{n}").startswith(
            f"k8s:enc:aescbc:v1:{keys[0]['name']}:".encode())
        got = json.loads(kubectl("get", "secret", f"s{n}", "-o", "json").stdout)
        assert base64.b64decode(got["data"]["k"]) == f"v{n}".encode()

    st = controlplane("secrets-encrypt", "--data-dir", d, "status")
    lines = st.stdout.splitlines()
    assert lines[:3] == ["Encryption Status: Enabled", "Current Rotation Stage: reencrypt_finished",
                         "Server Encryption Hashes: All hashes match"]
    assert lines[-3:] == ["Active  Key Type  Name", "------  --------  ----", f" *      AES-CBC   {keys[0]['name']}"]

    # a broken file: counted as a failed reload, the old configuration keeps serving
    good = (inst.data_dir / "encryption-config.yaml").read_bytes()
    before = reload_failures(inst)
    (inst.data_dir / "encryption-config.yaml").write_text("kind: EncryptionConfiguration\nresources: [{resources: "
                                                          "[secrets], providers: [{aescbc: {keys: []}}]}]\n")
    try:
        deadline = time.monotonic() + 60
        while reload_failures(inst) <= before:
            assert time.monotonic() < deadline, "the broken configuration was never reported"
            time.sleep(0.5)
        st = controlplane("secrets-encrypt", "--data-dir", d, "status")
        assert "Server Encryption Hashes: hashes differ" in st.stdout
        kubectl("create", "secret", "generic", "s3", "--from-literal=k=v3")
        assert stored(inst, "/registry/core/secrets/default/s3").startswith(
            f"k8s:enc:aescbc:v1:{keys[0]['name']}:".encode())
        refused = controlplane("secrets-encrypt", "--data-dir", d, "reencrypt", "-f")
        assert refused.returncode == 1 and "does not serve" in refused.stderr
    finally:
        (inst.data_dir / "encryption-config.yaml").write_bytes(good)


def _status(d: str) -> dict:
    st = controlplane("secrets-encrypt", "--data-dir", d, "status", "-o", "json")
    assert st.returncode == 0, st.stderr
    return json.loads(st.stdout)


def _stage(inst: UpInstance) -> str:
    return json.loads((inst.data_dir / "server" / "secrets-encrypt.json").read_text())["stage"]


def _aescbc_keys(inst: UpInstance) -> list[str]:
    cfg = yaml.safe_load((inst.data_dir / "encryption-config.yaml").read_text())
    return [k["name"] for p in cfg["resources"][0]["providers"] for k in (p.get("aescbc") or {}).get("keys", [])]


def test_secrets_encrypt_steps_and_disable_enable(inst: UpInstance, tmp_path: Path) -> None:
    """k3s's multi-step flow, prepare -> rotate -> reencrypt, then disable and enable; a Secret
    read back with kubectl after each step, and where it sits in etcd. (Each command is a
    process start; the orders refused and the other edge cases are unit tests.)"""
    kubectl = inst.kubectl(tmp_path / "kc")
    d = str(inst.data_dir)
    want = config_hash((inst.data_dir / "encryption-config.yaml").read_bytes())
    deadline = time.monotonic() + 60  # the file the previous test restored is served again
    while True:
        code, text = http_get(inst.url + "/metrics", timeout=10, context=inst.admin_tls())
        hashes = parse_reports(text).hashes
        if code == 200 and hashes and set(hashes.values()) == {want}:
            break
        assert time.monotonic() < deadline, hashes
        time.sleep(0.5)
    kubectl("create", "secret", "generic", "steps", "--from-literal=k=steps")

    def read_back() -> None:
        got = json.loads(kubectl("get", "secret", "steps", "-o", "json").stdout)
        assert base64.b64decode(got["data"]["k"]) == b"steps"

    def stored_under(name: str, secret: str = "steps") -> bool:
        return stored(inst, f"/registry/core/secrets/default/{secret}").startswith(
            f"k8s:enc:aescbc:v1:{name}:".encode())

    [old] = _aescbc_keys(inst)
    prep = controlplane("secrets-encrypt", "--data-dir", d, "prepare")
    assert prep.returncode == 0 and prep.stdout.strip().endswith("prepare completed successfully"), prep.stderr
    old_, new = _aescbc_keys(inst)
    assert old_ == old and _stage(inst) == "prepare"
    read_back()
    assert stored_under(old)

    rot = controlplane("secrets-encrypt", "--data-dir", d, "rotate")
    assert rot.returncode == 0 and rot.stdout.strip().endswith("rotate completed successfully"), rot.stderr
    assert _aescbc_keys(inst) == [new, old] and _stage(inst) == "rotate"
    read_back()
    kubectl("create", "secret", "generic", "steps2", "--from-literal=k=2")  # written with the new key at once
    assert stored_under(new, "steps2") and stored_under(old)

    re = controlplane("secrets-encrypt", "-d", d, "reencrypt")
    assert re.returncode == 0 and re.stdout.strip().endswith("reencryption finished"), re.stderr
    assert _aescbc_keys(inst) == [new] and stored_under(new)
    read_back()
    assert _status(d) == {"stage": "reencrypt_finished", "activekey": f"AES-CBC {new}", "enable": True,
                          "hashmatch": True}

    off = controlplane("secrets-encrypt", "--data-dir", d, "disable")
    assert off.returncode == 0 and off.stdout.strip().endswith("secrets-encryption disabled"), off.stderr
    value = stored(inst, "/registry/core/secrets/default/steps")
    assert value and not value.startswith(b"k8s:enc:")  # plaintext in etcd
    read_back()
    cfg = yaml.safe_load((inst.data_dir / "encryption-config.yaml").read_text())
    assert [next(iter(p)) for p in cfg["resources"][0]["providers"]] == ["identity", "aescbc"]
    assert _stage(inst) == "start"

    on = controlplane("secrets-encrypt", "--data-dir", d, "enable")
    assert on.returncode == 0 and on.stdout.strip().endswith("secrets-encryption enabled"), on.stderr
    assert stored_under(new)
    read_back()


def _serial(inst: UpInstance) -> int:
    ctx = ssl.create_default_context(cafile=str(inst.data_dir / "pki" / "ca.crt"))
    with socket.create_connection(("127.0.0.1", inst.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            der = tls.getpeercert(binary_form=True)
    return x509.load_der_x509_certificate(der).serial_number


def test_certificate_rotate(inst: UpInstance, tmp_path: Path) -> None:
    d = str(inst.data_dir)
    busy = controlplane("certificate", "rotate", "--data-dir", d)
    assert busy.returncode == 1 and "controlplane up runs" in busy.stderr
    old_serial = _serial(inst)
    old_admin = (inst.data_dir / "kubeconfig").read_text()
    ca = (inst.data_dir / "pki" / "ca.crt").read_bytes()
    assert inst.stop() == 0

    down = controlplane("secrets-encrypt", "--data-dir", d, "rotate-keys", timeout=60)
    assert down.returncode == 1 and "is not running" in down.stderr
    bad = controlplane("certificate", "rotate", "--data-dir", d, "--service", "cloud-controller")
    assert bad.returncode == 1 and "no cloud controller" in bad.stderr

    rot = controlplane("certificate", "rotate", "--data-dir", d)
    assert rot.returncode == 0, rot.stderr
    backups = sorted(inst.data_dir.glob("pki-*"))
    assert len(backups) == 1 and (backups[0] / "apiserver.crt").exists() and (backups[0] / "etcd" / "server.key").exists()
    assert not (backups[0] / "ca.key").exists() and not (backups[0] / "sa.key").exists()
    assert not (inst.data_dir / "pki" / "apiserver.crt").exists()

    inst.start()
    assert _serial(inst) != old_serial
    assert (inst.data_dir / "pki" / "ca.crt").read_bytes() == ca
    assert (inst.data_dir / "kubeconfig").read_text() != old_admin  # a new admin certificate
    kubectl = inst.kubectl(tmp_path / "kc")
    got = json.loads(kubectl("get", "secret", "s0", "-o", "json").stdout)
    assert base64.b64decode(got["data"]["k"]) == b"v0"
    assert "kubernetes-admin" in kubectl("auth", "whoami").stdout
    assert os.path.exists(inst.data_dir / "pki" / "apiserver.key")
