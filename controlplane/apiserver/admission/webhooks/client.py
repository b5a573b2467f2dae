"""Calling one admission webhook over HTTPS with ``aiohttp`` (kube-apiserver's webhook client):
a TLS context per ``caBundle`` (verified against that bundle, or the system roots without
one; cached), the request's ``?timeout=Ns`` and a deadline of ``timeoutSeconds``; the server
name checked is the URL's host, or ``<service>.<namespace>.svc`` for a service reference
reached through its endpoints' addresses. Failures come back as ``CallError`` worded as
Kubernetes' client does (``Post "https://...": context deadline exceeded``,
``dial tcp 127.0.0.1:9443: connect: connection refused``, ``couldn't get version/kind; json
parse error: ...``) for the plugin to report as ``failed calling webhook "x": ...``.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from typing import Any

import aiohttp
import ujson


class CallError(Exception):
    """The webhook could not be called or its answer could not be read."""


class WebhookClient:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        key = ca_bundle or ""
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context()
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle).decode()
                    ctx = ssl.create_default_context(cadata=pem)
                except (ValueError, ssl.SSLError, UnicodeDecodeError) as e:
                    raise CallError(f"unable to load root certificates: {e}") from None
            ctx.set_alpn_protocols(["http/1.1"])
            if len(self._contexts) > 256:
                self._contexts.clear()
            self._contexts[key] = ctx
        return ctx

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=10),
                json_serialize=lambda o: ujson.dumps(o, ensure_ascii=False, escape_forward_slashes=False))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, *, ca_bundle: str | None, timeout: float,
                   server_hostname: str | None = None) -> Any:
        """POST ``body`` (an AdmissionReview) and return the decoded JSON answer."""
        seconds = int(timeout) if float(timeout).is_integer() else timeout
        full = f"{url}{'&' if '?' in url else '?'}timeout={seconds}s"
        ctx = self._ssl(ca_bundle)
        kw: dict[str, Any] = {"server_hostname": server_hostname} if server_hostname else {}
        try:
            async with asyncio.timeout(timeout):
                async with self.session().post(full, data=body, ssl=ctx, allow_redirects=False,
                                               headers={"Content-Type": "application/json",
                                                        "Accept": "application/json, */*"}, **kw) as r:
                    raw = await r.read()
                    status = r.status
        except TimeoutError:
            raise CallError(f'Post "{full}": context deadline exceeded') from None
        except aiohttp.ClientConnectorCertificateError as e:
            raise CallError(f'Post "{full}": tls: failed to verify certificate: {e.certificate_error}') from None
        except aiohttp.ClientSSLError as e:
            raise CallError(f'Post "{full}": tls: {e}') from None
        except aiohttp.ClientConnectorError as e:
            reason = (e.os_error.strerror or str(e.os_error)).lower() if e.os_error else str(e)
            raise CallError(f'Post "{full}": dial tcp {e.host}:{e.port}: connect: {reason}') from None
        except aiohttp.ClientError as e:
            raise CallError(f'Post "{full}": {e or type(e).__name__}') from None
        except OSError as e:
            raise CallError(f'Post "{full}": {e}') from None
        if not 200 <= status < 300:
            text = raw.decode(errors="replace").strip()
            try:
                st = ujson.loads(raw)
                if isinstance(st, dict) and st.get("kind") == "Status" and st.get("message"):
                    raise CallError(st["message"])
            except ValueError:
                pass
            raise CallError(f'an error on the server ("{text[:1024]}") has prevented the request from succeeding')
        try:
            return ujson.loads(raw)
        except ValueError as e:
            raise CallError(f"couldn't get version/kind; json parse error: {e}") from None
