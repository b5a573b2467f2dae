"""Links in proxied HTML pages rewritten under the proxy path, as kube-apiserver's proxy
transport does (``k8s.io/apimachinery/pkg/util/proxy/transport.go``: ``rewriteHTML``,
``rewriteURL``), so that a page served at ``/api/v1/namespaces/x/services/web:80/proxy/``
that links ``/style.css`` makes the browser ask ``.../proxy/style.css``.

Which attributes of which tags hold URLs is Kubernetes' table (``atomsToAttrs``). A URL is
rewritten when its path is absolute and it has no host, or the backend's host, or the host the
client asked (``kubectl proxy``'s ``127.0.0.1:8001``, kept then); relative URLs and other hosts
stay. The body is tokenized with the standard library's ``html.parser`` and only the start
tags that carry a rewritten URL are re-serialized (Go re-serializes every start tag; the
attributes come out the same, escaped as Go escapes them). gzip and raw deflate bodies are
decoded and re-encoded; other encodings pass untouched, as in Kubernetes. Pure; used by
``httpproxy.py``.
"""

from __future__ import annotations

import gzip
import posixpath
import zlib
from html.parser import HTMLParser
from urllib.parse import SplitResult, urlsplit, urlunsplit

URL_ATTRS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "a": "href", "applet": "codebase", "area": "href", "audio": "src", "base": "href",
    "blockquote": "cite", "body": "background", "button": "formaction", "command": "icon",
    "del": "cite", "embed": "src", "form": "action", "frame": "longdesc src", "head": "profile",
    "html": "manifest", "iframe": "longdesc src", "img": "longdesc src usemap",
    "input": "src usemap formaction", "ins": "cite", "link": "href",
    "object": "classid codebase data usemap", "q": "cite", "script": "src", "source": "src",
    "video": "poster src",
}.items()}
CORS_HEADERS = frozenset(("access-control-allow-credentials", "access-control-allow-headers",
                          "access-control-allow-methods", "access-control-allow-origin"))
_GO_ESCAPE = str.maketrans({"&": "&amp;", "'": "&#39;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "\r": "&#13;"})


def go_join(prefix: str, path: str) -> str:
    """Go's ``path.Join`` (joined, then cleaned), keeping a trailing slash as ``rewriteURL`` does."""
    out = posixpath.normpath(prefix + "/" + path)
    if out.startswith("//"):
        out = "/" + out.lstrip("/")
    return out + "/" if path.endswith("/") and out != "/" else out


def rewrite_url(value: str, prefix: str, source_host: str, request_host: str) -> str:
    """One URL found in a page from ``source_host`` that the client asked for at
    ``request_host``: under ``prefix`` when it points at the backend itself."""
    try:
        u = urlsplit(value)
    except ValueError:
        return value
    if (u.netloc and u.netloc not in (source_host, request_host)) or not u.path.startswith("/"):
        return value
    if not (u.netloc and u.netloc == request_host):
        u = SplitResult("", "", u.path, u.query, u.fragment)
    if u.path.startswith(prefix):
        return urlunsplit(u)
    return urlunsplit(u._replace(path=go_join(prefix, u.path)))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.found: list[tuple[tuple[int, int], str, str, list[tuple[str, str | None]], bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, True)

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> None:
        names = URL_ATTRS.get(tag)
        if names and any(k in names for k, _ in attrs):
            self.found.append((self.getpos(), self.get_starttag_text() or "", tag, attrs, self_closing))


def _serialize(tag: str, attrs: list[tuple[str, str | None]], self_closing: bool) -> str:
    """A start tag as Go's ``html.Token.String`` writes it."""
    body = "".join(f' {k}="{(v or "").translate(_GO_ESCAPE)}"' for k, v in attrs)
    return f"<{tag}{body}{'/' if self_closing else ''}>"


def rewrite_html(text: str, prefix: str, source_host: str, request_host: str) -> str:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    if not parser.found:
        return text
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    out, last = [], 0
    for (line, col), raw, tag, attrs, closing in parser.found:
        at = starts[line - 1] + col
        if text[at:at + len(raw)] != raw or at < last:
            continue  # (the parser's position does not point at the tag: leave it)
        names = URL_ATTRS[tag]
        new = [(k, rewrite_url(v, prefix, source_host, request_host) if k in names and v is not None else v)
               for k, v in attrs]
        if new == attrs:
            continue
        out += [text[last:at], _serialize(tag, new, closing)]
        last = at + len(raw)
    out.append(text[last:])
    return "".join(out)


def rewrite_body(body: bytes, encoding: str, prefix: str, source_host: str, request_host: str) -> bytes | None:
    """The rewritten body of a ``text/html`` answer (None: an encoding we leave alone, or a
    body that does not decode)."""
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            raw = gzip.decompress(body)
        elif encoding == "deflate":
            raw = zlib.decompress(body, -zlib.MAX_WBITS)
        elif encoding in ("", "identity"):
            raw = body
        else:
            return None
    except (OSError, EOFError, zlib.error):
        return None
    text = rewrite_html(raw.decode("utf-8", "surrogateescape"), prefix, source_host, request_host)
    out = text.encode("utf-8", "surrogateescape")
    if encoding == "gzip":
        return gzip.compress(out)
    if encoding == "deflate":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return c.compress(out) + c.flush()
    return out
