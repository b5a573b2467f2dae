"""A real HTTPS admission webhook server for the tests (``aiohttp``, its own CA, on a free
loopback port, in a thread with its own event loop). Routes answer AdmissionReview v1 the way
real webhooks do, one behaviour per path:

- ``/deny``: refuses objects whose name starts with ``bad`` (message and code 403), allows the rest;
- ``/mutate``: a JSONPatch adding the label ``mutated-by: webhook`` (plus a warning and an audit
  annotation);
- ``/slow``: answers after 3 s (for ``timeoutSeconds: 1``);
- ``/garbage``: answers 200 with a body that is not JSON;
- ``/badpatch``: a JSONPatch that makes ``data`` a string (an object of the wrong type);
- ``/allow``: allows.
Every request's AdmissionReview is kept in ``requests`` (path, review) for assertions.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from controlplane.etcd_process import free_port
from controlplane.pki import certs


class WebhookServer:
    def __init__(self, sans: tuple[str, ...] = ("127.0.0.1", "localhost")) -> None:
        self.ca = certs.new_ca("webhook-test-ca")
        self.leaf = certs.issue(self.ca, "webhook", sans=sans, server=True)
        self.port = free_port()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def ca_bundle(self) -> str:
        return base64.b64encode(self.ca.cert_pem).decode()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> "WebhookServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self

    async def _start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as d:
            c, k = Path(d) / "c", Path(d) / "k"
            c.write_bytes(self.leaf.cert_pem + self.ca.cert_pem)
            k.write_bytes(self.leaf.key_pem)
            ctx.load_cert_chain(c, k)
        app = web.Application()
        app.add_routes([web.post("/{what}", self._handle)])
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=ctx).start()

    def stop(self) -> None:
        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(_stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def seen(self, path: str) -> list[dict[str, Any]]:
        return [r for p, r in self.requests if p == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        what = request.match_info["what"]
        review = await request.json()
        self.requests.append((f"/{what}", review))
        req = review["request"]
        resp: dict[str, Any] = {"uid": req["uid"], "allowed": True}
        name = req.get("name") or ((req.get("object") or req.get("oldObject") or {}).get("metadata") or {}).get("name", "")
        if what == "garbage":
            return web.Response(text="this is not an admission review", content_type="text/plain")
        if what == "slow":
            await asyncio.sleep(3)
        elif what == "deny" and name.startswith("bad"):
            resp = {"uid": req["uid"], "allowed": False,
                    "status": {"code": 403, "reason": "Forbidden", "message": f"pods named {name} are not welcome here"}}
        elif what == "mutate" and req["operation"] in ("CREATE", "UPDATE"):
            labels = ((req["object"].get("metadata") or {}).get("labels"))
            patch = [{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "webhook"}}] if not labels else \
                [{"op": "add", "path": "/metadata/labels/mutated-by", "value": "webhook"}]
            resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode(),
                        warnings=["the mutating webhook added a label"],
                        auditAnnotations={"mutated": "label"})
        elif what == "badpatch" and req["operation"] == "CREATE":
            patch = [{"op": "add", "path": "/data", "value": "not a map"}]
            resp.update(patchType="JSONPatch", patch=base64.b64encode(json.dumps(patch).encode()).decode())
        return web.json_response({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
