"""Authentication logic: client-certificate users, static tokens, ServiceAccount JWTs (bound
and legacy), bootstrap tokens, the authenticator chain and its cache, impersonation."""

from __future__ import annotations

import base64
import datetime as dt
import time

import jwt
import pytest

from controlplane.apiserver.authentication import bootstrap, impersonation, oidc, tokenfile
from controlplane.apiserver.authentication.authenticator import Authenticator, Unauthorized, bearer_token
from controlplane.apiserver.authentication.serviceaccount import (BoundObject, InvalidToken, TokenIssuer,
                                                                  TokenValidator, key_id)
from controlplane.machinery.userinfo import ANONYMOUS_USER, UserInfo
from controlplane.apiserver.authentication.x509 import user_from_peercert
from controlplane.pki import certs


@pytest.mark.parametrize("peercert,want", [
    (None, None),
    ({}, None),
    ({"subject": ((("organizationName", "system:masters"),), (("commonName", "admin"),))},
     ("admin", ("system:masters", "system:authenticated"))),
    ({"subject": ((("commonName", "system:node:n1"),), (("organizationName", "system:nodes"),))},
     ("system:node:n1", ("system:nodes", "system:authenticated"))),
    ({"subject": ((("organizationName", "g1"),), (("organizationName", "g2"),), (("commonName", "u"),))},
     ("u", ("g1", "g2", "system:authenticated"))),
    ({"subject": ((("organizationName", "g1"),),)}, None),
], ids=["none", "empty", "admin", "node", "two-groups", "no-cn"])
def test_x509_user(peercert, want):
    u = user_from_peercert(peercert)
    assert (None if u is None else (u.name, u.groups)) == want


@pytest.mark.parametrize("text,token,want", [
    ('t1,alice,uid1,"dev,ops"\n', "t1", ("alice", "uid1", ("dev", "ops", "system:authenticated"))),
    ("t2,bob,uid2\n", "t2", ("bob", "uid2", ("system:authenticated",))),
    ("# comment\n\nt3,carol,3\n", "t3", ("carol", "3", ("system:authenticated",))),
    ("t1,alice,uid1\n", "other", None),
], ids=["groups", "no-groups", "comments", "unknown"])
def test_token_file(text, token, want):
    u = tokenfile.TokenFile(tokenfile.parse(text)).authenticate(token)
    assert (None if u is None else (u.name, u.uid, u.groups)) == want


@pytest.mark.parametrize("text", ["onlytoken\n", "t,,uid\n"])
def test_token_file_errors(text):
    with pytest.raises(tokenfile.TokenFileError):
        tokenfile.parse(text)


@pytest.mark.parametrize("headers,want", [
    ({"authorization": "Bearer abc"}, "abc"),
    ({"Authorization": "bearer  abc "}, "abc"),
    ({"authorization": "Basic Zm9v"}, None),
    ({"sec-websocket-protocol": "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io."
      + base64.urlsafe_b64encode(b"tok123").decode().rstrip("=")}, "tok123"),
    ({}, None),
])
def test_bearer_token(headers, want):
    assert bearer_token(headers) == want


# -- ServiceAccount tokens ------------------------------------------------------------------

class Objects:
    """A tiny object store for the validator's look-ups."""

    def __init__(self) -> None:
        self.objs: dict[tuple[str, str | None, str], dict] = {}

    def put(self, kind, ns, name, uid, **meta):
        self.objs[(kind, ns, name)] = {"metadata": {"name": name, "namespace": ns, "uid": uid, **meta}}
        return self.objs[(kind, ns, name)]

    async def get(self, kind, ns, name):
        return self.objs.get((kind, ns, name))


@pytest.fixture(scope="module")
def sa_key():
    return certs.key_pem(certs.new_rsa_key())


@pytest.fixture
def objects():
    o = Objects()
    o.put("ServiceAccount", "ns1", "default", "sa-uid")
    o.put("Pod", "ns1", "p1", "pod-uid")
    o.put("Node", None, "n1", "node-uid")
    return o


def _validator(sa_key, objects, **kw):
    pub = certs.public_pem(certs.load_key(sa_key))
    return TokenValidator([pub], get=objects.get, **kw)


async def test_bound_token_roundtrip(sa_key, objects):
    iss = TokenIssuer(sa_key)
    tok, exp = iss.issue("ns1", "default", "sa-uid", bound=BoundObject("Pod", "p1", "pod-uid"),
                         node=BoundObject("Node", "n1", "node-uid"), expiration_s=3600)
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims["sub"] == "system:serviceaccount:ns1:default"
    assert claims["kubernetes.io"]["pod"] == {"name": "p1", "uid": "pod-uid"}
    assert jwt.get_unverified_header(tok)["kid"] == iss.kid
    u = await _validator(sa_key, objects).validate(tok)
    assert u.name == "system:serviceaccount:ns1:default" and u.uid == "sa-uid"
    assert u.groups == ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated")
    assert u.extra_dict["authentication.kubernetes.io/pod-name"] == ["p1"]
    assert u.extra_dict["authentication.kubernetes.io/node-name"] == ["n1"]


