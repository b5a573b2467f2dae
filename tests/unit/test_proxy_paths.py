"""The proxy subresources' URL handling (``endpoints/httpproxy.py``): Kubernetes'
``SplitSchemeNamePort``, the proxy prefix and rest of a path, redirect ``Location``
rewriting, and the authorization attributes of proxy and connect paths."""

from __future__ import annotations

import pytest

from controlplane.apiserver.authorization.attributes import request_attributes
from controlplane.apiserver.endpoints import httpproxy
from controlplane.machinery.userinfo import UserInfo


@pytest.mark.parametrize("id_,want", [
    ("web", ("", "web", "")),
    ("web:8080", ("", "web", "8080")),
    ("web:http", ("", "web", "http")),
    ("https:web:443", ("https", "web", "443")),
    ("http:web:", ("http", "web", "")),
    ("ftp:web:21", None),
    (":80", None),
    ("a:b:c:d", None),
])
def test_split_scheme_name_port(id_, want):
    assert httpproxy.split_scheme_name_port(id_) == want


@pytest.mark.parametrize("path,index,want", [
    ("/api/v1/namespaces/x/pods/web:8080/proxy/a/b", 7, ("/api/v1/namespaces/x/pods/web:8080/proxy", "/a/b")),
    ("/api/v1/namespaces/x/services/web/proxy/", 7, ("/api/v1/namespaces/x/services/web/proxy", "/")),
    ("/api/v1/namespaces/x/services/web/proxy", 7, ("/api/v1/namespaces/x/services/web/proxy", "")),
    ("/api/v1/nodes/n1/proxy/metrics/cadvisor", 5, ("/api/v1/nodes/n1/proxy", "/metrics/cadvisor")),
])
def test_proxy_split(path, index, want):
    assert httpproxy.proxy_split(path, index) == want


@pytest.mark.parametrize("location,want", [
    ("/sub/", "/P/sub/"),
    ("/sub/?a=1", "/P/sub/?a=1"),
    ("http://10.42.0.5:8080/x", "/P/x"),
    ("https://example.test/elsewhere", "https://example.test/elsewhere"),
    ("relative/path", "relative/path"),
])
def test_location_rewritten_under_the_proxy(location, want):
    out = dict(httpproxy._response_headers([(b"Location", location.encode()), (b"Connection", b"close"),
                                            (b"Content-Length", b"3"), (b"X-Kept", b"1")], "/P", "10.42.0.5:8080"))
    assert out == {"Location": want, "X-Kept": "1"}


@pytest.mark.parametrize("method,path,verb,resource,sub,name,ns", [
    ("GET", "/api/v1/namespaces/x/pods/web:8080/proxy/a", "get", "pods", "proxy", "web:8080", "x"),
    ("POST", "/api/v1/namespaces/x/services/https:web:443/proxy/", "create", "services", "proxy", "https:web:443", "x"),
    ("DELETE", "/api/v1/nodes/n1/proxy/x", "delete", "nodes", "proxy", "n1", ""),
    ("GET", "/api/v1/namespaces/x/pods/web/portforward", "get", "pods", "portforward", "web", "x"),
    ("POST", "/api/v1/namespaces/x/pods/web/attach", "create", "pods", "attach", "web", "x"),
])
def test_connect_attributes(method, path, verb, resource, sub, name, ns):
    a = request_attributes(UserInfo("u"), method, path, {})
    assert (a.verb, a.resource, a.subresource, a.name, a.namespace) == (verb, resource, sub, name, ns)
