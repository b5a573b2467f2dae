"""k3s's operator commands, pure parts: the EncryptionConfiguration edits of ``secrets-encrypt
rotate-keys``, its status text, the apiserver's reported hashes and their comparison, the
automatic reload of the configuration (``encryption/reload.py``) and its metrics, and which
leaf certificates ``certificate rotate`` moves away (and that ``ClusterPKI.ensure`` issues them
again)."""

from __future__ import annotations

import asyncio
import base64
import datetime as _dt
import json

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import GaugeMetricFamily

from controlplane.apiserver.persistence.encryption.backend import EncryptingBackend
from controlplane.apiserver.persistence.encryption.config import EncryptionConfig
from controlplane.apiserver.persistence.encryption.reload import ConfigReloader, DropForgottenInfo, config_hash
from controlplane.apiserver.persistence.encryption.rotation import (
    RotationError, add_key, append_key, drop_old_keys, enabled, encrypted_resources, key_listing, key_name,
    rotate_last_first, set_enabled,
)
from controlplane.cmd.secrets_encrypt import (
    etcd_prefixes, format_status, hash_verdict, not_current, parse_reports, stage_refusal, status_json,
)
from controlplane.pki import certs
from controlplane.pki import rotate as pki_rotate
from controlplane.pki import rotate_ca as pki_rotate_ca
from controlplane.pki.cluster import ClusterPKI

NOW = _dt.datetime(2026, 12, 7, 22, 40, 5, tzinfo=_dt.timezone.utc)
B64 = base64.b64encode(b"a" * 32).decode()


def _doc(*entries):
    return {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
            "resources": [{"resources": r, "providers": p} for r, p in entries]}


UP_DOC = _doc((["secrets"], [{"aescbc": {"keys": [{"name": "key1", "secret": B64}]}}, {"identity": {}}]))


def test_key_name_is_k3s():
    assert key_name("aescbc", NOW) == "aescbckey-2026-12-07T22:40:05Z"
    assert key_name("secretbox", NOW.astimezone(_dt.timezone(_dt.timedelta(hours=2)))) == \
        "secretboxkey-2026-12-07T22:40:05Z"


def test_add_key_in_front_keeps_old_and_identity():
    new, names = add_key(UP_DOC, NOW, secret=lambda n: b"n" * n)
    assert names == ["aescbckey-2026-12-07T22:40:05Z"]
    providers = new["resources"][0]["providers"]
    assert [k["name"] for k in providers[0]["aescbc"]["keys"]] == ["aescbckey-2026-12-07T22:40:05Z", "key1"]
    assert base64.b64decode(providers[0]["aescbc"]["keys"][0]["secret"]) == b"n" * 32
    assert providers[1] == {"identity": {}}
    assert UP_DOC["resources"][0]["providers"][0]["aescbc"]["keys"][0]["name"] == "key1"  # input untouched
    EncryptionConfig.parse(new)  # still a valid configuration


def test_add_key_twice_in_one_second_and_per_entry():
    doc = _doc((["secrets"], [{"aescbc": {"keys": [{"name": "key1", "secret": B64}]}}]),
               (["configmaps"], [{"secretbox": {"keys": [{"name": "sb", "secret": B64}]}}]),
               (["*.apps"], [{"identity": {}}, {"aescbc": {"keys": [{"name": "x", "secret": B64}]}}]))
    once, names1 = add_key(doc, NOW)
    twice, names2 = add_key(once, NOW)
    assert names1 == ["aescbckey-2026-12-07T22:40:05Z", "secretboxkey-2026-12-07T22:40:05Z"]
    assert names2 == ["aescbckey-2026-12-07T22:40:05Z-1", "secretboxkey-2026-12-07T22:40:05Z-1"]
    assert twice["resources"][2] == doc["resources"][2]  # identity writes: not rotated
    assert [k["name"] for k in drop_old_keys(twice)["resources"][0]["providers"][0]["aescbc"]["keys"]] == \
        ["aescbckey-2026-12-07T22:40:05Z-1"]
    assert drop_old_keys(twice)["resources"][2] == doc["resources"][2]


@pytest.mark.parametrize("doc", [
    _doc((["secrets"], [{"identity": {}}, {"aescbc": {"keys": [{"name": "k", "secret": B64}]}}])),
    _doc((["secrets"], [{"identity": {}}])),
    {"kind": "EncryptionConfiguration"},
], ids=["identity-first", "identity-only", "empty"])
def test_add_key_refuses_when_disabled(doc):
    assert not enabled(doc)
    with pytest.raises(RotationError, match="encryption is disabled"):
        add_key(doc, NOW)


