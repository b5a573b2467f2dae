"""One client per controller, authenticated as its own ServiceAccount: client-go's
``clientbuilder.DynamicControllerClientBuilder``, what kube-controller-manager uses with
``--use-service-account-credentials``.

``ServiceAccountClientBuilder(root)`` hands out ``client(name)``: a ``RestClient`` for the
ServiceAccount ``kube-system/<name>`` (``deployment-controller``, ...) that talks to the same
apiservers as ``root`` with its credentials stripped (``rest.anonymous_config``: no client
certificate) and sends ``Authorization: Bearer <token>``. The apiserver then sees the user
``system:serviceaccount:kube-system:<name>`` (groups ``system:serviceaccounts``,
``system:serviceaccounts:kube-system``), authorized by the bootstrap ClusterRole
``system:controller:<name>`` (``apiserver.authorization.bootstrap_policy``).

``run(stop_event)`` (owned by the ``Manager``, cancelled with it) keeps one task per
ServiceAccount: with the root client it gets or creates the ServiceAccount (and kube-system,
tolerating a refusal, as client-go), asks for a token (``TokenRequest``, ``expirationSeconds``
3600), installs it, and asks again once ``100 - leeway_percent`` % of its lifetime has passed
(client-go: 20 % leeway, a lifetime taken as at least 10 minutes). When a token cannot be had
the task logs and retries with a doubling back-off (0.5 s up to 30 s) and never raises.
Until a client's first token is installed its requests wait (the controller waits, the
manager runs on); an expired token that could not be replaced is refused by the apiserver
(401) and the controller's own retries carry on until the next token arrives.

The informers keep using the root client, as kube-controller-manager's shared informer
factory does. Neighbours: ``manager.Manager`` (``client_for``), ``rest.RestClient``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import time
from typing import Any, Callable

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient, anonymous_config
from controlplane.log import get_logger

log = get_logger(__name__)

NAMESPACE = "kube-system"
DEFAULT_EXPIRATION_S = 3600  # client-go's defaultExpirationSeconds
DEFAULT_LEEWAY_PERCENT = 20  # client-go's defaultLeewayPercent
MIN_LIFETIME_S = 600.0  # a shorter answer is clock skew: client-go pins it to 10 minutes
RETRY_INITIAL_S = 0.5
RETRY_MAX_S = 30.0


def service_account_user(namespace: str, name: str) -> str:
    return f"system:serviceaccount:{namespace}:{name}"


def refresh_delay(now: float, expires_at: float, leeway_percent: float, *,
                  min_lifetime: float = MIN_LIFETIME_S) -> float:
    """Seconds from ``now`` until a token expiring at ``expires_at`` is replaced: its
    lifetime (at least ``min_lifetime``) less ``leeway_percent`` of it (client-go's
    ``tokenSourceImpl.Token``)."""
    lifetime = max(expires_at - now, min_lifetime)
    return lifetime - lifetime * leeway_percent / 100.0


def next_backoff(delay: float) -> float:
    return min(max(delay * 2, RETRY_INITIAL_S), RETRY_MAX_S)


def parse_expiration(status: dict[str, Any]) -> float:
    """``status.expirationTimestamp`` of a TokenRequest as a POSIX time."""
    text = str(status.get("expirationTimestamp") or "")
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.timezone.utc).timestamp()


class ServiceAccountClient(RestClient):
    """A ``RestClient`` whose requests wait for its first token."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.token_ready = asyncio.Event()
        self.token_expires_at = 0.0

    def install_token(self, token: str, expires_at: float) -> None:
        self.set_bearer_token(token)
        self.token_expires_at = expires_at
        self.token_ready.set()

    async def request(self, *args: Any, **kw: Any) -> Any:
        if not self.token_ready.is_set():
            await self.token_ready.wait()
        return await super().request(*args, **kw)

    async def watch(self, *args: Any, **kw: Any):  # type: ignore[no-untyped-def, override]
        if not self.token_ready.is_set():
            await self.token_ready.wait()
        async for item in super().watch(*args, **kw):
            yield item


