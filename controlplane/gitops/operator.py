"""The gitops controller as a kopf operator (the project's extension path: CRDs in ``crds/``
plus a kopf operator), with the webhook receiver and the manifests-folder watcher beside it in
the same asyncio loop.

kopf gives the plumbing: list+watch of the four kinds, one daemon per GitRepository, Sync and
ManifestFile (started for existing objects at start-up, stopped on deletion) and finalizers
with ``on.delete`` handlers (prune on deletion). Each daemon loops on its module's level-based
``reconcile`` and then sleeps until the interval it returned or a wake-up (``context.Triggers``).
``on.event`` handlers (async: kopf runs plain functions in threads, and the wake-ups are
asyncio events; kopf never persists anything for them) turn watch events into
wake-ups: a new generation, a new ``requestedAt`` annotation, a dependency turning ready. No
kopf change-detection handlers are used, so kopf writes nothing to objects but its finalizer:
a no-op reconcile makes no API writes. kopf's own Kubernetes Events are off (the reconcilers
post their own). Neighbours: ``controlplane/cmd/gitops.py`` (CLI entry), ``source.py``,
``sync.py``, ``manifests_dir.py``, ``receiver.py``.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import kopf
import yaml

from controlplane.client.events import EventRecorder
from controlplane.client.rest import ApiStatusError, RestClient, kubeconfig_entries
from controlplane.gitops import api, manifests_dir, receiver, source, sync
from controlplane.gitops.manifests_dir import DEFAULT_INTERVAL as MANIFESTS_INTERVAL
from controlplane.gitops.context import Context, Key
from controlplane.log import get_logger

log = get_logger(__name__)

CRD_DIR = Path(__file__).resolve().parents[2] / "crds"
CRD_FILES = [f"{r.plural}.{api.GROUP}.yaml" for r in api.KINDS.values()]
FINALIZER = f"{api.GROUP}/finalizer"

Reconcile = Callable[[Context, str, str], Awaitable[float | None]]


@dataclass
class Config:
    client: RestClient
    data_dir: Path
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 9292
    webhook_port_fallback: bool = True
    manifests_dir: Path | None = None
    manifests_interval: float = MANIFESTS_INTERVAL
    install_crds: bool = True
    signal_stop: asyncio.Event | None = None  # set by SIGINT/SIGTERM (the process's stop)


async def install_crds(client: RestClient, timeout: float = 30.0) -> None:
    """Server-side apply the gitops CRDs and wait until they are established."""
    from controlplane.client.resources import Resource
    crds = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", namespaced=False)
    for f in CRD_FILES:
        doc = yaml.safe_load((CRD_DIR / f).read_text())
        await client.patch(crds, doc["metadata"]["name"], doc, patch_type="apply", field_manager=api.FIELD_MANAGER, force=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for f in CRD_FILES:
        name = f.removesuffix(".yaml")
        while True:
            crd = await client.get(crds, name)
            if any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in (crd.get("status") or {}).get("conditions") or []):
                break
            if loop.time() > deadline:
                raise RuntimeError(f"CRD {name} not established within {timeout:g}s")
            await asyncio.sleep(0.1)


async def run_loop(ctx: Context, key: Key, fn: Reconcile, stopped: Any) -> None:
    """A daemon's life: reconcile, sleep until the returned delay or a wake-up, again."""
    kind, ns, name = key
    failures = 0
    while not stopped:
        ctx.triggers.event(key).clear()
        try:
            delay = await fn(ctx, ns, name)
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - one object's trouble never stops the others
            failures += 1
            delay = min(60.0, 0.5 * 2 ** min(failures, 7))
            log.error("reconcile failed", kind=kind, namespace=ns, name=name, error=repr(e), retry_in=delay,
                      exc_info=not isinstance(e, ApiStatusError))
            ref = {"apiVersion": api.API_VERSION, "kind": kind, "metadata": {"name": name, **({"namespace": ns} if ns else {})}}
            ctx.event(ref, "Warning", "ReconcileError", f"reconcile failed, retrying in {delay:g}s: {e}")
        if stopped:
            break
        await ctx.triggers.wait(key, delay if delay is not None else 86400.0, stopped)