@pytest.mark.parametrize("doc,active,inactive", [
    (UP_DOC, [("AES-CBC", "key1")], []),
    (_doc((["secrets"], [{"aescbc": {"keys": [{"name": "new", "secret": B64}, {"name": "key1", "secret": B64}]}},
                         {"secretbox": {"keys": [{"name": "sb", "secret": B64}]}}, {"identity": {}}])),
     [("AES-CBC", "new")], [("AES-CBC", "key1"), ("SecretBox", "sb")]),
    (_doc((["secrets"], [{"identity": {}}, {"aescbc": {"keys": [{"name": "k", "secret": B64}]}}])),
     [], [("AES-CBC", "k")]),
], ids=["up", "rotating", "disabled"])
def test_key_listing(doc, active, inactive):
    assert key_listing(doc) == (active, inactive)


def test_encrypted_resources():
    doc = _doc((["secrets", "configmaps"], [{"aescbc": {"keys": [{"name": "k", "secret": B64}]}}]),
               (["events"], [{"identity": {}}]), (["*.apps"], [{"identity": {}}, {"secretbox": {"keys": []}}]))
    assert encrypted_resources(doc) == ["secrets", "configmaps", "*.apps"]


def test_status_text_is_k3s():
    text = format_status(True, "start", "All hashes match", [("AES-CBC", "aescbckey-2026-12-07T22:40:05Z")],
                         [("AES-CBC", "key1")])
    assert text == ("Encryption Status: Enabled\n"
                    "Current Rotation Stage: start\n"
                    "Server Encryption Hashes: All hashes match\n"
                    "\n"
                    "Active  Key Type  Name\n"
                    "------  --------  ----\n"
                    " *      AES-CBC   aescbckey-2026-12-07T22:40:05Z\n"
                    "        AES-CBC   key1\n")
    assert format_status(None, "", "", [], []) == "Encryption Status: Disabled, no configuration file found\n"
    assert format_status(False, "start", "All hashes match", [], [("AES-CBC", "k")]).startswith(
        "Encryption Status: Disabled\nCurrent Rotation Stage: start\n")


@pytest.mark.parametrize("reported,ok,words", [
    ({"sha256:a": "H", "sha256:b": "H"}, True, "All hashes match"),
    ({"sha256:a": "H", "sha256:b": "OLD"}, False, "hashes differ: 1 of 2 apiserver processes"),
    ({}, False, "hashes differ: the apiserver reports no encryption configuration hash"),
], ids=["match", "one-worker-behind", "no-reload"])
def test_hash_verdict(reported, ok, words):
    got_ok, got_words = hash_verdict("H", reported)
    assert got_ok is ok and got_words.startswith(words)


EXPOSITION = """\
# HELP apiserver_encryption_config_controller_last_config_info Information about the last applied encryption configuration with hash as label, split by apiserver identity.
# TYPE apiserver_encryption_config_controller_last_config_info gauge
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:w0",hash="abc"} 1.0
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:w1",hash="old"} 0.0
apiserver_encryption_config_controller_last_config_info{apiserver_id_hash="sha256:w1",hash="abc"} 1.0
# HELP apiserver_encryption_config_controller_automatic_reloads_total Total number of reload successes and failures.
# TYPE apiserver_encryption_config_controller_automatic_reloads_total counter
apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:w0",status="success"} 2.0
apiserver_encryption_config_controller_automatic_reloads_total{apiserver_id_hash="sha256:w1",status="failure"} 3.0
"""


def test_parse_reports():
    r = parse_reports(EXPOSITION)
    assert r.hashes == {"sha256:w0": "abc", "sha256:w1": "abc"}
    assert r.failures == {"sha256:w1": 3.0}


@pytest.mark.parametrize("names,prefixes", [
    (["secrets"], ["/registry/core/secrets/"]),
    (["secrets", "deployments.apps", "*.apps"], ["/registry/apps/", "/registry/core/secrets/"]),
    (["*."], ["/registry/core/"]),
    (["configmaps", "*.*"], ["/registry/"]),
])
def test_etcd_prefixes(names, prefixes):
    assert etcd_prefixes(names) == prefixes