@pytest.mark.parametrize("case,msg", [
    ("expired", "expired"),
    ("wrong-audience", "audiences"),
    ("forged", "(?i)signature"),
    ("pod-gone", "not found"),
    ("pod-recreated", "UID"),
    ("sa-deleted", "not found"),
    ("pod-terminating", "marked for deletion"),
    ("other-issuer", "issuer"),
    ("garbage", "malformed"),
])
async def test_bound_token_rejected(sa_key, objects, case, msg):
    iss = TokenIssuer(sa_key)
    kw: dict = {"bound": BoundObject("Pod", "p1", "pod-uid")}
    if case == "expired":
        kw["now"] = time.time() - 7200
    if case == "wrong-audience":
        kw["audiences"] = ["vault"]
    tok, _ = iss.issue("ns1", "default", "sa-uid", **kw)
    if case == "forged":
        tok, _ = TokenIssuer(certs.key_pem(certs.new_rsa_key())).issue("ns1", "default", "sa-uid")
        # same kid as the real key so the signature check itself must fail
        claims = jwt.decode(tok, options={"verify_signature": False})
        other = certs.load_key(certs.key_pem(certs.new_rsa_key()))
        tok = jwt.encode(claims, other, algorithm="RS256", headers={"kid": iss.kid})
    if case == "pod-gone":
        objects.objs.pop(("Pod", "ns1", "p1"))
    if case == "pod-recreated":
        objects.put("Pod", "ns1", "p1", "new-uid")
    if case == "sa-deleted":
        objects.objs.pop(("ServiceAccount", "ns1", "default"))
    if case == "pod-terminating":
        objects.put("Pod", "ns1", "p1", "pod-uid", deletionTimestamp="2020-01-01T00:00:00Z")
    if case == "other-issuer":
        tok, _ = TokenIssuer(sa_key, issuer="https://elsewhere").issue("ns1", "default", "sa-uid")
    if case == "garbage":
        tok = "eyJhbGciOi.not.ajwt"
    with pytest.raises(InvalidToken, match=msg):
        await _validator(sa_key, objects).validate(tok)


async def test_legacy_secret_token(sa_key, objects):
    iss = TokenIssuer(sa_key)
    tok = iss.issue_legacy("ns1", "default", "sa-uid", "default-token-abc")
    sec = objects.put("Secret", "ns1", "default-token-abc", "s-uid",
                      annotations={"kubernetes.io/service-account.name": "default"})
    sec["data"] = {"token": base64.b64encode(tok.encode()).decode()}
    u = await _validator(sa_key, objects).validate(tok)
    assert u.name == "system:serviceaccount:ns1:default"
    objects.objs.pop(("Secret", "ns1", "default-token-abc"))
    with pytest.raises(InvalidToken, match="not found"):
        await _validator(sa_key, objects).validate(tok)


def test_jwks_and_discovery(sa_key, objects):
    v = _validator(sa_key, objects)
    doc = oidc.jwks(v)
    assert len(doc["keys"]) == 1
    k = doc["keys"][0]
    assert k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig"
    assert k["kid"] == key_id(certs.load_key(sa_key).public_key())
    conf = oidc.openid_configuration("https://kubernetes.default.svc.cluster.local")
    assert conf["jwks_uri"] == "https://kubernetes.default.svc.cluster.local/openid/v1/jwks"


# -- bootstrap tokens -------------------------------------------------------------------------

