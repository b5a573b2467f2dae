"""Proxying a request for an aggregated group/version to its backend (kube-aggregator's
``proxyHandler``): only while the APIService is Available (else 503), over HTTPS verified with
the APIService's ``caBundle`` (server name ``<service>.<namespace>.svc``) unless it says
``insecureSkipTLSVerify``; the method, path, query, body and end-to-end headers go through
(``Authorization`` and hop-by-hop headers do not), the answer is streamed back as it comes
(lists of tens of megabytes, watches).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.aggregation.apiservices import is_available
from controlplane.apiserver.aggregation.resolve import ResolveError, Resolver
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta.jsonutil import dumps
from controlplane.log import get_logger

log = get_logger(__name__)
Obj = dict[str, Any]
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "host", "authorization", "content-length"}
UNAVAILABLE = "the server is currently unable to handle the request"
SEND_SIZE = 1 << 20


def unavailable(detail: str = "") -> errors.ApiError:
    return errors.ApiError(503, "ServiceUnavailable", UNAVAILABLE + (f": {detail}" if detail else ""))


class TLS:
    """One client TLS context per (caBundle, insecureSkipTLSVerify) of the APIServices."""

    def __init__(self) -> None:
        self._ctx: dict[tuple[str, bool], ssl.SSLContext | bool] = {}

    def for_apiservice(self, apiservice: Obj) -> tuple[ssl.SSLContext | bool, str | None]:
        spec = apiservice.get("spec") or {}
        insecure = bool(spec.get("insecureSkipTLSVerify"))
        ca = spec.get("caBundle") or ""
        key = (ca, insecure)
        ctx = self._ctx.get(key)
        if ctx is None:
            if insecure:
                ctx = False
            else:
                ctx = ssl.create_default_context(cadata=base64.b64decode(ca).decode() if ca else None)
            self._ctx[key] = ctx
        svc = spec.get("service") or {}
        server_name = None if insecure else f"{svc.get('name')}.{svc.get('namespace')}.svc"
        return ctx, server_name


class Proxy:
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.tls = TLS()
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
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
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