def test_not_current():
    old = EncryptionConfig.parse(UP_DOC)
    new_doc, _ = add_key(UP_DOC, NOW)
    new = EncryptionConfig.parse(new_doc)
    key = "/registry/core/secrets/default/s"
    under_old = old.for_resource("", "secrets").to_storage(b"{}", key.encode())
    under_new = new.for_resource("", "secrets").to_storage(b"{}", key.encode())
    assert not_current(new, key, under_new) is None
    assert not_current(new, key, under_old) == "written with an older key or provider"
    assert not_current(new, key, b'{"plain":1}') == "written with an older key or provider"  # identity-read
    assert not_current(EncryptionConfig.parse(drop_old_keys(new_doc)), key, under_old).startswith("unreadable")
    assert not_current(new, "/registry/core/configmaps/default/c", b"{}") is None  # not encrypted
    plain = EncryptionConfig.parse(set_enabled(new_doc, False)[0])  # disabled: identity writes
    assert not_current(plain, key, b'{"plain":1}') is None
    assert not_current(plain, key, under_new) == "written with an older key or provider"


def _names(doc, entry=0):
    prov = doc["resources"][entry]["providers"]
    return [next(iter(p)) for p in prov], [k["name"] for k in next(iter(prov[0].values())).get("keys") or []]


def test_prepare_rotate_reencrypt_edits():
    """k3s's multi-step flow: the new key reads first, then writes, then the old one goes."""
    prepared, names = append_key(UP_DOC, NOW, secret=lambda n: b"p" * n)
    assert names == ["aescbckey-2026-12-07T22:40:05Z"]
    assert _names(prepared) == (["aescbc", "identity"], ["key1", "aescbckey-2026-12-07T22:40:05Z"])
    assert key_listing(prepared) == ([("AES-CBC", "key1")], [("AES-CBC", "aescbckey-2026-12-07T22:40:05Z")])
    rotated, names = rotate_last_first(prepared)
    assert names == ["aescbckey-2026-12-07T22:40:05Z"]
    assert _names(rotated) == (["aescbc", "identity"], ["aescbckey-2026-12-07T22:40:05Z", "key1"])
    assert _names(drop_old_keys(rotated)) == (["aescbc", "identity"], ["aescbckey-2026-12-07T22:40:05Z"])
    for d in (prepared, rotated):
        EncryptionConfig.parse(d)
    # what the apiserver does with each: prepared still writes with key1 but reads the new key
    key = b"/registry/core/secrets/default/s"
    under_new = EncryptionConfig.parse(rotated).for_resource("", "secrets").to_storage(b"{}", key)
    assert EncryptionConfig.parse(prepared).for_resource("", "secrets").from_storage(under_new, key) == (b"{}", True)
    assert append_key(prepared, NOW)[1] == ["aescbckey-2026-12-07T22:40:05Z-1"]  # twice within one second


@pytest.mark.parametrize("fn", [lambda d: append_key(d, NOW), rotate_last_first], ids=["prepare", "rotate"])
def test_steps_refuse_when_disabled(fn):
    with pytest.raises(RotationError, match="encryption is disabled"):
        fn(_doc((["secrets"], [{"identity": {}}, {"aescbc": {"keys": [{"name": "k", "secret": B64}]}}])))


AES = {"aescbc": {"keys": [{"name": "k", "secret": B64}]}}
SB = {"secretbox": {"keys": [{"name": "s", "secret": B64}]}}


@pytest.mark.parametrize("providers,enable,want,changed", [
    ([AES, {"identity": {}}], False, ["identity", "aescbc"], True),
    ([AES], False, ["identity", "aescbc"], True),  # identity added to write plaintext
    ([{"identity": {}}, AES], False, ["identity", "aescbc"], False),
    ([{"identity": {}}, AES], True, ["aescbc", "identity"], True),
    ([AES, {"identity": {}}], True, ["aescbc", "identity"], False),
    ([{"identity": {}}, SB, AES], True, ["secretbox", "identity", "aescbc"], True),
    ([SB, AES, {"identity": {}}], False, ["identity", "secretbox", "aescbc"], True),
], ids=["disable", "disable-no-identity", "already-disabled", "enable", "already-enabled", "enable-first-keyed",
        "disable-keeps-order"])
def test_set_enabled(providers, enable, want, changed):
    doc = _doc((["secrets"], providers), (["events"], [{"identity": {}}]))
    out, got_changed = set_enabled(doc, enable)
    assert [next(iter(p)) for p in out["resources"][0]["providers"]] == want
    assert out["resources"][1] == doc["resources"][1] and got_changed is changed
    assert enabled(out) is enable
    EncryptionConfig.parse(out)


def test_set_enabled_unknown_configuration():
    with pytest.raises(RotationError, match="unable to enable/disable secrets encryption, unknown configuration"):
        set_enabled(_doc((["secrets"], [{"identity": {}}])), True)


