"""``v1`` ComponentStatus (``kubectl get componentstatuses``, ``cs``): deprecated since
Kubernetes 1.19 but still served by kube-apiserver, and still what people type to ask "is my
control plane healthy?".

As kube-apiserver's ``pkg/registry/core/componentstatus``: never stored; every GET probes the
components there and then, concurrently: ``controller-manager`` and ``scheduler`` through their
``/healthz`` (HTTPS without verifying the certificate, as kube-apiserver probes them, or plain
HTTP), and every etcd server of ``--etcd-endpoints`` as ``etcd-0``, ``etcd-1``, ... through
etcd's ``/health`` (with the apiserver's etcd client certificate). Healthy: condition
``Healthy=True`` with message ``ok``; else ``False`` (an answer that is not ok) or
``Unknown`` (no answer), the reason in ``error``. Every answer carries the deprecation Warning.

kube-apiserver probes fixed ports (10257, 10259); the components here bind free ports, so the
apiserver is told where they are: ``--component-status NAME=URL`` (a ``/healthz`` URL) or
``NAME=PATH`` (a file holding the component's port, as ``up`` writes
``DIR/<component>.metrics-port``). Neighbours: ``routes.py`` dispatches here,
``printing/printers.py`` has the table columns, ``cmd/apiserver.py`` the flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.read import to_table
from controlplane.apiserver.meta import errors
from controlplane.apiserver.strategy.base import warn

DEPRECATION = "v1 ComponentStatus is deprecated in v1.19+"
PROBE_TIMEOUT_S = 5.0


@dataclass
class Target:
    name: str
    where: str  # a URL, or the path of a file holding a port on 127.0.0.1
    etcd_tls: tuple[str | None, str | None, str | None] | None = None  # (ca, cert, key) for an etcd server


@dataclass
class ComponentStatuses:
    targets: list[Target] = field(default_factory=list)

    @classmethod
    def build(cls, components: list[str], etcd_endpoints: list[str], cafile: str | None = None,
              certfile: str | None = None, keyfile: str | None = None) -> "ComponentStatuses":
        """``components``: ``NAME=URL`` or ``NAME=PORT-FILE`` (``--component-status``)."""
        targets = []
        for spec in components:
            name, sep, where = spec.partition("=")
            if not sep or not name or not where:
                raise ValueError(f"--component-status {spec!r}: want NAME=URL or NAME=PORT-FILE")
            targets.append(Target(name, where))
        for i, ep in enumerate(etcd_endpoints):
            base = ep if "://" in ep else f"http://{ep}"
            targets.append(Target(f"etcd-{i}", base.rstrip("/") + "/health", (cafile, certfile, keyfile)))
        return cls(targets)

    async def probe_all(self) -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(_probe(t) for t in self.targets)))

    def get_target(self, name: str) -> Target | None:
        return next((t for t in self.targets if t.name == name), None)


def _item(name: str, status: str, message: str, error: str) -> dict[str, Any]:
    cond: dict[str, Any] = {"type": "Healthy", "status": status}
    if message:
        cond["message"] = message
    if error:
        cond["error"] = error
    return {"kind": "ComponentStatus", "apiVersion": "v1", "metadata": {"name": name}, "conditions": [cond]}


def _url(t: Target) -> str:
    if "://" in t.where:
        return t.where
    port = int(Path(t.where).read_text().strip())
    return f"https://127.0.0.1:{port}/healthz"


def _ssl(t: Target, url: str) -> ssl.SSLContext | bool:
    if not url.startswith("https:"):
        return False
    if t.etcd_tls is not None and t.etcd_tls[0]:
        ca, cert, key = t.etcd_tls
        ctx = ssl.create_default_context(cafile=ca)
        ctx.check_hostname = False  # etcd is dialled by address; the chain is verified
        if cert and key:
            ctx.load_cert_chain(cert, key)
        return ctx
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # kube-apiserver's probe of the scheduler/controller-manager
    return ctx


async def _get(url: str, ctx: ssl.SSLContext | bool) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async with s.get(url, ssl=ctx) as r:
            return r.status, (await r.text(errors="replace"))[:1024]


async def _probe(t: Target) -> dict[str, Any]:
    try:
        url = _url(t)
    except (OSError, ValueError) as e:
        return _item(t.name, "Unknown", "", f"no address for {t.name}: {e}")
    try:
        try:
            code, body = await _get(url, _ssl(t, url))
        except aiohttp.ClientConnectorSSLError:
            if "://" in t.where or not url.startswith("https:"):
                raise
            url = "http" + url[len("https"):]  # a component serving plain HTTP
            code, body = await _get(url, False)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ssl.SSLError) as e:
        return _item(t.name, "Unknown", "", f'Get "{url}": {_reason(e)}')
    if code != 200:
        return _item(t.name, "False", body.strip(), f"HTTP probe failed with statuscode: {code}")
    if t.etcd_tls is not None:
        try:
            healthy = json.loads(body).get("health") in ("true", True)
        except (ValueError, AttributeError):
            healthy = False
        if not healthy:
            return _item(t.name, "False", "", f"unhealthy etcd member: {body.strip()}")
    elif body.strip() != "ok":
        return _item(t.name, "False", body.strip(), "unexpected health answer")
    return _item(t.name, "True", "ok", "")


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return f"context deadline exceeded (no answer within {PROBE_TIMEOUT_S:g}s)"
    if isinstance(e, aiohttp.ClientConnectorError):
        err = e.os_error
        why = os.strerror(err.errno).lower() if err.errno else ("connection refused" if isinstance(
            err, ConnectionRefusedError) else str(err))
        return f"dial tcp {e.host}:{e.port}: connect: {why}"  # Go's wording
    return str(e) or type(e).__name__


async def handle(statuses: ComponentStatuses, request: Request, t: hc.Target, verb: str) -> HTTPResponse:
    """GET of one ComponentStatus or of the list (the only verbs it has)."""
    warn([DEPRECATION])
    if verb == "get":
        target = statuses.get_target(t.name or "")
        if target is None:
            raise errors.not_found("componentstatuses", t.name or "")
        obj = await _probe(target)
        if hc.wants_table(request):
            return hc.json_response(to_table(t.info, [obj], request))
        return hc.json_response(obj)
    if verb == "list":
        items = await statuses.probe_all()
        if hc.wants_table(request):
            return hc.json_response(to_table(t.info, items, request))
        return hc.json_response({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {},
                                 "items": [{k: v for k, v in i.items() if k not in ("kind", "apiVersion")}
                                           for i in items]})
    raise errors.method_not_allowed("the server does not allow this method on the requested resource")
