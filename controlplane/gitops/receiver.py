"""The webhook receiver: ``POST /hook/<namespace>/<receiver name>`` on the controller's
webhook port (aiohttp), for GitHub, GitLab and generic push payloads.

Each ``Receiver`` names its type and a Secret whose ``token`` key is the shared secret:
GitHub's ``X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>``, GitLab's
``X-Gitlab-Token: <token>``, generic ``X-Signature: sha256=<HMAC-SHA256 of the body>``
(Flux's generic-hmac). A missing or wrong signature is 401 and triggers nothing. A valid push
triggers the Receiver's GitRepositories (``spec.resources``; none listed: every GitRepository
in its namespace) that match the pushed repository (by path, e.g. ``owner/repo``, whatever
the scheme or host) and reference (the pushed branch, or any tag for tag pushes): each gets the
``gitops.controlplane.io/requestedAt`` annotation (so the request is durable and visible) and
an in-process wake-up. GitHub's ``ping`` answers 200 and triggers nothing.
Neighbours: ``operator.py`` (starts it), ``context.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from aiohttp import web

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError
from controlplane.gitops import api, metrics
from controlplane.gitops.context import Context
from controlplane.log import get_logger

log = get_logger(__name__)
MAX_BODY = 4 << 20


def repo_path(url: str) -> str:
    """``owner/repo`` of a clone URL (any scheme, scp-like ``git@host:owner/repo.git`` too)."""
    u = url.strip()
    if "://" in u:
        path = urlparse(u).path
    elif re.match(r"^[\w.-]+@[\w.-]+:", u):
        path = u.split(":", 1)[1]
    else:
        path = u
    path = path.strip("/")
    return path[:-4] if path.endswith(".git") else path


def same_repo(source_url: str, candidates: list[str]) -> bool:
    src = repo_path(source_url).split("/")
    for c in candidates:
        cand = repo_path(c).split("/")
        if cand and cand != [""] and src[-len(cand):] == cand:
            return True
    return False


def payload_repos(kind: str, p: dict) -> list[str]:
    """Repository identifiers a push payload carries (empty: it names none)."""
    out: list[str] = []
    if kind == "github":
        r = p.get("repository") or {}
        out += [r.get(k) for k in ("full_name", "clone_url", "ssh_url", "git_url", "html_url")]
    elif kind == "gitlab":
        pr = p.get("project") or {}
        out += [pr.get(k) for k in ("path_with_namespace", "git_http_url", "git_ssh_url", "web_url")]
        out += [(p.get("repository") or {}).get("url")]
    else:
        r = p.get("repository")
        if isinstance(r, str):
            out.append(r)
        elif isinstance(r, dict):
            out += [r.get(k) for k in ("full_name", "url", "clone_url")]
        out.append(p.get("url"))
    return [x for x in out if isinstance(x, str) and x]


def ref_matches(source_ref: dict, pushed: str | None) -> bool:
    if not pushed:
        return True
    if source_ref.get("name"):
        return source_ref["name"] == pushed
    if pushed.startswith("refs/tags/"):
        return bool(source_ref.get("tag") or source_ref.get("semver"))
    if pushed.startswith("refs/heads/"):
        branch = pushed.removeprefix("refs/heads/")
        if source_ref.get("tag") or source_ref.get("semver"):
            return False
        return not source_ref.get("branch") or source_ref["branch"] == branch
    return True


def verify(kind: str, token: bytes, headers: Any, body: bytes) -> bool:
    if kind == "gitlab":
        got = headers.get("X-Gitlab-Token", "")
        return bool(got) and hmac.compare_digest(got.encode(), token)
    header = "X-Hub-Signature-256" if kind == "github" else "X-Signature"
    got = headers.get(header, "")
    if not got.startswith("sha256="):
        return False
    want = hmac.new(token, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(got[7:].strip().lower(), want)


def _event_kind(kind: str, headers: Any) -> str:
    if kind == "github":
        return headers.get("X-GitHub-Event", "push")
    if kind == "gitlab":
        return {"Push Hook": "push", "Tag Push Hook": "push"}.get(headers.get("X-Gitlab-Event", "Push Hook"), "other")
    return "push"


class WebhookServer:
    def __init__(self, ctx: Context, host: str, port: int) -> None:
        self.ctx = ctx
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post("/hook/{namespace}/{name}", self.handle)
        app.router.add_get("/healthz", lambda r: web.Response(text="ok"))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        kind = "unknown"
        try:
            resp, kind = await self._handle(request, ns, name)
        except ApiStatusError as e:
            resp = web.json_response({"error": e.message}, status=503)
        metrics.WEBHOOK_REQUESTS.labels(kind, str(resp.status)).inc()
        return resp

    async def _handle(self, request: web.Request, ns: str, name: str) -> tuple[web.Response, str]:
        try:
            recv = await self.ctx.client.get(api.RECEIVERS, name, ns)
        except ApiStatusError as e:
            if e.not_found:
                return web.json_response({"error": f"receiver {ns}/{name} not found"}, status=404), "unknown"
            raise
        spec = recv.get("spec") or {}
        kind = spec.get("type", "generic")
        body = await request.read()
        token = await self._token(ns, (spec.get("secretRef") or {}).get("name", ""))
        if token is None:
            return web.json_response({"error": "the receiver's secret (key 'token') is unavailable"}, status=500), kind
        if not verify(kind, token, request.headers, body):
            log.warning("webhook signature rejected", receiver=f"{ns}/{name}", type=kind, remote=request.remote)
            self.ctx.event(recv, "Warning", "InvalidSignature", f"{kind} webhook from {request.remote}: signature or token invalid")
            return web.json_response({"error": "invalid signature"}, status=401), kind
        event = _event_kind(kind, request.headers)
        if event != "push":
            return web.json_response({"message": f"event {event!r} ignored"}, status=200), kind
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return web.json_response({"error": "payload is not JSON"}, status=400), kind
        if not isinstance(payload, dict):
            payload = {}
        triggered = await self._trigger(recv, payload_repos(kind, payload), payload.get("ref"))
        log.info("webhook accepted", receiver=f"{ns}/{name}", type=kind, ref=payload.get("ref"), triggered=triggered)
        if triggered:
            self.ctx.event(recv, "Normal", "Triggered", f"push to {payload.get('ref') or '?'}: reconciling {', '.join(triggered)}")
        return web.json_response({"triggered": triggered}, status=200), kind

    async def _token(self, ns: str, secret_name: str) -> bytes | None:
        try:
            secret = await self.ctx.client.get(R.SECRETS, secret_name, ns)
        except ApiStatusError as e:
            if e.not_found:
                return None
            raise
        raw = (secret.get("data") or {}).get("token")
        return base64.b64decode(raw).strip() if raw else None

    async def _trigger(self, recv: dict, repos: list[str], ref: str | None) -> list[str]:
        ns = recv["metadata"]["namespace"]
        wanted = [r.get("name") for r in (recv.get("spec") or {}).get("resources") or []]
        lst = await self.ctx.client.list(api.GITREPOSITORIES, ns)
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out: list[str] = []
        for src in lst.get("items") or []:
            sname, sspec = src["metadata"]["name"], src.get("spec") or {}
            if wanted and "*" not in wanted and sname not in wanted:
                continue
            if repos and not same_repo(sspec.get("url", ""), repos):
                continue
            if not ref_matches(sspec.get("ref") or {}, ref):
                continue
            try:
                await self.ctx.client.patch(api.GITREPOSITORIES, sname,
                                            {"metadata": {"annotations": {api.ANN_REQUESTED_AT: stamp}}}, ns)
            except ApiStatusError as e:
                if not e.not_found:
                    raise
            self.ctx.triggers.wake(("GitRepository", ns, sname))
            out.append(f"GitRepository/{ns}/{sname}")
        return out


async def receiver_status(ctx: Context, recv: dict, base_url: str) -> None:
    """Ready with the webhook path (and full URL) in status."""
    md = recv["metadata"]
    path = f"/hook/{md['namespace']}/{md['name']}"
    conds = api.ready_conditions(list((recv.get("status") or {}).get("conditions") or []), "ready", "Succeeded",
                                 f"Receiver initialized for path: {path}", md.get("generation"))
    await ctx.write_status(api.RECEIVERS, recv, {"webhookPath": path, "url": base_url + path,
                                                 "observedGeneration": md.get("generation"), "conditions": conds})