@pytest.mark.parametrize("action,stage,force,words", [
    ("prepare", "start", False, None),
    ("prepare", "reencrypt_finished", False, None),
    ("prepare", "prepare", False, "incorrect stage prepare found on node n1: a rotation is under way (stage prepare); "
                                  "finish it with secrets-encrypt rotate"),
    ("prepare", "rotate", True, None),
    ("rotate", "prepare", False, None),
    ("rotate", "start", False, "incorrect stage start found on node n1: rotate follows prepare; run secrets-encrypt "
                               "prepare first"),
    ("reencrypt", "rotate", False, None),
    ("reencrypt", "prepare", False, "incorrect stage prepare found on node n1: reencrypt follows rotate; run "
                                    "secrets-encrypt rotate first"),
    ("reencrypt", "start", True, None),
    ("reencrypt", "reencrypt_active", False, "incorrect stage reencrypt_active found on node n1: a previous "
                                             "re-encryption stopped half-way"),
    ("rotate-keys", "rotate", False, "incorrect stage rotate found on node n1: a rotation is under way (stage "
                                     "rotate); finish it with secrets-encrypt reencrypt"),
    ("rotate-keys", "reencrypt_finished", False, None),
    ("disable", "prepare", False, None),
    ("enable", "reencrypt_active", False, None),
])
def test_stage_order(action, stage, force, words):
    got = stage_refusal(action, stage, force, "n1")
    assert (got is None) if words is None else got.startswith(words), got


def test_status_json_is_k3s():
    got = status_json(True, "prepare", True, "", [("AES-CBC", "key1")], [("AES-CBC", "aescbckey-x")])
    assert got == ('{\n\t"stage": "prepare",\n\t"activekey": "AES-CBC key1",\n\t"enable": true,\n'
                   '\t"hashmatch": true,\n\t"inactivekeys": [\n\t\t"AES-CBC aescbckey-x"\n\t]\n}\n')
    assert json.loads(status_json(False, "start", False, "hashes differ: x", [], [("AES-CBC", "k")])) == {
        "stage": "start", "activekey": "", "enable": False, "hasherror": "hashes differ: x",
        "inactivekeys": ["AES-CBC k"]}
    assert json.loads(status_json(None, "", False, "", [], [])) == {"stage": "", "activekey": ""}


@pytest.mark.parametrize("argv,ok", [
    (["secrets-encrypt", "status", "-o", "json"], True),
    (["secrets-encrypt", "--data-dir", "/d", "reencrypt", "-f", "--skip"], True),
    (["secrets-encrypt", "prepare", "-d", "/d", "--force"], True),
    (["secrets-encrypt", "rotate", "-f"], True),
    (["secrets-encrypt", "enable"], True),
    (["secrets-encrypt", "prepare", "-o", "json"], False),  # k3s: -o is status's alone
    (["secrets-encrypt", "disable", "-f"], False),
    (["secrets-encrypt", "rotate", "--skip"], False),
    (["secrets-encrypt", "nope"], False),
])
def test_cli_flags_are_k3s(argv, ok):
    from controlplane.cli import build_parser

    if ok:
        a = build_parser(argv).parse_args(argv)
        assert a.action == argv[argv.index("secrets-encrypt") + 1 + (2 if argv[1] == "--data-dir" else 0)]
    else:
        with pytest.raises(SystemExit):
            build_parser(argv).parse_args(argv)


def _sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels)


