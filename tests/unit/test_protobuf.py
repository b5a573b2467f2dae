"""Kubernetes protobuf bodies captured from real kubectl v1.32 decode to the object kubectl
itself renders with ``--dry-run=client -o json`` (see data/protobuf/capture.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.encoding.protobuf import MAGIC, decode, fields

DATA = Path(__file__).parent / "data" / "protobuf"
CAPTURES = sorted(p.stem for p in DATA.glob("*.bin"))


def _prune(v: Any) -> Any:
    """Drop what Go's JSON rendering adds for zero values (null timestamps, empty structs)."""
    if isinstance(v, dict):
        out = {k: _prune(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, {}, [])}
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def test_fixtures_present():
    assert len(CAPTURES) >= 10
    for kind in ("namespace", "configmap", "secret", "deployment"):
        assert any(c.startswith(f"create-{kind}") for c in CAPTURES)


@pytest.mark.parametrize("name", CAPTURES)
def test_decodes_like_kubectl_renders(name):
    meta = json.loads((DATA / f"{name}.json").read_text())
    obj = decode((DATA / f"{name}.bin").read_bytes())
    assert obj == _prune(meta["expected"])


def test_pointer_zero_kept_and_int_or_string():
    dep = decode((DATA / "create-deployment-zero.bin").read_bytes())
    assert dep["spec"]["replicas"] == 0
    svc = decode((DATA / "create-service-clusterip-svc.bin").read_bytes())
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == [8080, "https"]
    pdb = decode((DATA / "create-poddisruptionbudget-pdb1.bin").read_bytes())
    assert pdb["spec"]["minAvailable"] == "50%"


def test_bytes_are_base64():
    cm = decode((DATA / "create-configmap-bin.bin").read_bytes())
    import base64

    assert base64.b64decode(cm["binaryData"]["blob.bin"]) == bytes(range(256))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _ld(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    tm = _ld(1, api_version.encode()) + _ld(2, kind.encode())
    return MAGIC + _ld(1, tm) + _ld(2, raw)


@pytest.mark.parametrize("body,code", [
    (b"not protobuf", 400),
    (MAGIC + b"\x0a\xff", 400),  # truncated
    (_envelope("v1", "Node", b""), 415),  # a kind we have no schema for
    (_envelope("v1", "Namespace", _ld(1, _ld(1, b"x")) + _ld(9, b"surprise")), 400),  # unknown non-empty field
], ids=["no-magic", "truncated", "unsupported-kind", "unknown-field"])
def test_bad_bodies(body, code):
    with pytest.raises(ApiError) as exc:
        decode(body)
    assert exc.value.code == code


def test_unknown_empty_fields_are_ignored():
    obj = decode(_envelope("v1", "Namespace", _ld(1, _ld(1, b"x")) + _ld(9, b"")))
    assert obj == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}


def test_wire_reader_handles_varints_and_negative_ints():
    # field 1 varint 300, field 2 int64 -1 (10-byte varint)
    buf = b"\x08\xac\x02" + b"\x10" + b"\xff" * 9 + b"\x01"
    out = fields(buf)
    assert out[0] == (1, 0, 300)
    from controlplane.apiserver.encoding.protobuf import _signed

    assert _signed(out[1][2]) == -1


def test_pod_with_ephemeral_containers():
    """A Pod as client-go's ``UpdateEphemeralContainers`` sends it in protobuf: PodSpec field 34,
    an EphemeralContainer embedding EphemeralContainerCommon (Container's numbers) as field 1."""
    common = _ld(1, b"debugger") + _ld(2, b"busybox") + _ld(3, b"sh") + b"\x80\x01\x01" + b"\x90\x01\x01"  # stdin, tty (tags 16, 18 as varints)
    ec = _ld(1, common) + _ld(2, b"app")
    spec = _ld(2, _ld(1, b"app") + _ld(2, b"busybox")) + bytes([0x92, 0x02, len(ec)]) + ec  # tag 34<<3|2 as a varint
    obj = decode(_envelope("v1", "Pod", _ld(1, _ld(1, b"p")) + _ld(2, spec)))
    assert obj["spec"]["ephemeralContainers"] == [
        {"name": "debugger", "image": "busybox", "command": ["sh"], "stdin": True, "tty": True,
         "targetContainerName": "app"}]


def test_csr_with_usages_and_extra():
    """A CertificateSigningRequest as ``kubectl certificate approve`` PUTs it: spec.usages is
    field 5, spec.extra field 6 (a map to ExtraValue, a message of repeated strings)."""
    extra = _ld(1, b"scopes") + _ld(2, _ld(1, b"a") + _ld(1, b"b"))
    spec = (_ld(1, b"PEM") + _ld(2, b"jane") + _ld(4, b"devs") + _ld(5, b"client auth") + _ld(5, b"digital signature")
            + _ld(6, extra) + _ld(7, b"kubernetes.io/kube-apiserver-client") + b"\x40\x80\xa3\x05")  # 8: 86400
    cond = _ld(1, b"Approved") + _ld(2, b"KubectlApprove") + _ld(6, b"True")
    obj = decode(_envelope("certificates.k8s.io/v1", "CertificateSigningRequest",
                           _ld(1, _ld(1, b"jane")) + _ld(2, spec) + _ld(3, _ld(1, cond))))
    assert obj["spec"] == {"request": "UEVN", "username": "jane", "groups": ["devs"],
                           "usages": ["client auth", "digital signature"], "extra": {"scopes": ["a", "b"]},
                           "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400}
    assert obj["status"]["conditions"] == [{"type": "Approved", "reason": "KubectlApprove", "status": "True"}]