class ServiceAccountClientBuilder:
    def __init__(self, root: RestClient, *, namespace: str = NAMESPACE, user_agent: str = "controller-manager",
                 expiration_s: int = DEFAULT_EXPIRATION_S, leeway_percent: float = DEFAULT_LEEWAY_PERCENT,
                 clock: Callable[[], float] = time.time, **client_kw: Any) -> None:
        """``client_kw``: further ``RestClient`` settings of every client (``lite_http``,
        ``max_connections``)."""
        self.root = root
        self.namespace = namespace
        self.user_agent = user_agent
        self.expiration_s = expiration_s
        self.leeway_percent = leeway_percent
        self.clock = clock
        self._client_kw = client_kw
        self._clients: dict[str, ServiceAccountClient] = {}
        self.failures: dict[str, int] = {}  # failed token requests per ServiceAccount, since the last success

    @property
    def names(self) -> list[str]:
        return list(self._clients)

    def client(self, name: str) -> ServiceAccountClient:
        """The client of ServiceAccount ``name`` (one per name; its token comes from ``run``).
        Its user agent is ours with ``/system:serviceaccount:…`` appended (client-go's
        ``AddUserAgent``), so the managedFields manager stays ours."""
        c = self._clients.get(name)
        if c is None:
            servers, ssl_ctx = anonymous_config(self.root)
            c = ServiceAccountClient(
                servers, ssl_ctx=ssl_ctx, user_agent=f"{self.user_agent}/{service_account_user(self.namespace, name)}",
                **self._client_kw)
            self._clients[name] = c
        return c

    async def run(self, stop_event: asyncio.Event) -> None:
        """Keep every client's token fresh until ``stop_event``; the per-ServiceAccount tasks
        are cancelled and awaited on the way out."""
        tasks = [asyncio.create_task(self._keep(name, c), name=f"sa-token-{name}")
                 for name, c in self._clients.items()]
        try:
            await stop_event.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            await c.close()

    async def _keep(self, name: str, client: ServiceAccountClient) -> None:
        backoff = 0.0
        while True:
            try:
                token, expires_at = await self.request_token(name)
            except Exception as e:  # noqa: BLE001 - never crash the manager: log, back off, ask again
                backoff = next_backoff(backoff)
                self.failures[name] = self.failures.get(name, 0) + 1
                log.warning("cannot get a token for the controller's ServiceAccount; retrying",
                            service_account=f"{self.namespace}/{name}", error=str(e), retry_in=backoff)
                await asyncio.sleep(backoff)
                continue
            backoff = 0.0
            self.failures[name] = 0
            first = not client.token_ready.is_set()
            client.install_token(token, expires_at)
            delay = refresh_delay(self.clock(), expires_at, self.leeway_percent)
            log.info("controller token obtained" if first else "controller token refreshed",
                     user=service_account_user(self.namespace, name), refresh_in=round(delay, 1))
            await asyncio.sleep(delay)

    async def request_token(self, name: str) -> tuple[str, float]:
        """Ensure the ServiceAccount and ask for a token (root client): (token, expiry)."""
        await self.ensure_service_account(name)
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": self.expiration_s}}
        out = await self.root.request("POST", R.SERVICEACCOUNTS.path(self.namespace, name, "token"), body=body)
        status = (out or {}).get("status") or {}
        if not status.get("token"):
            raise ValueError("the TokenRequest's answer holds no token")
        return status["token"], parse_expiration(status)

    async def ensure_service_account(self, name: str) -> dict:
        """client-go's ``getOrCreateServiceAccount``: the ServiceAccount, created when missing
        (kube-system first when it is missing; a refusal there is only logged)."""
        try:
            return await self.root.get(R.SERVICEACCOUNTS, name, self.namespace)
        except ApiStatusError as e:
            if not e.not_found:
                raise
        try:
            await self.root.get(R.NAMESPACES, self.namespace)
        except ApiStatusError as e:
            if e.not_found:
                try:
                    await self.root.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": self.namespace}})
                except ApiStatusError as ce:
                    if not ce.already_exists:
                        log.warning("cannot create the namespace of the controllers' ServiceAccounts",
                                    namespace=self.namespace, error=str(ce))
        sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": self.namespace}}
        try:
            return await self.root.create(R.SERVICEACCOUNTS, sa, self.namespace)
        except ApiStatusError as e:
            if not e.already_exists:
                raise
            return await self.root.get(R.SERVICEACCOUNTS, name, self.namespace)