@pytest.mark.parametrize("case,ok", [
    ("valid", True), ("wrong-secret", False), ("expired", False), ("no-auth-usage", False),
    ("malformed", False), ("deleting", False), ("wrong-type", False),
])
async def test_bootstrap_tokens(case, ok):
    tok = "abcdef.0123456789abcdef"
    ttl = dt.timedelta(hours=-1) if case == "expired" else dt.timedelta(hours=1)
    usages = ("signing",) if case == "no-auth-usage" else ("authentication", "signing")
    sec = bootstrap.new_token_secret(tok, ttl=ttl, usages=usages, extra_groups=["system:bootstrappers:workers"])
    if case == "deleting":
        sec["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    if case == "wrong-type":
        sec["type"] = "Opaque"

    async def get(kind, ns, name):
        return sec if (kind, ns, name) == ("Secret", "kube-system", "bootstrap-token-abcdef") else None

    presented = {"wrong-secret": "abcdef.0123456789abcdeX", "malformed": "abcdef0123456789abcdef"}.get(case, tok)
    u = await bootstrap.authenticate(presented.lower() if case != "wrong-secret" else "abcdef.0123456789abcdex", get)
    assert (u is not None) == ok
    if ok:
        assert u.name == "system:bootstrap:abcdef"
        assert u.groups == ("system:bootstrappers", "system:bootstrappers:workers", "system:authenticated")


def test_new_bootstrap_token_shape():
    assert bootstrap.TOKEN_RE.match(bootstrap.new_token())


# -- the chain ----------------------------------------------------------------------------------

async def test_chain_order_and_anonymous(sa_key, objects):
    tf = tokenfile.TokenFile(tokenfile.parse("static1,alice,1,devs\n"))
    a = Authenticator(token_file=tf, service_accounts=_validator(sa_key, objects), get=objects.get)
    cert = {"subject": ((("commonName", "bob"),),)}
    assert (await a.authenticate(cert, {"authorization": "Bearer static1"})).name == "bob"  # x509 first
    assert (await a.authenticate(None, {"authorization": "Bearer static1"})).name == "alice"
    assert await a.authenticate(None, {}) is ANONYMOUS_USER
    with pytest.raises(Unauthorized):
        await a.authenticate(None, {"authorization": "Bearer nope"})  # a bad token is never anonymous
    tok, _ = TokenIssuer(sa_key).issue("ns1", "default", "sa-uid")
    assert (await a.authenticate(None, {"authorization": f"Bearer {tok}"})).name.endswith("ns1:default")
    a.anonymous = False
    with pytest.raises(Unauthorized):
        await a.authenticate(None, {})


async def test_token_cache_respects_expiry(sa_key, objects):
    calls = []

    async def get(kind, ns, name):
        calls.append(kind)
        return await objects.get(kind, ns, name)

    a = Authenticator(service_accounts=_validator(sa_key, objects, leeway_s=0), get=get, bootstrap_tokens=False)
    a.service_accounts.get = get
    tok, _ = TokenIssuer(sa_key).issue("ns1", "default", "sa-uid")
    await a.authenticate_token(tok)
    n = len(calls)
    await a.authenticate_token(tok)
    assert len(calls) == n, "a cached token costs no look-ups"
    objects.objs.pop(("ServiceAccount", "ns1", "default"))
    await a.authenticate_token(tok)  # still cached (10 s, as kube-apiserver)
    with pytest.raises(Unauthorized):
        await a.authenticate_token(tok, now=time.monotonic() + 11)


# -- impersonation --------------------------------------------------------------------------------

@pytest.mark.parametrize("headers,want_user,want_checks", [
    ([("Impersonate-User", "jane")], ("jane", ("system:authenticated",)), [("", "users", "", "", "jane")]),
    ([("Impersonate-User", "jane"), ("Impersonate-Group", "devs"), ("Impersonate-Group", "ops")],
     ("jane", ("devs", "ops", "system:authenticated")),
     [("", "users", "", "", "jane"), ("", "groups", "", "", "devs"), ("", "groups", "", "", "ops")]),
    ([("Impersonate-User", "system:serviceaccount:ns1:bot")],
     ("system:serviceaccount:ns1:bot", ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated")),
     [("", "serviceaccounts", "", "ns1", "bot")]),
    ([("Impersonate-User", "jane"), ("Impersonate-Uid", "u-1"), ("Impersonate-Extra-Scopes%2Fx", "a")],
     ("jane", ("system:authenticated",)),
     [("", "users", "", "", "jane"), ("authentication.k8s.io", "uids", "", "", "u-1"),
      ("authentication.k8s.io", "userextras", "scopes/x", "", "a")]),
    ([("Impersonate-User", "system:anonymous")], ("system:anonymous", ("system:unauthenticated",)),
     [("", "users", "", "", "system:anonymous")]),
])
def test_impersonation(headers, want_user, want_checks):
    req = impersonation.requested(headers)
    u = impersonation.impersonated_user(req)
    assert (u.name, u.groups) == want_user
    assert impersonation.checks(req) == want_checks


def test_impersonation_without_user_is_bad_request():
    assert impersonation.requested([("Accept", "x")]) is None
    with pytest.raises(impersonation.BadImpersonation, match="without impersonating a user"):
        impersonation.requested([("Impersonate-Group", "devs")])


def test_user_info_helpers():
    n = UserInfo.make("system:node:a", ["system:nodes"])
    assert n.node_name() == "a" and n.service_account() is None
    assert UserInfo.make("system:node:a").node_name() is None  # not in system:nodes
    assert UserInfo.make("system:serviceaccount:x:y").service_account() == ("x", "y")
    assert n.to_api() == {"username": "system:node:a", "groups": ["system:nodes", "system:authenticated"]}
