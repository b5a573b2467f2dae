"""Audit policy evaluation, audit events and the rotating writer; encryption-at-rest providers,
their stored formats, key rotation and EncryptionConfiguration parsing."""

from __future__ import annotations

import base64
import json
import os

import pytest
import yaml

from controlplane.apiserver.audit.event import AuditContext
from controlplane.apiserver.audit.policy import Policy, PolicyError, default_policy
from controlplane.apiserver.audit.writer import AuditLogWriter
from controlplane.machinery.userinfo import ANONYMOUS_USER, UserInfo
from controlplane.apiserver.authorization.attributes import Attributes
from controlplane.apiserver.persistence.encryption.config import ConfigError, EncryptionConfig, new_config
from controlplane.apiserver.persistence.encryption.providers import AESCBC, AESGCM_, DecryptError, Key, SecretBox

ALICE = UserInfo.make("alice", ["devs"])
SCHED = UserInfo.make("system:kube-scheduler")

POLICY = yaml.safe_load("""
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: [system:kube-scheduler]
    verbs: [get, list, watch]
  - level: None
    nonResourceURLs: ["/healthz*"]
  - level: Metadata
    resources: [{group: "", resources: [secrets]}]
  - level: RequestResponse
    resources: [{group: "", resources: ["pods/*"]}]
    omitStages: [ResponseStarted]
  - level: Request
    namespaces: [prod]
  - level: Metadata
    userGroups: [devs]
""")


def at(verb, resource, ns="", sub="", user=ALICE, name="", group=""):
    return Attributes(user, verb, ns, group, "v1", resource, sub, name)


@pytest.mark.parametrize("attrs,level,omitted", [
    (at("list", "pods", user=SCHED), "None", set()),
    (at("create", "pods", user=SCHED), "None", set()),  # no later rule matches the scheduler
    (Attributes(ALICE, "get", resource_request=False, path="/healthz/etcd"), "None", set()),
    (at("get", "secrets", "prod"), "Metadata", {"RequestReceived"}),
    (at("create", "pods", "dev", sub="exec"), "RequestResponse", {"RequestReceived", "ResponseStarted"}),
    (at("create", "pods", "prod"), "Request", {"RequestReceived"}),  # pods alone is not pods/*
    (at("create", "configmaps", "dev"), "Metadata", {"RequestReceived"}),
    (at("create", "configmaps", "dev", user=ANONYMOUS_USER), "None", set()),
])
def test_policy(attrs, level, omitted):
    d = Policy.parse(POLICY).decide(attrs)
    assert d.level == level and set(d.omit_stages) == omitted


@pytest.mark.parametrize("doc,msg", [
    ({"kind": "Policy", "rules": [{"level": "Everything"}]}, "unsupported value"),
    ({"kind": "Policy", "rules": [{"level": "None", "nonResourceURLs": ["/x"], "resources": [{}]}]}, "both"),
    ({"kind": "Policy", "omitStages": ["Later"]}, "unsupported stage"),
    ({"kind": "Other"}, "kind"),
])
def test_policy_errors(doc, msg):
    with pytest.raises(PolicyError, match=msg):
        Policy.parse(doc)


def test_default_policy():
    p = default_policy()
    assert p.decide(at("create", "pods", "x")).level == "Metadata"
    assert p.decide(at("get", "secrets", "x")).level == "Metadata"
    assert p.decide(at("create", "pods", "x", sub="exec")).level == "Metadata"
    assert p.decide(at("create", "roles", "x", group="rbac.authorization.k8s.io")).level == "Request"
    assert p.decide(at("watch", "pods", user=SCHED)).level == "None"


def test_event_shape():
    d = Policy.parse(POLICY).decide(at("create", "pods", "prod"))
    ctx = AuditContext(d, at("create", "pods", "prod", name="p"), "POST", "/api/v1/namespaces/prod/pods",
                       ["127.0.0.1"], "kubectl", ALICE, impersonated=UserInfo.make("bob"))
    ctx.set_request({"kind": "Pod", "metadata": {"name": "p", "managedFields": [{}]}})
    ctx.code = 201
    ctx.annotations["authorization.k8s.io/decision"] = "allow"
    ev = ctx.event("ResponseComplete")
    assert ev["kind"] == "Event" and ev["apiVersion"] == "audit.k8s.io/v1" and ev["level"] == "Request"
    assert ev["objectRef"] == {"resource": "pods", "namespace": "prod", "name": "p", "apiVersion": "v1"}
    assert ev["user"]["username"] == "alice" and ev["impersonatedUser"]["username"] == "bob"
    assert ev["responseStatus"]["code"] == 201 and ev["requestObject"]["kind"] == "Pod"
    assert ev["stage"] == "ResponseComplete" and ev["annotations"]["authorization.k8s.io/decision"] == "allow"


def test_writer_rotates_and_keeps_backups(tmp_path):
    w = AuditLogWriter(tmp_path / "audit.log", max_size_mb=0.001, max_backups=2)  # ~1 kB files
    w2 = AuditLogWriter(tmp_path / "audit.log", max_size_mb=0.001, max_backups=2)  # a second worker
    for i in range(60):
        (w if i % 2 else w2).write({"i": i, "pad": "x" * 60})
        if i % 5 == 4:
            w.flush()
            w2.flush()
    w.flush(); w2.flush()
    files = sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".log")
    assert "audit.log" in files and len(files) == 3, files  # current + 2 backups
    for f in files:
        for line in (tmp_path / f).read_text().splitlines():
            json.loads(line)  # whole lines only


# -- encryption ------------------------------------------------------------------------------

K1, K2 = Key("k1", os.urandom(32)), Key("k2", os.urandom(32))


