"""Links of proxied HTML pages rewritten under the proxy path (``endpoints/htmlrewrite.py``),
case by case as kube-apiserver's proxy transport (``rewriteURL``/``rewriteHTML``) does."""

from __future__ import annotations

import gzip
import zlib

import pytest

from controlplane.apiserver.endpoints import htmlrewrite as hr

P = "/api/v1/namespaces/x/services/web:80/proxy"
SRC, REQ = "10.42.0.5:8080", "127.0.0.1:8001"


@pytest.mark.parametrize("url,want", [
    ("/style.css", f"{P}/style.css"),
    ("/sub/", f"{P}/sub/"),  # the trailing slash stays
    ("/a/../b?x=1#top", f"{P}/b?x=1#top"),  # cleaned as Go's path.Join
    ("/", f"{P}/"),
    ("relative/page.html", "relative/page.html"),  # relative: the browser resolves it under the proxy
    ("http://10.42.0.5:8080/img.png", f"{P}/img.png"),  # the backend's own host: scheme and host dropped
    ("http://127.0.0.1:8001/img.png", f"http://127.0.0.1:8001{P}/img.png"),  # the host the client asked: kept
    ("https://example.com/x", "https://example.com/x"),  # another host
    (f"{P}/already", f"{P}/already"),  # already under the prefix
    ("mailto:someone@example.com", "mailto:someone@example.com"),
])
def test_rewrite_url(url, want):
    assert hr.rewrite_url(url, P, SRC, REQ) == want


@pytest.mark.parametrize("page,want", [
    ('<a href="/x">x</a>', f'<a href="{P}/x">x</a>'),
    ("<A HREF='/x' class=c>x</A>", f'<a href="{P}/x" class="c">x</A>'),  # re-serialized as Go writes tags
    ('<img src="/i.png" alt="a&amp;b"/>', f'<img src="{P}/i.png" alt="a&amp;b"/>'),
    ('<p title="/not-a-link">t</p>', '<p title="/not-a-link">t</p>'),  # not a URL attribute
    ('<a href="rel">r</a> <a href="/abs">a</a>', f'<a href="rel">r</a> <a href="{P}/abs">a</a>'),
    ('<html>\n<head>\n<link rel=stylesheet href="/s.css">\n</head>\n<body>\n<form action="/post"></form>',
     f'<html>\n<head>\n<link rel="stylesheet" href="{P}/s.css">\n</head>\n<body>\n<form action="{P}/post"></form>'),
    ('<script src="/app.js"></script><script>var u = "<a href=/x>";</script>',
     f'<script src="{P}/app.js"></script><script>var u = "<a href=/x>";</script>'),  # script text untouched
    ("no tags at all", "no tags at all"),
])
def test_rewrite_html(page, want):
    assert hr.rewrite_html(page, P, SRC, REQ) == want


@pytest.mark.parametrize("encoding,pack,unpack", [
    ("", lambda b: b, lambda b: b),
    ("gzip", gzip.compress, gzip.decompress),
    ("deflate", lambda b: zlib.compress(b)[2:-4], lambda b: zlib.decompress(b, -zlib.MAX_WBITS)),
])
def test_rewrite_body_encodings(encoding, pack, unpack):
    out = hr.rewrite_body(pack(b'<a href="/x">\xff</a>'), encoding, P, SRC, REQ)
    assert out is not None and unpack(out) == f'<a href="{P}/x">'.encode() + b"\xff</a>"


def test_rewrite_body_leaves_unknown_encodings():
    assert hr.rewrite_body(b"whatever", "br", P, SRC, REQ) is None
    assert hr.rewrite_body(b"not gzip", "gzip", P, SRC, REQ) is None