def test_reloader_swaps_config_and_keeps_old_on_bad_file(tmp_path):
    path = tmp_path / "enc.yaml"
    first = yaml.safe_dump(UP_DOC).encode()
    path.write_bytes(first)
    backend = EncryptingBackend(None, EncryptionConfig.parse_bytes(first), dynamic=True)  # type: ignore[arg-type]
    r = ConfigReloader(path, backend, first, interval=0.01)
    info = "apiserver_encryption_config_controller_last_config_info"
    assert _sample(info, apiserver_id_hash=r.id_hash, hash=config_hash(first)) == 1.0
    assert asyncio.run(r.check()) is None  # unchanged
    rotated, names = add_key(UP_DOC, NOW)
    second = yaml.safe_dump(rotated).encode()
    path.write_bytes(second)
    assert asyncio.run(r.check()) is True
    assert backend.config.for_resource("", "secrets").to_storage(b"x", b"k").startswith(
        f"k8s:enc:aescbc:v1:{names[0]}:".encode())
    assert _sample(info, apiserver_id_hash=r.id_hash, hash=config_hash(second)) == 1.0
    assert _sample(info, apiserver_id_hash=r.id_hash, hash=config_hash(first)) is None  # forgotten
    assert _sample("apiserver_encryption_config_controller_automatic_reloads_total",
                   status="success", apiserver_id_hash=r.id_hash) == 1.0
    assert _sample("apiserver_encryption_config_controller_automatic_reload_success_total",
                   apiserver_id_hash=r.id_hash) == 1.0
    assert _sample("apiserver_encryption_config_controller_automatic_reload_last_timestamp_seconds",
                   status="success", apiserver_id_hash=r.id_hash) > 0
    serving = backend.config
    for bad in (b"kind: EncryptionConfiguration\nresources: [{resources: [secrets], providers: [{aescbc: {keys: "
                b"[{name: k, secret: c2hvcnQ=}]}}]}]\n", b"{ not yaml", b"- a list"):
        path.write_bytes(bad)
        assert asyncio.run(r.check()) is False
        assert backend.config is serving  # the old configuration keeps serving
    assert _sample("apiserver_encryption_config_controller_automatic_reloads_total",
                   status="failure", apiserver_id_hash=r.id_hash) == 3.0
    assert _sample("apiserver_encryption_config_controller_automatic_reload_failures_total",
                   apiserver_id_hash=r.id_hash) == 3.0
    assert r.hash == config_hash(second)


def test_reloader_run_polls_until_stopped(tmp_path):
    path = tmp_path / "enc.yaml"
    first = yaml.safe_dump(UP_DOC).encode()
    path.write_bytes(first)
    backend = EncryptingBackend(None, EncryptionConfig.parse_bytes(first), dynamic=True)  # type: ignore[arg-type]
    r = ConfigReloader(path, backend, first, interval=0.01)

    async def scenario():
        stop = asyncio.Event()
        task = asyncio.ensure_future(r.run(stop))
        path.write_bytes(yaml.safe_dump(add_key(UP_DOC, NOW)[0]).encode())
        for _ in range(500):
            if r.hash != config_hash(first):
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert r.hash == config_hash(path.read_bytes())


def test_multiprocess_render_drops_forgotten_info():
    class Inner:
        def collect(self):
            g = GaugeMetricFamily("apiserver_encryption_config_controller_last_config_info", "x",
                                  labels=["apiserver_id_hash", "hash"])
            g.add_metric(["w", "old"], 0)
            g.add_metric(["w", "new"], 1)
            other = GaugeMetricFamily("some_gauge", "y", labels=["a"])
            other.add_metric(["z"], 0)
            return [g, other]

    fams = list(DropForgottenInfo(Inner()).collect())  # type: ignore[arg-type]
    assert [s.labels["hash"] for s in fams[0].samples] == ["new"]
    assert [s.value for s in fams[1].samples] == [0]


# -- certificate rotate -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    pki = ClusterPKI(d)
    pki.ensure(hostname="h1")
    pki.node_client("h1")
    pki.node_serving("h1", ["127.0.0.1"])
    pki.serving("registry", "controlplane-registry", ["127.0.0.1"])
    pki.serving("controller-manager-serving", "kube-controller-manager", ["127.0.0.1"])
    return d


@pytest.mark.parametrize("services,stems", [
    (["admin"], ["admin"]),
    (["api-server"], ["apiserver", "apiserver-kubelet-client"]),
    (["etcd"], ["apiserver-etcd-client", "etcd/peer", "etcd/server"]),
    (["kubelet"], ["node-h1", "node-h1-serving"]),
    (["controller-manager", "auth-proxy"], ["controller-manager", "controller-manager-serving",
                                            "front-proxy-client"]),
    (["k3s-controller"], ["coredns", "ingress-controller", "metrics-adapter", "metrics-server", "prometheus"]),
    (["k3s-server"], ["registry"]),
])
def test_select_services(pki_dir, services, stems):
    assert pki_rotate.select(pki_dir, services) == stems


def test_select_all_leaves_never_cas(pki_dir):
    every = pki_rotate.select(pki_dir, [])
    assert not set(every) & {"ca", "etcd/ca", "front-proxy-ca", "sa"}
    assert {"admin", "apiserver", "etcd/server", "node-h1", "registry", "scheduler"} <= set(every)


@pytest.mark.parametrize("name,msg", [("cloud-controller", "no cloud controller"), ("nope", "not a service")])
def test_select_refuses(pki_dir, name, msg):
    with pytest.raises(pki_rotate.RotateError, match=msg):
        pki_rotate.select(pki_dir, [name])


