"""One signed-in user's HTTP client to the apiserver, and the sign-in check.

Every request the dashboard makes to the cluster goes through an ``Upstream`` built from the
user's ``Credentials``: their bearer token as a header, or their client certificate in the TLS
context (verified against the cluster's CA). The connection pool belongs to the session and is
closed with it.

Sign-in asks the API who the credentials belong to with a ``SelfSubjectReview``
(``kubectl auth whoami``); a 401 refuses the sign-in with the API's message. An apiserver
without the authentication API (404), or whose review fails (403, 5xx), is asked for ``/api``
instead, so a refused credential is still refused. Credentials-free (anonymous) sign-in is accepted only when the API lets
anonymous requests read ``/api``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from controlplane.dashboard.cluster import ClusterInfo
from controlplane.dashboard.credentials import Credentials
from controlplane.log import get_logger

log = get_logger(__name__)

USER_AGENT = "controlplane-dashboard"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class SignInError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Identity:
    username: str | None
    groups: list[str] = field(default_factory=list)
    uid: str | None = None
    reviewed: bool = True  # False: the API has no SelfSubjectReview; the name is unknown

    def as_json(self) -> dict[str, Any]:
        return {"username": self.username, "groups": self.groups, "uid": self.uid, "reviewed": self.reviewed}


def status_message(raw: bytes, code: int) -> str:
    """The message of a ``Status`` body (or the body's text) for an error answer."""
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])
    except ValueError:
        pass
    text = raw.decode("utf-8", "replace").strip()
    return text or f"HTTP {code}"


class Upstream:
    def __init__(self, cluster: ClusterInfo, creds: Credentials) -> None:
        self.cluster = cluster
        self.creds = creds
        self.http: aiohttp.ClientSession | None = None
        self.ssl: Any = None

    async def open(self) -> "Upstream":
        def build() -> Any:
            ctx = self.cluster.ssl_context()
            if ctx is not None:
                self.creds.apply_to(ctx)
            return ctx
        self.ssl = await asyncio.to_thread(build)
        connector = aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else False, limit=64)
        self.http = aiohttp.ClientSession(
            connector=connector, headers={**self.creds.headers(), "User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=True)
        return self

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None

    def url(self, path: str, query: str = "") -> URL:
        """``path`` (``/api/...``) on the cluster, with an already-encoded query string."""
        return URL(self.cluster.server + path + (f"?{query}" if query else ""), encoded=True)

    def ws_url(self, path: str, query: str = "") -> URL:
        return URL(self.cluster.ws_server + path + (f"?{query}" if query else ""), encoded=True)

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self.http is not None, "upstream not open"
        return self.http

    async def who_am_i(self) -> Identity:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        async with self.session.post(self.url(SSR_PATH), json=body) as r:
            raw = await r.read()
            if r.status in (200, 201):
                info = (json.loads(raw).get("status") or {}).get("userInfo") or {}
                return Identity(username=info.get("username"), groups=list(info.get("groups") or []),
                                uid=info.get("uid"))
            if r.status == 401:
                raise SignInError(401, status_message(raw, 401))
            log.info("SelfSubjectReview unavailable; checking the credentials with /api", code=r.status,
                     message=status_message(raw, r.status))
        # no authentication API here (404), not allowed to use it (403) or failing (5xx): is the
        # credential accepted at all?
        async with self.session.get(self.url("/api")) as r:
            raw = await r.read()
            if r.status == 401 or (r.status == 403 and self.creds.anonymous):
                raise SignInError(r.status, status_message(raw, r.status))
            if r.status >= 500:
                raise SignInError(r.status, status_message(raw, r.status))
        return Identity(username=None, reviewed=False)
