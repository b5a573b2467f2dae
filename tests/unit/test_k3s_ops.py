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