def test_backup_then_ensure_issues_new_leaves(tmp_path):
    d = tmp_path / "pki"
    pki = ClusterPKI(d)
    pki.ensure(hostname="h1")
    ca_before, sa_before = (d / "ca.crt").read_bytes(), (d / "sa.key").read_bytes()
    serial = certs.load_cert((d / "apiserver.crt").read_bytes()).serial_number
    stems = pki_rotate.select(d, ["api-server", "etcd"])
    dest = pki_rotate.backup_dir(tmp_path, now=1000)
    assert dest.name == "pki-1000"
    moved = pki_rotate.move_to_backup(d, stems, dest)
    assert "etcd/server.key" in moved and (dest / "etcd" / "server.key").stat().st_mode & 0o777 == 0o600
    assert not (d / "apiserver.crt").exists() and (d / "admin.crt").exists()
    assert pki_rotate.backup_dir(tmp_path, now=1000).name == "pki-1000-1"
    written = ClusterPKI(d).ensure(hostname="h1")
    assert sorted(written) == sorted(stems)
    new = certs.load_cert((d / "apiserver.crt").read_bytes())
    assert new.serial_number != serial
    assert certs.signed_by(new, certs.load_cert(ca_before))
    assert (d / "ca.crt").read_bytes() == ca_before and (d / "sa.key").read_bytes() == sa_before


def test_dynamic_backend_decrypts_a_resource_encrypted_after_a_reload():
    """A watch opened while configmaps were plain decrypts them once a reload encrypts them."""
    from controlplane.storage.interface import KeyValue, ListResult, WatchEvent

    both = _doc((["secrets", "configmaps"], [{"aescbc": {"keys": [{"name": "k2", "secret": B64}]}},
                                             {"identity": {}}]))
    key = "/registry/core/configmaps/default/c"
    sealed = EncryptionConfig.parse(both).for_resource("", "configmaps").to_storage(b'{"a":1}', key.encode())
    batches = [[WatchEvent("PUT", KeyValue(key, b'{"a":0}', 2, 2))], [WatchEvent("PUT", KeyValue(key, sealed, 3, 2))]]

    class Inner:
        def watch(self, prefix, start_revision, prev_kv=True):
            async def gen():
                for b in batches:
                    yield b
            return gen()

        async def list(self, prefix, revision=0, limit=0, start_key=None):
            return ListResult([KeyValue(key, sealed, 3, 2)], 3, False)

    backend = EncryptingBackend(Inner(), EncryptionConfig.parse(UP_DOC), dynamic=True)  # type: ignore[arg-type]

    async def scenario():
        stream = backend.watch("/registry/core/configmaps/", 1)
        first = await stream.__anext__()
        assert first[0].kv.value == b'{"a":0}'
        backend.set_config(EncryptionConfig.parse(both))
        second = await stream.__anext__()
        assert second[0].kv.value == b'{"a":1}'
        assert (await backend.list("/registry/core/configmaps/")).items[0].value == b'{"a":1}'
        assert not backend.is_stale(key)

    asyncio.run(scenario())
    static = EncryptingBackend(Inner(), EncryptionConfig.parse(UP_DOC))  # type: ignore[arg-type]
    assert type(static.watch("/registry/core/configmaps/", 1)).__name__ != "_DecryptingWatch"  # passed through
    assert type(backend.watch("/registry/core/configmaps/", 1)).__name__ == "_DecryptingWatch"


# -- certificate rotate-ca: validation and install ----------------------------------------------

