"""The dashboard's credentials parsing and in-memory sessions (pure logic; the server itself is
tested against a real apiserver in tests/integration/test_dashboard_server.py)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from controlplane.dashboard import credentials as c
from controlplane.dashboard.cluster import ClusterInfo
from controlplane.dashboard.sessions import SessionStore
from controlplane.dashboard.upstream import Identity, Upstream, status_message

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n"


def b64(x: bytes) -> str:
    return base64.b64encode(x).decode()


def kubeconfig(user: dict, current: str | None = "ctx") -> str:
    import yaml
    doc = {"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "cl", "cluster": {"server": "https://evil:1"}}],
           "users": [{"name": "u", "user": user}], "contexts": [{"name": "ctx", "context": {"cluster": "cl", "user": "u"}}]}
    if current:
        doc["current-context"] = current
    return yaml.safe_dump(doc)


@pytest.mark.parametrize("user,kind", [
    ({"token": "abc"}, "token"),
    ({"client-certificate-data": b64(PEM), "client-key-data": b64(KEY)}, "client certificate"),
    ({}, "anonymous"),
], ids=["token", "client-cert", "anonymous"])
def test_kubeconfig_credentials(user: dict, kind: str) -> None:
    creds = c.from_kubeconfig(kubeconfig(user))
    assert creds.kind == kind
    if kind == "client certificate":
        assert creds.cert_pem == PEM and creds.key_pem == KEY and creds.headers() == {}
    if kind == "token":
        assert creds.headers() == {"Authorization": "Bearer abc"}


@pytest.mark.parametrize("text,message", [
    (kubeconfig({"client-certificate": "/etc/x", "client-key": "/etc/y"}), "names a file"),
    (kubeconfig({"tokenFile": "/etc/shadow"}), "names a file"),
    (kubeconfig({"exec": {"command": "id"}}), "not run by the dashboard"),
    (kubeconfig({"auth-provider": {"name": "oidc"}}), "not run by the dashboard"),
    (kubeconfig({"client-certificate-data": b64(PEM)}), "go together"),
    (kubeconfig({"client-certificate-data": "!!!", "client-key-data": b64(KEY)}), "not valid base64"),
    (kubeconfig({"client-certificate-data": b64(b"x"), "client-key-data": b64(b"y")}), "must be PEM"),
    (kubeconfig({"username": "a", "password": "b"}), "basic authentication"),
    (kubeconfig({"token": "x"}, current="other"), 'context "other" is not in the kubeconfig'),
    ("- a list", "not a YAML mapping"),
    ("", "empty"),
], ids=["cert-files", "token-file", "exec", "auth-provider", "half-pair", "bad-base64", "not-pem", "basic", "context",
        "list", "empty"])
def test_unusable_kubeconfigs(text: str, message: str) -> None:
    with pytest.raises(c.CredentialError, match=message):
        c.from_kubeconfig(text)


@pytest.mark.parametrize("token,want", [("abc", "abc"), ("  Bearer abc  ", "abc"), ("bearer x.y.z", "x.y.z")])
def test_tokens(token: str, want: str) -> None:
    assert c.from_token(token).token == want


@pytest.mark.parametrize("token", ["", "   ", None, 5, "a b", "a\nb"])
def test_bad_tokens(token: object) -> None:
    with pytest.raises(c.CredentialError):
        c.from_token(token)


def test_cluster_comes_from_the_dashboards_kubeconfig_only(tmp_path) -> None:
    p = tmp_path / "kc"
    p.write_text("clusters: [{name: a, cluster: {server: 'https://127.0.0.1:6443/', certificate-authority-data: "
                 + b64(PEM) + "}}]\ncontexts: [{name: a, context: {cluster: a, user: x}}]\ncurrent-context: a\n")
    info = ClusterInfo.from_kubeconfig(p)
    assert info.server == "https://127.0.0.1:6443" and info.ca_pem == PEM and info.tls
    assert info.ws_server == "wss://127.0.0.1:6443"
    assert ClusterInfo("http://h:1").ws_server == "ws://h:1" and ClusterInfo("http://h:1").ssl_context() is None


@pytest.mark.parametrize("raw,code,want", [
    (b'{"kind":"Status","message":"Unauthorized"}', 401, "Unauthorized"),
    (b"plain text\n", 500, "plain text"),
    (b"", 502, "HTTP 502"),
])
def test_status_message(raw: bytes, code: int, want: str) -> None:
    assert status_message(raw, code) == want


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sessions_expire_when_idle_or_old_unless_a_socket_is_open() -> None:
    async def run() -> None:
        clock = Clock()
        store = SessionStore(idle_timeout=60, max_age=600, clock=clock)
        creds = c.from_token("t")
        a = await store.create(creds, Upstream(ClusterInfo("http://h:1"), creds), Identity("alice"))
        b = await store.create(creds, Upstream(ClusterInfo("http://h:1"), creds), Identity("bob"))
        assert a.id != b.id and len(a.id) >= 43
        clock.t += 50
        assert store.get(a.id) is a  # touched
        closed: list[str] = []
        store.attach(b, lambda: closed.append("b"))
        clock.t += 55
        assert store.get(b.id, touch=False) is b  # idle for 105 s, but its socket is open
        assert store.get(a.id) is a and store.get("forged") is None
        clock.t += 61
        assert store.get(a.id) is None
        assert await store.sweep() == 1 and len(store) == 1
        clock.t += 600
        assert await store.sweep() == 1 and closed == ["b"]  # max age ends even an open one
        assert len(store) == 0

    asyncio.run(run())


def test_store_drops_the_least_recently_used_beyond_its_size() -> None:
    async def run() -> None:
        clock = Clock()
        store = SessionStore(max_sessions=2, clock=clock)
        creds = c.from_token("t")
        ids = []
        for name in ("a", "b", "c"):
            clock.t += 1
            s = await store.create(creds, Upstream(ClusterInfo("http://h:1"), creds), Identity(name))
            ids.append(s.id)
        assert store.get(ids[0]) is None and store.get(ids[1]) and store.get(ids[2])

    asyncio.run(run())
