"""``controlplane ddqn status|versions|promote|activate|rollback|history|retrain``: the DDQN
scorer's models in the cluster (``schedulers.ddqn.versions``) and learning from the cluster's
own history (``schedulers.ddqn.retrain``). One-shot clients of the API; the scheduler's DDQN
plugin follows the active model by itself.

- ``status``: the active version and digest (``kube-system/ddqn-model``), and the versions.
- ``promote FILE``: check a model file, store it as the next version and activate it (a
  corrupt or incompatible file is refused with the loader's message, exit 1).
- ``activate VERSION`` / ``rollback``: point the scheduler at a stored version / back to the
  one the active version replaced (one command).
- ``history --out DIR``: the replayable episode (openb pod and node lists) from the records.
- ``retrain --out DIR [--openb default,cpu050,...] [--log DATA_DIR/logs/scheduling.log]``:
  train, evaluate against the active model and FGD, promote only if the candidate wins.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.cmd import bootstrap
from schedulers.ddqn import retrain as rt
from schedulers.ddqn import versions
from schedulers.gpu.traces import traces_dir

COMPONENT = bootstrap.Component("ddqn", metrics_port=False)


def _print(obj) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")


def openb_lists(names: str) -> list[Path]:
    out = []
    base = traces_dir()
    for n in [x for x in names.split(",") if x]:
        p = Path(n)
        if not p.exists() and base is not None:
            p = base / f"openb_pod_list_{n}.csv"
        if not p.exists():
            raise SystemExit(f"openb pod list {n!r} not found (set OPENB_TRACES or give a CSV path)")
        out.append(p)
    return out


async def _main(args: argparse.Namespace) -> int:
    client = RestClient.from_kubeconfig(args.kubeconfig, user_agent="controlplane-ddqn")
    try:
        if args.ddqn_cmd == "status":
            _print({"active": await versions.active(client),
                    "versions": [{k: v for k, v in (cm.get("data") or {}).items() if k != "evaluation"}
                                 for cm in await versions.list_versions(client)]})
        elif args.ddqn_cmd == "versions":
            _print([cm.get("data") for cm in await versions.list_versions(client)])
        elif args.ddqn_cmd == "promote":
            info = await versions.store(client, Path(args.file).read_bytes(), source="upload")
            _print(await versions.activate(client, info["version"], reason="ModelPromoted",
                                           message=f"{info['version']} ({info['digest']}) uploaded from {args.file}"))
        elif args.ddqn_cmd == "activate":
            _print(await versions.activate(client, args.version, reason="ModelActivated",
                                           message=f"{args.version} activated by hand"))
        elif args.ddqn_cmd == "rollback":
            _print(await versions.rollback(client))
        elif args.ddqn_cmd == "history":
            _print(await rt.export_history(client, Path(args.out), [Path(p) for p in args.log]))
        elif args.ddqn_cmd == "retrain":
            cfg = rt.RetrainConfig(out=Path(args.out), openb_lists=openb_lists(args.openb),
                                   logs=[Path(p) for p in args.log], episodes=args.episodes,
                                   max_steps=args.max_steps, seed=args.seed,
                                   seeds=tuple(int(s) for s in args.seeds.split(",")), recent=args.recent,
                                   margin=args.margin, min_pods=args.min_pods, dry_run=args.dry_run)
            _print(await rt.retrain(client, cfg))
    except (versions.ModelVersionError, OSError) as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    except ApiStatusError as e:
        sys.stderr.write(f"error: {e}\n")
        return 1
    finally:
        await client.close()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ddqn", help="the DDQN scorer's models: status, promote, rollback, retrain from history")
    p.add_argument("--kubeconfig", type=Path, default=Path(".data/kubeconfig"))
    s = p.add_subparsers(dest="ddqn_cmd", required=True)
    s.add_parser("status", help="the active model (version, digest) and the stored versions")
    s.add_parser("versions", help="the stored versions with their evaluations")
    pr = s.add_parser("promote", help="check, store and activate a model file")
    pr.add_argument("file")
    ac = s.add_parser("activate", help="activate a stored version")
    ac.add_argument("version")
    s.add_parser("rollback", help="back to the version the active one replaced")
    h = s.add_parser("history", help="export the cluster's history as openb pod/node lists")
    h.add_argument("--out", required=True)
    h.add_argument("--log", action="append", default=[], help="scheduling.log files to read as well")
    r = s.add_parser("retrain", help="train on the history + openb lists, evaluate, promote only if it wins")
    r.add_argument("--out", required=True, help="work directory (history, candidate, logs)")
    r.add_argument("--openb", default="default,cpu050,gpushare40,multigpu20,gpuspec10",
                   help="openb pod lists to train on as well (names or CSV paths; '' for none)")
    r.add_argument("--log", action="append", default=[], help="scheduling.log files to read as well")
    r.add_argument("--episodes", type=int, default=26)
    r.add_argument("--max-steps", type=int, default=None, help="cap training decisions (smoke runs)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--seeds", default="42,43,44", help="evaluation seeds")
    r.add_argument("--recent", type=int, default=2000, help="evaluate on the most recent N pods")
    r.add_argument("--margin", type=float, default=0.0, help="points the candidate must win by")
    r.add_argument("--min-pods", type=int, default=20)
    r.add_argument("--dry-run", action="store_true", help="evaluate only: store and promote nothing")

    def run(args: argparse.Namespace) -> int:
        bootstrap.setup_logging(COMPONENT, args)
        return asyncio.run(_main(args))
    p.set_defaults(func=run)