def _marker(body: Any) -> tuple[Any, Any]:
    md = body.get("metadata") or {}
    return md.get("generation"), (md.get("annotations") or {}).get(api.ANN_REQUESTED_AT)


def _wake_on_change(ctx: Context, key: Key, body: Any, event_type: str | None) -> None:
    if event_type == "DELETED":
        ctx.forget(key)
        return
    marker = _marker(body)
    prev = ctx.seen.get(key)
    if prev is not None and prev[:2] != marker:
        ctx.triggers.wake(key)
    ctx.seen[key] = marker + tuple(prev[2:] if prev else ())


def build_registry(cfg: Config, ctx: Context, webhook: receiver.WebhookServer) -> kopf.OperatorRegistry:
    reg = kopf.OperatorRegistry()
    G, V = api.GROUP, api.VERSION
    headers = cfg.client._headers

    @kopf.on.startup(registry=reg)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False
        settings.persistence.finalizer = FINALIZER
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=G)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=G)
        settings.networking.error_backoffs = [0.5, 1, 2, 5]
        settings.scanning.disabled = True
        settings.watching.server_timeout = 300
        settings.process.ultimate_exiting_timeout = 30

    @kopf.on.login(registry=reg)
    def login(**_: Any) -> kopf.ConnectionInfo:
        auth = headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        tls: dict[str, Any] = {}
        if cfg.client.kubeconfig is not None:  # the CA and the client certificate of the kubeconfig
            cluster, user = kubeconfig_entries(*cfg.client.kubeconfig)
            b64 = lambda k, d: base64.b64decode(d[k]) if d.get(k) else None  # noqa: E731
            tls = {"ca_data": b64("certificate-authority-data", cluster), "ca_path": cluster.get("certificate-authority"),
                   "certificate_data": b64("client-certificate-data", user),
                   "certificate_path": user.get("client-certificate"),
                   "private_key_data": b64("client-key-data", user), "private_key_path": user.get("client-key")}
        return kopf.ConnectionInfo(server=cfg.client.base_url, scheme=scheme or None, token=token or None,
                                   insecure=cfg.client._ssl is False or None, default_namespace="default", **tls)

    # -- GitRepository ---------------------------------------------------------------------
    @kopf.on.event(G, V, "gitrepositories", registry=reg)
    async def gitrepo_event(type: str | None, body: Any, name: str, namespace: str, **_: Any) -> None:
        _wake_on_change(ctx, ("GitRepository", namespace, name), body, type)

    @kopf.daemon(G, V, "gitrepositories", registry=reg, cancellation_timeout=10)
    async def gitrepo_daemon(name: str, namespace: str, stopped: Any, **_: Any) -> None:
        await run_loop(ctx, ("GitRepository", namespace, name), source.reconcile, stopped)

    @kopf.on.delete(G, V, "gitrepositories", registry=reg)
    async def gitrepo_deleted(name: str, namespace: str, **_: Any) -> None:
        await asyncio.to_thread(shutil.rmtree, ctx.artifacts_dir / "gitrepository" / namespace / name, True)
        ctx.forget(("GitRepository", namespace, name))

    # -- Sync ------------------------------------------------------------------------------
    @kopf.on.event(G, V, "syncs", registry=reg)
    async def sync_event(type: str | None, body: Any, name: str, namespace: str, **_: Any) -> None:
        key = ("Sync", namespace, name)
        _wake_on_change(ctx, key, body, type)
        if type == "DELETED":
            ctx.wake_dependents(namespace, name)
            return
        obj = {"metadata": dict(body.get("metadata") or {}), "spec": dict(body.get("spec") or {}),
               "status": dict(body.get("status") or {})}
        ctx.index_sync(obj)
        ready = (api.is_ready(obj), obj["status"].get("lastAppliedRevision"))
        prev = ctx.seen.get(key)
        if prev is not None and len(prev) > 2 and prev[2] != ready and ready[0]:
            ctx.wake_dependents(namespace, name)
        ctx.seen[key] = _marker(body) + (ready,)

    @kopf.daemon(G, V, "syncs", registry=reg, cancellation_timeout=10)
    async def sync_daemon(name: str, namespace: str, stopped: Any, **_: Any) -> None:
        await run_loop(ctx, ("Sync", namespace, name), sync.reconcile, stopped)

    @kopf.on.delete(G, V, "syncs", registry=reg)
    async def sync_deleted(body: Any, **_: Any) -> None:
        await sync.finalize(ctx, {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {}),
                                  "status": dict(body.get("status") or {})})

    # -- ManifestFile ----------------------------------------------------------------------
    async def manifest_reconcile(c: Context, ns: str, name: str) -> float | None:
        return await manifests_dir.reconcile(c, ns, name, cfg.manifests_interval)

    @kopf.on.event(G, V, "manifestfiles", registry=reg)
    async def manifest_event(type: str | None, body: Any, name: str, **_: Any) -> None:
        _wake_on_change(ctx, ("ManifestFile", "", name), body, type)

    @kopf.daemon(G, V, "manifestfiles", registry=reg, cancellation_timeout=10)
    async def manifest_daemon(name: str, stopped: Any, **_: Any) -> None:
        await run_loop(ctx, ("ManifestFile", "", name), manifest_reconcile, stopped)

    @kopf.on.delete(G, V, "manifestfiles", registry=reg)
    async def manifest_deleted(body: Any, **_: Any) -> None:
        await manifests_dir.finalize(ctx, {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {}),
                                           "status": dict(body.get("status") or {})})

    # -- Receiver --------------------------------------------------------------------------
    @kopf.on.event(G, V, "receivers", registry=reg)
    async def receiver_event(type: str | None, body: Any, **_: Any) -> None:
        if type == "DELETED":
            return
        obj = {"metadata": dict(body["metadata"]), "spec": dict(body.get("spec") or {}),
               "status": dict(body.get("status") or {})}
        await receiver.receiver_status(ctx, obj, webhook.base_url)

    return reg


