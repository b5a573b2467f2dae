"""Proxying a request for an aggregated group/version to its backend (kube-aggregator's
``proxyHandler``): only while the APIService is Available (else 503), over HTTPS verified with
the APIService's ``caBundle`` (server name ``<service>.<namespace>.svc``) unless it says
``insecureSkipTLSVerify``; the method, path, query, body and end-to-end headers go through
(``Authorization``, ``Impersonate-*``, incoming ``X-Remote-*`` and hop-by-hop headers do not),
the answer is streamed back as it comes (lists of tens of megabytes, watches).

Who is asking travels as kube-aggregator sends it: the apiserver presents its front-proxy client
certificate (``--proxy-client-cert-file``/``--proxy-client-key-file``, signed by the
front-proxy CA the backend trusts for these headers) and names the authenticated user in
``X-Remote-User``, ``X-Remote-Group`` (one per group) and ``X-Remote-Extra-<key>``; the backend
authorizes that user (metrics-server: a SubjectAccessReview).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any

from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.aggregation.apiservices import is_available
from controlplane.apiserver.aggregation.resolve import ResolveError, Resolver
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps
from controlplane.apiserver.meta.request import CURRENT
from controlplane.log import get_logger

log = get_logger(__name__)
Obj = dict[str, Any]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "authorization", "content-length"}
UNAVAILABLE = "the server is currently unable to handle the request"
SEND_SIZE = 1 << 20


def unavailable(detail: str = "") -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable", UNAVAILABLE + (f": {detail}" if detail else ""))


_STRIPPED_PREFIXES = ("x-remote-", "impersonate-")


def identity_headers(user: Any) -> list[tuple[str, str]]:
    """The request-header authentication headers naming ``user`` (a ``UserInfo``)."""
    out = [("X-Remote-User", user.name)]
    out += [("X-Remote-Group", g) for g in user.groups]
    for k, vs in user.extra:
        out += [(f"X-Remote-Extra-{quote(k, safe='')}", v) for v in vs]
    return out


class TLS:
    """One client TLS context per (caBundle, insecureSkipTLSVerify) of the APIServices, each
    presenting the front-proxy client certificate when there is one."""

    def __init__(self, client_cert: tuple[str, str] | None = None) -> None:
        self._ctx: dict[tuple[str, bool], ssl.SSLContext | bool] = {}
        self.client_cert = client_cert

    def for_apiservice(self, apiservice: Obj) -> tuple[ssl.SSLContext | bool, str | None]:
        spec = apiservice.get("spec") or {}
        insecure = bool(spec.get("insecureSkipTLSVerify"))
        ca = spec.get("caBundle") or ""
        key = (ca, insecure)
        ctx = self._ctx.get(key)
        if ctx is None:
            if insecure and self.client_cert is None:
                ctx = False
            else:
                ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca and not insecure else None)
                if insecure:
                    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
                if self.client_cert is not None:
                    ctx.load_cert_chain(*self.client_cert)
            self._ctx[key] = ctx
        svc = spec.get("service") or {}
        server_name = None if insecure else f"{svc.get('name')}.{svc.get('namespace')}.svc"
        return ctx, server_name


class Proxy:
    def __init__(self, resolver: Resolver, client_cert: tuple[str, str] | None = None) -> None:
        self.resolver = resolver
        self.tls = TLS(client_cert)
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=30), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: Request, apiservice: Obj) -> HTTPResponse | None:
        if not is_available(apiservice):
            return _status(unavailable())
        try:
            base = self.resolver.url(apiservice)
        except ResolveError as e:
            return _status(unavailable(e.message))
        url = base + request.path + (f"?{request.query_string}" if request.query_string else "")
        headers = CIMultiDict((k, v) for k, v in request.headers.items()
                              if k.lower() not in HOP_BY_HOP and not k.lower().startswith(_STRIPPED_PREFIXES))
        rc = CURRENT.get()
        if rc is not None:
            headers.extend(identity_headers(rc.user))
        headers["X-Forwarded-For"] = request.ip or ""
        headers["X-Forwarded-Proto"] = request.scheme
        ctx, server_name = self.tls.for_apiservice(apiservice)
        started = False
        try:
            async with self.session().request(request.method, url, headers=headers, data=request.body or None,
                                              ssl=ctx, server_hostname=server_name) as r:
                out_headers = {k: v for k, v in r.headers.items()
                               if k.lower() not in HOP_BY_HOP and k.lower() != "content-type"}
                resp = await request.respond(status=r.status, headers=out_headers,
                                             content_type=r.headers.get("Content-Type", "application/json"))
                started = True
                if request.args.get("watch") in ("1", "true"):  # events go on as they arrive
                    async for chunk in r.content.iter_any():
                        await resp.send(chunk)
                else:  # in sends of 1 MiB (a list of 150,000 PodMetrics is 50 MB of small reads)
                    buf: list[bytes] = []
                    size = 0
                    async for chunk in r.content.iter_any():
                        buf.append(chunk)
                        size += len(chunk)
                        if size >= SEND_SIZE:
                            await resp.send(b"".join(buf))
                            buf, size = [], 0
                    if buf:
                        await resp.send(b"".join(buf))
                await resp.eof()
                return None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            if started:
                log.info("aggregated response cut short", url=url, error=repr(e))
                return None
            log.warning("aggregated API unreachable", url=url, error=repr(e))
            return _status(unavailable())


def _status(err: errors.ApiError) -> HTTPResponse:
    return HTTPResponse(dumps(err.status()), status=err.code, content_type="application/json")