@pytest.mark.parametrize("cls,prefix,overhead", [
    (AESCBC, b"k8s:enc:aescbc:v1:k1:", 16),
    (AESGCM_, b"k8s:enc:aesgcm:v1:k1:", 12 + 16),
    (SecretBox, b"k8s:enc:secretbox:v1:k1:", 24 + 16),
], ids=["aescbc", "aesgcm", "secretbox"])
def test_provider_format_and_roundtrip(cls, prefix, overhead):
    p = cls([K1])
    data = b'{"kind":"Secret","data":{"a":"YQ=="}}'
    enc = p.encrypt(data, b"/registry/core/secrets/ns/s")
    assert enc.startswith(prefix) and data not in enc and len(enc) >= len(prefix) + len(data) + overhead - 16
    key, payload = p.match(enc)
    assert p.decrypt(key, payload, b"/registry/core/secrets/ns/s") == data
    tampered = enc[:-1] + bytes([enc[-1] ^ 1])
    key, payload = p.match(tampered)
    with pytest.raises(DecryptError):
        p.decrypt(key, payload, b"/registry/core/secrets/ns/s")


def test_aesgcm_binds_the_storage_key():
    p = AESGCM_([K1])
    enc = p.encrypt(b"x", b"/registry/core/secrets/ns/a")
    with pytest.raises(DecryptError):
        p.decrypt(*p.match(enc), b"/registry/core/secrets/ns/b")


def _config(*providers):
    return EncryptionConfig.parse({"kind": "EncryptionConfiguration", "apiVersion": "apiserver.config.k8s.io/v1",
                                   "resources": [{"resources": ["secrets"], "providers": list(providers)}]})


def _keys(*keys):
    return {"keys": [{"name": k.name, "secret": base64.b64encode(k.secret).decode()} for k in keys]}


def test_rotation_and_stale():
    ctx = b"/registry/core/secrets/ns/s"
    old = _config({"aescbc": _keys(K1)}, {"identity": {}}).for_resource("", "secrets")
    stored_old = old.to_storage(b"v", ctx)
    plain = old.from_storage(b'{"legacy":1}', ctx)
    assert plain == (b'{"legacy":1}', True)  # unencrypted data reads (identity) but is stale
    both = _config({"aescbc": _keys(K2, K1)}, {"identity": {}}).for_resource("", "secrets")
    assert both.from_storage(stored_old, ctx) == (b"v", True)  # read with the second key: stale
    assert both.from_storage(both.to_storage(b"v", ctx), ctx) == (b"v", False)
    assert both.to_storage(b"v", ctx).startswith(b"k8s:enc:aescbc:v1:k2:")
    only_new = _config({"aescbc": _keys(K2)}).for_resource("", "secrets")
    with pytest.raises(DecryptError):
        only_new.from_storage(stored_old, ctx)
    with pytest.raises(DecryptError):
        only_new.from_storage(b'{"plain":1}', ctx)  # no identity provider: plaintext is refused
    back = _config({"identity": {}}, {"secretbox": _keys(K1)}).for_resource("", "secrets")
    sb = _config({"secretbox": _keys(K1)}).for_resource("", "secrets").to_storage(b"z", ctx)
    assert back.from_storage(sb, ctx) == (b"z", True) and back.to_storage(b"z", ctx) == b"z"


@pytest.mark.parametrize("names,group,resource,match", [
    (["secrets"], "", "secrets", True), (["secrets"], "", "configmaps", False),
    (["*.apps"], "apps", "deployments", True), (["*.apps"], "", "secrets", False),
    (["*.*"], "batch", "jobs", True), (["*."], "", "pods", True), (["*."], "apps", "deployments", False),
    (["deployments.apps"], "apps", "deployments", True),
])
def test_config_resource_matching(names, group, resource, match):
    c = EncryptionConfig.parse({"kind": "EncryptionConfiguration",
                                "resources": [{"resources": names, "providers": [{"identity": {}}]}]})
    assert (c.for_resource(group, resource) is not None) is match


@pytest.mark.parametrize("providers,msg", [
    ([{"aescbc": {"keys": [{"name": "k", "secret": base64.b64encode(b"short").decode()}]}}], "16, 24 or 32"),
    ([{"secretbox": {"keys": [{"name": "k", "secret": base64.b64encode(b"x" * 16).decode()}]}}], "32 bytes"),
    ([{"kms": {}}], "unsupported provider"),
    ([{"aescbc": {"keys": []}}], "at least one key"),
    ([{"aescbc": {"keys": [{"name": "k", "secret": "!!"}]}}], "not base64"),
    ([], "providers: required"),
])
def test_config_errors(providers, msg):
    with pytest.raises(ConfigError, match=msg):
        EncryptionConfig.parse({"kind": "EncryptionConfiguration", "resources": [{"resources": ["secrets"],
                                                                                  "providers": providers}]})


def test_new_config_encrypts_secrets():
    t = EncryptionConfig.parse(new_config()).for_resource("", "secrets")
    assert t.to_storage(b"x", b"k").startswith(b"k8s:enc:aescbc:v1:key1:")


def test_default_policy_quiets_the_controllers_reads_not_their_writes():
    from controlplane.apiserver.authorization.bootstrap_policy import CONTROLLER_RULES
    p = default_policy(f"system:serviceaccount:kube-system:{name}" for name in CONTROLLER_RULES)
    assert CONTROLLER_RULES
    for name in CONTROLLER_RULES:
        sa = UserInfo.make(f"system:serviceaccount:kube-system:{name}",
                           ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"])
        assert p.decide(at("get", "pods", "x", user=sa)).level == "None", name
        assert p.decide(at("create", "pods", "x", user=sa)).level == "Metadata", name