async def run(cfg: Config, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set; everything started here is stopped before returning."""
    if cfg.install_crds:
        await install_crds(cfg.client)
    recorder = EventRecorder(cfg.client, api.COMPONENT)
    ctx = Context(cfg.client, recorder, cfg.data_dir, cfg.manifests_dir)
    webhook = receiver.WebhookServer(ctx, cfg.webhook_host, cfg.webhook_port)
    try:
        await webhook.start()
    except OSError as e:
        if not cfg.webhook_port_fallback or cfg.webhook_port == 0:
            raise
        log.warning("webhook port busy; using a free port", port=cfg.webhook_port, error=str(e))
        webhook.port = 0
        await webhook.start()
    addr_file = cfg.data_dir / "gitops" / "webhook-address"
    addr_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = addr_file.with_name(".webhook-address.tmp")  # atomically: `up` polls the file
    tmp.write_text(webhook.base_url + "\n")
    tmp.replace(addr_file)
    kopf_stop = asyncio.Event()
    kopf_ready = asyncio.Event()
    registry = build_registry(cfg, ctx, webhook)
    tasks = [asyncio.create_task(recorder.start(stop), name="gitops-events"),
             asyncio.create_task(kopf.operator(registry=registry, standalone=True, clusterwide=True,
                                               stop_flag=kopf_stop, ready_flag=kopf_ready, memo=kopf.Memo()),
                                 name="gitops-kopf")]
    if cfg.manifests_dir is not None:
        watcher = manifests_dir.ManifestsWatcher(ctx, cfg.manifests_dir)
        tasks.append(asyncio.create_task(watcher.run(stop), name="gitops-manifests"))
    try:
        ready_wait = asyncio.create_task(kopf_ready.wait())
        done, _ = await asyncio.wait([ready_wait, tasks[1]], return_when=asyncio.FIRST_COMPLETED)
        if tasks[1] in done:
            ready_wait.cancel()
            tasks[1].result()
            raise RuntimeError("kopf stopped during start-up")
        if cfg.signal_stop is not None:
            install_signal_handlers(cfg.signal_stop)  # kopf put its own in; ours stop everything in order
        log.info("gitops controller started", webhook=webhook.base_url,
                 manifests=str(cfg.manifests_dir) if cfg.manifests_dir else None)
        stop_wait = asyncio.create_task(stop.wait())
        await asyncio.wait([stop_wait, tasks[1]], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
    finally:
        stop.set()
        kopf_stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(tasks[1]), 20)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - shutting down
            tasks[1].cancel()
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await webhook.stop()
        await ctx.close()
        addr_file.unlink(missing_ok=True)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