def _ca_signed_by(signer, cn, *, ca=True, cert_sign=True, days=3650, start=None, key=None):
    """A CA certificate for a new key (or ``key``), signed by ``signer`` (None: self-signed)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = key or certs.new_ec_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    t = start or certs.now() - _dt.timedelta(minutes=5)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(signer.cert.subject if signer else name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(t).not_valid_after(t + _dt.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
                                      crl_sign=cert_sign, encipher_only=False, decipher_only=False), critical=True))
    return certs.CertKey(b.sign(signer.key if signer else key, hashes.SHA256()), key)


OLD_CA = certs.new_ca("controlplane-ca")
OTHER_KEY = certs.new_ec_key()


def _bundle(*cks):
    return b"".join(c.cert_pem for c in cks)


def _case(name):
    """(new bundle, new key) for each case, around OLD_CA."""
    cross = _ca_signed_by(OLD_CA, "controlplane-ca-2")
    if name == "cross-signed":
        return _bundle(cross, OLD_CA), cross.key_pem
    if name == "cross-single":
        return _bundle(cross), cross.key_pem
    if name == "through-intermediate":
        inter = _ca_signed_by(OLD_CA, "inter")
        new = _ca_signed_by(inter, "controlplane-ca-2")
        return _bundle(new, inter, OLD_CA), new.key_pem
    selfs = _ca_signed_by(None, "controlplane-ca-2")
    if name == "self-signed":
        return _bundle(selfs), selfs.key_pem
    if name == "self-signed-bundle":
        return _bundle(selfs, OLD_CA), selfs.key_pem
    if name == "key-mismatch":
        return _bundle(cross, OLD_CA), certs.key_pem(OTHER_KEY)
    if name == "not-a-ca":
        leaf = _ca_signed_by(OLD_CA, "leaf", ca=False)
        return _bundle(leaf, OLD_CA), leaf.key_pem
    if name == "no-cert-sign":
        nocs = _ca_signed_by(OLD_CA, "x", cert_sign=False)
        return _bundle(nocs, OLD_CA), nocs.key_pem
    if name == "expired":
        old = _ca_signed_by(OLD_CA, "x", start=certs.now() - _dt.timedelta(days=30), days=1)
        return _bundle(old, OLD_CA), old.key_pem
    if name == "unchanged":
        return OLD_CA.cert_pem, OLD_CA.key_pem
    if name == "garbage":
        return b"not pem", OLD_CA.key_pem
    raise AssertionError(name)


@pytest.mark.parametrize("case,force,errors", [
    ("cross-signed", False, []),
    ("through-intermediate", False, []),
    ("cross-single", False, ["new CA bundle contains only a single certificate"]),
    ("cross-single", True, []),
    ("self-signed", False, ["new CA bundle contains only a single certificate",
                            "new CA cert cannot be verified using old CA chain: it is self-signed"]),
    ("self-signed", True, []),
    ("self-signed-bundle", False, ["new CA cert cannot be verified using old CA chain: it is self-signed"]),
    ("key-mismatch", True, ["new CA cert and key cannot be loaded as X509KeyPair"]),
    ("not-a-ca", True, ["not a CA certificate (basicConstraints CA:FALSE)"]),
    ("no-cert-sign", True, ["keyUsage lacks keyCertSign"]),
    ("expired", True, ["not valid now"]),
    ("unchanged", False, []),
    ("garbage", True, ["not a PEM certificate bundle"]),
])
def test_rotate_ca_validate(case, force, errors):
    bundle, key = _case(case)
    ca, errs = pki_rotate_ca.validate("ca", OLD_CA.cert_pem, bundle, key, force=force)
    assert len(errs) == len(errors), errs
    for got, want in zip(errs, errors):
        assert want in got, (got, want)
    if case in ("unchanged", "garbage"):
        assert ca is None
    else:
        assert ca is not None and ca.self_signed is case.startswith("self-signed")


def test_rotate_ca_collect(tmp_path):
    pki = tmp_path / "pki"
    new = tmp_path / "new"
    (pki / "etcd").mkdir(parents=True)
    (new / "etcd").mkdir(parents=True)
    (pki / "ca.crt").write_bytes(OLD_CA.cert_pem)
    assert pki_rotate_ca.collect(pki, new)[1] == [f"{new}: no CA certificate and key found (want ca.crt/.key, "
                                                  "etcd/ca.crt/.key, front-proxy-ca.crt/.key)"]
    assert pki_rotate_ca.collect(pki, tmp_path / "nope")[1] == [f"{tmp_path / 'nope'}: not a directory"]
    bundle, key = _case("cross-signed")
    (new / "ca.crt").write_bytes(bundle)
    (new / "ca.key").write_bytes(key)
    (new / "etcd" / "ca.crt").write_bytes(bundle)
    (new / "sa.key").write_bytes(b"x")
    cas, errs = pki_rotate_ca.collect(pki, new)
    assert [c.stem for c in cas] == ["ca"]
    assert errs == ["sa.key: rotating the ServiceAccount signing key is not supported (remove it from the directory)",
                    "etcd/ca: both etcd/ca.crt and etcd/ca.key are needed"]


def test_rotate_ca_install_then_ensure_issues_leaves_from_the_new_ca(tmp_path):
    pki = ClusterPKI(tmp_path / "pki")
    pki.ensure(hostname="h1")
    old = certs.CertKey.read(pki.crt("ca"), pki.key("ca"))
    old_admin = certs.load_cert(pki.crt("admin").read_bytes())
    cross = _ca_signed_by(old, "controlplane-ca-2")
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    (new_dir / "ca.crt").write_bytes(_bundle(cross, old))
    (new_dir / "ca.key").write_bytes(cross.key_pem)
    cas, errs = pki_rotate_ca.collect(pki.dir, new_dir)
    assert not errs
    backup = tmp_path / "pki-1"
    assert pki_rotate_ca.install(pki.dir, cas, backup) == ["ca.crt", "ca.key"]
    assert (backup / "ca.crt").read_bytes() == old.cert_pem and (backup / "ca.key").read_bytes() == old.key_pem
    assert oct((pki.dir / "ca.key").stat().st_mode & 0o777) == "0o600"

    again = ClusterPKI(pki.dir)
    done = again.ensure(hostname="h1")
    assert "admin" in done and "apiserver" in done and "etcd/server" not in done  # the etcd CA was kept
    admin = certs.load_cert(pki.crt("admin").read_bytes())
    assert admin.serial_number != old_admin.serial_number
    assert certs.signed_by(admin, cross.cert) and not certs.signed_by(admin, old.cert)
    # whoever trusts only the old CA verifies it through the cross-signed certificate in the bundle
    assert pki_rotate_ca.chains_to(admin, certs.load_certs(pki.ca_pem)[:1], [old.cert])
    assert [c.subject for c in certs.load_certs(pki.ca_pem)] == [cross.cert.subject, old.cert.subject]
    assert again.ensure(hostname="h1") == []  # stable


def _handshake(server_crt, server_key, client_cafile, hostname="localhost"):
    """A TLS handshake in memory (no socket): the client verifies the server's chain."""
    import ssl

    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(server_crt, server_key)
    cctx = ssl.create_default_context(cafile=str(client_cafile))
    bios = [ssl.MemoryBIO() for _ in range(4)]
    srv = sctx.wrap_bio(bios[0], bios[1], server_side=True)
    cli = cctx.wrap_bio(bios[2], bios[3], server_hostname=hostname)
    done = [False, False]
    for _ in range(20):
        for i, (end, inc, out) in enumerate(((cli, bios[2], bios[3]), (srv, bios[0], bios[1]))):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except ssl.SSLWantReadError:
                    pass
        bios[0].write(bios[3].read())
        bios[2].write(bios[1].read())
        if all(done):
            return True
    return False


