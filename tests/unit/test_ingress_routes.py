"""The ingress controller's routing (``controlplane/ingress/routes.py``) and the
DefaultIngressClass admission plugin's choice, table-driven against the Ingress specification."""

from __future__ import annotations

import pytest

from controlplane.apiserver.admission.defaultingressclass import default_class
from controlplane.ingress import routes


def ing(name, rules=(), *, cls="ours", created="2026-01-01T00:00:00Z", default=None, tls=(), ann=None, ns="d"):
    spec = {"rules": list(rules)}
    if cls is not None:
        spec["ingressClassName"] = cls
    if default is not None:
        spec["defaultBackend"] = {"service": {"name": default, "port": {"number": 80}}}
    if tls:
        spec["tls"] = list(tls)
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": created, "annotations": ann or {}},
            "spec": spec}


def rule(host, *paths):
    r = {"http": {"paths": [{"path": p, "pathType": t, "backend": {"service": {"name": svc, "port": {"number": 80}}}}
                            for p, t, svc in paths]}}
    if host:
        r["host"] = host
    return r


TABLE = routes.build([
    ing("a", [rule("foo.test", ("/", "Prefix", "root"), ("/api", "Prefix", "api"), ("/api/v1", "Exact", "v1exact"),
                   ("/api/v1", "Prefix", "v1prefix"), ("/static/", "Prefix", "static"))]),
    ing("b", [rule("*.wild.test", ("/", "Prefix", "wild")), rule("", ("/any", "Prefix", "anyhost"))],
        created="2026-01-02T00:00:00Z"),
    ing("c", [rule("foo.test", ("/api", "Prefix", "newer-api"))], created="2026-01-03T00:00:00Z", default="fallback"),
    ing("theirs", [rule("foo.test", ("/theirs", "Prefix", "theirs"))], cls="other"),
], "ours", is_default=False)


@pytest.mark.parametrize("host,path,service", [
    ("foo.test", "/", "root"),
    ("FOO.test:8080", "/x", "root"),             # host case and port ignored
    ("foo.test", "/api", "api"),
    ("foo.test", "/api/", "api"),
    ("foo.test", "/apis", "root"),               # prefixes match whole path elements
    ("foo.test", "/api/v1", "v1exact"),          # same length: Exact before Prefix
    ("foo.test", "/api/v1/x", "v1prefix"),       # the longest match wins
    ("foo.test", "/static", "static"),           # a trailing slash of the prefix is ignored
    ("a.wild.test", "/", "wild"),
    ("wild.test", "/", "fallback"),              # a wildcard needs one more label...
    ("a.b.wild.test", "/", "fallback"),          # ...exactly one
    ("other.test", "/any/thing", "anyhost"),     # a host-less rule matches every host
    ("foo.test", "/theirs", "root"),             # another class's Ingress is not served
    ("nowhere.test", "/", "fallback"),           # the default backend
])
def test_match(host, path, service):
    b = TABLE.match(host, path)
    assert b is not None and b.service == service


def test_older_ingress_wins_a_tie_and_no_default_means_none():
    t = routes.build([ing("new", [rule("h", ("/p", "Prefix", "new"))], created="2026-02-01T00:00:00Z"),
                      ing("old", [rule("h", ("/p", "Prefix", "old"))], created="2026-01-01T00:00:00Z")], "ours", False)
    assert t.match("h", "/p").service == "old"
    assert t.match("h", "/q") is None


@pytest.mark.parametrize("obj,is_default,ours", [
    (ing("x", cls="ours"), False, True),
    (ing("x", cls="other"), True, False),
    (ing("x", cls=None), True, True),             # no class: the default class serves it
    (ing("x", cls=None), False, False),
    (ing("x", cls=None, ann={"kubernetes.io/ingress.class": "ours"}), False, True),
    (ing("x", cls=None, ann={"kubernetes.io/ingress.class": "nginx"}), True, False),
])
def test_is_ours(obj, is_default, ours):
    assert routes.is_ours(obj, "ours", is_default) is ours


def test_tls_secret_by_host():
    t = routes.build([ing("x", tls=[{"hosts": ["secure.test", "*.w.test"], "secretName": "s1"}])], "ours", False)
    assert t.secret_for("secure.test:443") == ("d", "s1")
    assert t.secret_for("a.w.test") == ("d", "s1")
    assert t.secret_for("w.test") is None and t.secret_for("") is None


@pytest.mark.parametrize("classes,want", [
    ([], None),
    ([{"metadata": {"name": "a"}}], None),
    ([{"metadata": {"name": "a", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}}], "a"),
    ([{"metadata": {"name": "old", "creationTimestamp": "2026-01-01T00:00:00Z",
                    "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}},
      {"metadata": {"name": "new", "creationTimestamp": "2026-02-01T00:00:00Z",
                    "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}}], "new"),
    ([{"metadata": {"name": "a", "annotations": {"ingressclass.kubernetes.io/is-default-class": "false"}}}], None),
])
def test_default_class(classes, want):
    assert default_class(classes) == want
