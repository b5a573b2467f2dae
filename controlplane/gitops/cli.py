"""``controlplane gitops reconcile|suspend|resume|diff|tree``: the gitops CLI (Flux's
``flux reconcile``, ``suspend``, ``resume``, ``diff kustomization``, ``tree kustomization``).

- ``reconcile (source|sync) NAME [--with-source]``: sets ``gitops.controlplane.io/requestedAt``
  and waits until the controller has handled that request (``status.lastHandledReconcileAt``),
  then prints the Ready condition (exit 1 when not ready).
- ``suspend``/``resume (source|sync) NAME``: ``spec.suspend``; resume also requests a reconcile.
- ``diff sync NAME [--path DIR]``: what the next sync would change, computed by the same engine
  with server-side dry runs and nothing written: objects to create or configure (with a YAML
  diff of live vs. the dry run's result) and objects prune would delete or keep (the dry-run
  preview of prune). Without ``--path`` the source's current artifact is read from the
  controller's data dir (``--data-dir``); with it, a local checkout. Exit 1 when there is a
  difference, like ``kubectl diff``.
- ``tree (sync|manifest) NAME``: the inventory, nested Syncs expanded.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.gitops import api, artifact, inventory, render
from controlplane.gitops.engine import Engine
from controlplane.gitops.mapper import RestMapper

KINDS = {"source": api.GITREPOSITORIES, "gitrepository": api.GITREPOSITORIES, "sync": api.SYNCS,
         "manifest": api.MANIFESTFILES, "manifestfile": api.MANIFESTFILES}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gitops", help="reconcile, suspend, resume, diff and inspect GitOps syncs")
    p.add_argument("--kubeconfig", type=Path, default=Path(".data/kubeconfig"))
    p.add_argument("-n", "--namespace", default="default")
    gs = p.add_subparsers(dest="gitops_cmd", required=True)
    r = gs.add_parser("reconcile", help="reconcile now and wait for the result")
    r.add_argument("kind", choices=["source", "sync"])
    r.add_argument("name")
    r.add_argument("--with-source", action="store_true", help="(sync) reconcile its source first")
    r.add_argument("--timeout", type=float, default=120.0)
    for verb in ("suspend", "resume"):
        s = gs.add_parser(verb, help=f"{verb} reconciliation")
        s.add_argument("kind", choices=["source", "sync"])
        s.add_argument("name")
    d = gs.add_parser("diff", help="what the next sync would change (server-side dry run)")
    d.add_argument("kind", choices=["sync"])
    d.add_argument("name")
    d.add_argument("--path", type=Path, help="a local directory to diff instead of the source's artifact")
    d.add_argument("--data-dir", type=Path, default=Path(".data"), help="the controller's data dir (artifacts)")
    t = gs.add_parser("tree", help="the objects a sync or manifest file applied")
    t.add_argument("kind", choices=["sync", "manifest"])
    t.add_argument("name")
    p.set_defaults(func=lambda a: asyncio.run(main(a)))


async def main(args: argparse.Namespace) -> int:
    client = RestClient.from_kubeconfig(args.kubeconfig)
    try:
        cmd = args.gitops_cmd
        if cmd == "reconcile":
            return await reconcile(client, args)
        if cmd in ("suspend", "resume"):
            return await suspend(client, args, cmd == "suspend")
        if cmd == "diff":
            return await diff(client, args)
        return await tree(client, args)
    except ApiStatusError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def _ns(res, args) -> str | None:
    return args.namespace if res.namespaced else None


async def _request(client: RestClient, res, name: str, ns: str | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await client.patch(res, name, {"metadata": {"annotations": {api.ANN_REQUESTED_AT: stamp}}}, ns)
    return stamp


async def _await_handled(client: RestClient, res, name: str, ns: str | None, stamp: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        obj = await client.get(res, name, ns)
        st = obj.get("status") or {}
        ready = api.get_condition(obj, api.READY) or {}
        if st.get("lastHandledReconcileAt") == stamp and ready.get("status") in ("True", "False"):
            return obj
        if time.monotonic() > deadline:
            raise TimeoutError(f"{res.kind} {name}: reconcile not handled within {timeout:g}s "
                               f"(Ready={ready.get('status')}: {ready.get('message', '')})")
        await asyncio.sleep(0.2)


def _report(obj: dict) -> int:
    ready = api.get_condition(obj, api.READY) or {}
    mark = "✔" if ready.get("status") == "True" else "✗"
    print(f"{mark} {obj['kind']}/{obj['metadata']['name']}: {ready.get('reason', '')}: {ready.get('message', '')}")
    return 0 if ready.get("status") == "True" else 1


async def reconcile(client: RestClient, args: argparse.Namespace) -> int:
    res = KINDS[args.kind]
    ns = _ns(res, args)
    try:
        if args.kind == "sync" and args.with_source:
            obj = await client.get(res, args.name, ns)
            src = (obj.get("spec") or {}).get("sourceRef") or {}
            src_ns = src.get("namespace") or ns
            stamp = await _request(client, api.GITREPOSITORIES, src["name"], src_ns)
            if _report(await _await_handled(client, api.GITREPOSITORIES, src["name"], src_ns, stamp, args.timeout)):
                return 1
        stamp = await _request(client, res, args.name, ns)
        return _report(await _await_handled(client, res, args.name, ns, stamp, args.timeout))
    except TimeoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


async def suspend(client: RestClient, args: argparse.Namespace, value: bool) -> int:
    res = KINDS[args.kind]
    ns = _ns(res, args)
    body: dict[str, Any] = {"spec": {"suspend": value}}
    if not value:
        body["metadata"] = {"annotations": {api.ANN_REQUESTED_AT: datetime.now(timezone.utc).isoformat()}}
    await client.patch(res, args.name, body, ns)
    print(f"{'suspended' if value else 'resumed'} {res.kind}/{args.name}")
    return 0


class _VarsCtx:
    """The piece of ``Context`` that ``sync.variables`` reads."""

    def __init__(self, client: RestClient) -> None:
        self.client = client


async def diff(client: RestClient, args: argparse.Namespace) -> int:
    from controlplane.gitops import sync as sync_mod

    obj = await client.get(api.SYNCS, args.name, args.namespace)
    spec = obj.get("spec") or {}
    with tempfile.TemporaryDirectory(prefix="gitops-diff-") as tmp:
        if args.path:
            objs = await render.build(args.path.resolve(), "./")
        else:
            src = spec.get("sourceRef") or {}
            source = await client.get(api.GITREPOSITORIES, src["name"], src.get("namespace") or args.namespace)
            art = (source.get("status") or {}).get("artifact") or {}
            if not art.get("path"):
                print("error: the source has no artifact yet", file=sys.stderr)
                return 2
            file = (args.data_dir / "gitops" / "artifacts" / art["path"]).resolve()
            if not file.exists():
                print(f"error: artifact {file} not found (run on the controller's machine or pass --data-dir / --path)",
                      file=sys.stderr)
                return 2
            root = await asyncio.to_thread(artifact.unpack, file, art["digest"], Path(tmp))
            objs = await render.build(root, spec.get("path") or "./")
        variables = await sync_mod.variables(_VarsCtx(client), obj)  # type: ignore[arg-type]
        if variables is not None:
            objs = render.substitute(objs, variables)
    engine = Engine(client, RestMapper(client))
    opts = sync_mod.options(obj)
    result = await engine.apply(objs, opts, plan=True)
    pruned = await engine.prune(inventory.refs_of(obj.get("status")), result.refs, opts, plan=True) if spec.get("prune") else []
    differs = False
    for c in result.changes:
        if c.action == "unchanged":
            continue
        differs = True
        print(f"► {c.ref} {'created' if c.action == 'created' else 'drifted' if c.action == 'configured' else c.action}")
        if c.detail:
            print(c.detail)
    for c in pruned:
        if c.action == "deleted" and c.detail in ("already gone", "its type is gone"):
            continue
        differs = differs or c.action == "deleted"
        print(f"► {c.ref} {'deleted (pruned)' if c.action == 'deleted' else 'kept: ' + c.detail}")
    if not differs:
        print(f"✔ Sync/{args.namespace}/{args.name}: no changes")
    return 1 if differs else 0


async def tree(client: RestClient, args: argparse.Namespace) -> int:
    res = KINDS[args.kind]
    root = await client.get(res, args.name, _ns(res, args))
    ns = f"{args.namespace}/" if res.namespaced else ""
    print(f"{res.kind}/{ns}{args.name}")
    await _tree(client, root, "", set())
    return 0


async def _tree(client: RestClient, obj: dict, prefix: str, seen: set[str]) -> None:
    refs = sorted(inventory.refs_of(obj.get("status")), key=lambda r: (r.group != "", r.kind, r.namespace, r.name))
    for i, ref in enumerate(refs):
        last = i == len(refs) - 1
        print(f"{prefix}{'└── ' if last else '├── '}{ref}")
        if ref.kind == "Sync" and ref.group == api.GROUP and ref.id not in seen:
            seen.add(ref.id)
            try:
                child = await client.get(api.SYNCS, ref.name, ref.namespace)
            except ApiStatusError:
                continue
            await _tree(client, child, prefix + ("    " if last else "│   "), seen)
