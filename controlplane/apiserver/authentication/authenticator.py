"""The apiserver's authenticator chain: who sent a request.

In kube-apiserver's order: a verified client certificate (``x509``), then a bearer token
(``Authorization: Bearer``, or the ``base64url.bearer.authorization.k8s.io.<token>`` WebSocket
subprotocol browsers and kubectl's WebSocket executor use): the static token file, bootstrap
tokens, ServiceAccount JWTs. A request with neither is anonymous (``system:anonymous`` in
``system:unauthenticated``) when anonymous requests are enabled; a token that no
authenticator accepts is a 401, never anonymous.

Token results are cached for ``success_ttl`` seconds (kube-apiserver: 10 s), never past the
token's own expiry: a ServiceAccount token costs a signature check and object look-ups once,
not per request. Neighbours: ``x509``, ``tokenfile``, ``bootstrap``, ``serviceaccount``;
``impersonation`` runs after this; the server layer calls ``authenticate``.
"""

from __future__ import annotations

import base64
import time
from collections import OrderedDict
from typing import Any, Mapping

import jwt

from controlplane.apiserver.authentication import bootstrap
from controlplane.apiserver.authentication.serviceaccount import Getter, InvalidToken, TokenValidator, looks_like_jwt
from controlplane.apiserver.authentication.tokenfile import TokenFile
from controlplane.machinery.userinfo import ANONYMOUS_USER, UserInfo
from controlplane.apiserver.authentication.x509 import user_from_peercert

WS_TOKEN_PREFIX = "base64url.bearer.authorization.k8s.io."


class Unauthorized(Exception):
    """-> 401 ``Unauthorized``; ``reason`` is logged and audited, never sent to the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The bearer token of a request: the ``Authorization`` header, else the WebSocket
    subprotocol that carries one."""
    auth = headers.get("authorization") or headers.get("Authorization") or ""
    if auth:
        scheme, _, tok = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and tok.strip():
            return tok.strip()
        return None
    protos = headers.get("sec-websocket-protocol") or headers.get("Sec-WebSocket-Protocol") or ""
    for p in protos.split(","):
        p = p.strip()
        if p.startswith(WS_TOKEN_PREFIX):
            enc = p[len(WS_TOKEN_PREFIX):]
            try:
                return base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4)).decode()
            except (ValueError, UnicodeDecodeError):
                return None
    return None


class Authenticator:
    def __init__(self, *, token_file: TokenFile | None = None, service_accounts: TokenValidator | None = None,
                 get: Getter | None = None, anonymous: bool = True, success_ttl: float = 10.0,
                 cache_size: int = 8192, bootstrap_tokens: bool = True) -> None:
        self.token_file = token_file
        self.service_accounts = service_accounts
        self.get = get
        self.anonymous = anonymous
        self.bootstrap_tokens = bootstrap_tokens and get is not None
        self.success_ttl = success_ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[UserInfo, float]] = OrderedDict()

    async def authenticate(self, peercert: dict[str, Any] | None, headers: Mapping[str, str]) -> UserInfo:
        return await self.authenticate_user(user_from_peercert(peercert), headers)

    async def authenticate_user(self, cert_user: UserInfo | None, headers: Mapping[str, str]) -> UserInfo:
        """As ``authenticate`` with the certificate's user already read (the server reads it
        once per connection)."""
        if cert_user is not None:
            return cert_user
        token = bearer_token(headers)
        if token is not None:
            return await self.authenticate_token(token)
        if self.anonymous:
            return ANONYMOUS_USER
        raise Unauthorized("no credentials")

    async def authenticate_token(self, token: str, now: float | None = None) -> UserInfo:
        t = time.monotonic() if now is None else now
        hit = self._cache.get(token)
        if hit is not None:
            if hit[1] > t:
                return hit[0]
            self._cache.pop(token, None)
        user, token_exp = await self._token(token)
        ttl = self.success_ttl
        if token_exp is not None:
            ttl = min(ttl, token_exp - time.time())
        if ttl > 0:
            self._cache[token] = (user, t + ttl)
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return user

    async def _token(self, token: str) -> tuple[UserInfo, float | None]:
        if self.token_file is not None:
            user = self.token_file.authenticate(token)
            if user is not None:
                return user, None
        if self.bootstrap_tokens and self.get is not None:
            user = await bootstrap.authenticate(token, self.get)
            if user is not None:
                return user, None
        if self.service_accounts is not None and looks_like_jwt(token):
            try:
                user = await self.service_accounts.validate(token)
            except InvalidToken as e:
                raise Unauthorized(str(e)) from e
            try:
                exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
            except jwt.PyJWTError:
                exp = None
            return user, float(exp) if isinstance(exp, (int, float)) else None
        raise Unauthorized("invalid bearer token")

    def forget(self) -> None:
        self._cache.clear()