def test_rotate_ca_old_trust_verifies_new_leaves(tmp_path):
    """After a cross-signed rotation a client that trusts only the previous CA still verifies the
    apiserver (its certificate file carries the cross-signed CA); a self-signed one (--force) does not."""
    import ssl

    for cross_signed in (True, False):
        pki = ClusterPKI(tmp_path / f"pki-{cross_signed}")
        pki.ensure(hostname="h1")
        assert len(certs.load_certs(pki.crt("apiserver").read_bytes())) == 1  # nothing to chain yet
        old = certs.CertKey.read(pki.crt("ca"), pki.key("ca"))
        old_root = tmp_path / f"old-{cross_signed}.crt"
        old_root.write_bytes(old.cert_pem)
        new = _ca_signed_by(old if cross_signed else None, "controlplane-ca-2")
        bundle = _bundle(new, old) if cross_signed else new.cert_pem
        ca = pki_rotate_ca.NewCA("ca", bundle, new.key_pem, not cross_signed)
        pki_rotate_ca.install(pki.dir, [ca], tmp_path / f"backup-{cross_signed}")
        ClusterPKI(pki.dir).ensure(hostname="h1")
        served = certs.load_certs(pki.crt("apiserver").read_bytes())
        assert [c.subject for c in served[1:]] == ([new.cert.subject] if cross_signed else [])
        assert _handshake(pki.crt("apiserver"), pki.key("apiserver"), pki.ca_file)  # the new bundle
        if cross_signed:
            assert _handshake(pki.crt("apiserver"), pki.key("apiserver"), old_root)
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                _handshake(pki.crt("apiserver"), pki.key("apiserver"), old_root)


@pytest.mark.parametrize("action,stage", [("rotate", "start"), ("reencrypt", "prepare"), ("prepare", "rotate")])
def test_preflight_refuses_out_of_order_before_touching_the_server(tmp_path, action, stage):
    from controlplane.cmd.secrets_encrypt import DataDir, Refused, preflight

    dd = DataDir(tmp_path)
    dd.config.write_text(yaml.safe_dump(UP_DOC))
    dd.set_stage(stage)
    try:
        with pytest.raises(Refused, match=f"incorrect stage {stage} found on node "):
            asyncio.run(preflight(None, dd, action, False))  # type: ignore[arg-type]  # no server: never reached
    finally:
        dd.unlock()
