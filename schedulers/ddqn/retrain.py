"""Learning from the cluster's own history (issue 17 item 4): the live cluster's decision
records and pods become a replayable episode, a candidate model is trained on it plus the
openb lists, evaluated in the simulator on the most recent history against the active model
and FGD, and promoted only if it wins. ``controlplane ddqn retrain`` runs :func:`retrain`.

1. **History** (:func:`export_history`): the SchedulingDecision records in the API (the last
   ``--decision-ttl``) and in ``scheduling.log`` files (older ones), the latest record per pod,
   in decision order, become an openb pod list CSV (requests from the record's
   ``pod.resources``; ``creation_time`` / ``scheduled_time`` / ``deletion_time`` in seconds
   from the first arrival, ``deletion_time`` from the pod's ``deletionTimestamp`` when the API
   still has it, else empty: the openb protocol replays arrivals only); the cluster's nodes
   (allocatable CPU, memory, ``nvidia.com/gpu`` and the GPU model label) an openb node list.
2. **Training**: the placement engineer's public entry point, ``python -m schedulers.ddqn
   train --pods <history> <openb lists> --nodes <cluster nodes> --out DIR`` (under ``nice``).
3. **Evaluation**: ``python -m schedulers.sim openb`` on the most recent ``recent`` pods of the
   history and the cluster's nodes, for the candidate, the active model and FGD, the same
   seeds; the figure is GPU allocated % at 130 % of capacity requested (the protocol tunes the
   list to 130 %).
4. **Decision**: promoted when the candidate beats both the active model and FGD by more than
   ``margin`` points (``versions.store`` + ``versions.activate``: Event ``ModelPromoted``);
   otherwise an Event ``ModelRefused``; both Events carry the figures.

The steps run as child processes so a crash or a bad model cannot take the caller down, and
training never shares a process with the API client. Neighbours: ``versions`` (the models in
the API), ``controlplane.cmd.ddqn`` (the CLI).
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controlplane.client import resources
from controlplane.client.resources import Resource
from controlplane.client.rest import RestClient
from controlplane.log import get_logger
from controlplane.machinery.quantity import bytes_, cpu_millis
from controlplane.machinery.timestamps import parse_time_or_none
from schedulers.ddqn import versions

log = get_logger(__name__)

DECISIONS = Resource("scheduling.controlplane.io", "v1", "schedulingdecisions", "SchedulingDecision")
POD_COLUMNS = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
               "creation_time", "deletion_time", "scheduled_time"]
NODE_COLUMNS = ["sn", "cpu_milli", "memory_mib", "gpu", "model"]
GPU_MODEL_LABEL = "nvidia.com/gpu.product"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class RetrainConfig:
    out: Path
    openb_lists: list[Path] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)   # scheduling.log files to read as well
    episodes: int = 26
    max_steps: int | None = None                     # cap on training decisions (smoke runs)
    seed: int = 0
    seeds: tuple[int, ...] = (42, 43, 44)            # evaluation seeds
    recent: int = 2000                               # evaluate on the most recent pods of the history
    margin: float = 0.0                              # points the candidate must win by
    min_pods: int = 20                               # less history than this: nothing to learn from
    dry_run: bool = False                            # evaluate, but neither store nor promote


# ---------------------------------------------------------------------------------- history
def _records_from_logs(paths: list[Path]) -> list[dict]:
    out = []
    for p in paths:
        for cand in (Path(str(p) + ".1"), p):  # the rotated file holds the older lines
            if not cand.exists():
                continue
            for line in cand.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and rec.get("kind") == "SchedulingDecision":
                    out.append(rec)
    return out


def history_rows(records: list[dict], pods_now: dict[str, dict]) -> list[dict[str, Any]]:
    """openb pod-list rows: the latest record per pod (uid, else namespace/name), in the order
    of their first decision; pods without a record of their requests are skipped."""
    by_pod: dict[str, tuple[float, dict]] = {}
    first: dict[str, float] = {}
    for rec in records:
        pod = rec.get("pod") or {}
        t = parse_time_or_none(rec.get("decisionTime"))
        if t is None or not isinstance(pod.get("resources"), dict):
            continue  # not replayable: no time or no requests
        key = pod.get("uid") or f"{pod.get('namespace')}/{pod.get('name')}"
        first[key] = min(first.get(key, t), t)
        if key not in by_pod or t >= by_pod[key][0]:
            by_pod[key] = (t, rec)
    if not by_pod:
        return []
    created_at = {k: parse_time_or_none(r["pod"].get("creationTimestamp")) or first[k] for k, (_, r) in by_pod.items()}
    t0 = min(min(first.values()), min(created_at.values()))
    rows = []
    for key in sorted(by_pod, key=lambda k: (first[k], k)):
        _, rec = by_pod[key]
        pod = rec["pod"]
        res = pod["resources"]
        created = created_at[key]
        live = pods_now.get(key)
        deleted = parse_time_or_none(((live or {}).get("metadata") or {}).get("deletionTimestamp"))
        rows.append({
            "name": f"{pod.get('namespace')}.{pod.get('name')}",
            "cpu_milli": int(res.get("cpuMilli", 0)), "memory_mib": int(res.get("memoryMiB", 0)),
            "num_gpu": int(res.get("gpuCount", 0)), "gpu_milli": int(res.get("gpuMilli", 0)),
            "gpu_spec": "|".join(res.get("gpuModels") or []), "qos": "LS",
            "pod_phase": "Running" if rec.get("result") == "Scheduled" else "Pending",
            "creation_time": max(0, int(created - t0)), "deletion_time": "" if not deleted else max(0, int(deleted - t0)),
            "scheduled_time": max(0, int(first[key] - t0)) if rec.get("result") == "Scheduled" else "",
        })
    return rows


def node_rows(nodes: list[dict]) -> list[dict[str, Any]]:
    out = []
    for n in nodes:
        st = n.get("status") or {}
        alloc = st.get("allocatable") or st.get("capacity") or {}
        labels = (n.get("metadata") or {}).get("labels") or {}
        if (n.get("spec") or {}).get("unschedulable"):
            continue
        out.append({"sn": n["metadata"]["name"], "cpu_milli": cpu_millis(alloc.get("cpu", "0")),
                    "memory_mib": bytes_(alloc.get("memory", "0")) // (1024 * 1024),
                    "gpu": int(alloc.get("nvidia.com/gpu", 0) or 0), "model": labels.get(GPU_MODEL_LABEL, "")})
    return out


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


async def export_history(client: RestClient, out: Path, logs: list[Path] | None = None) -> dict[str, Any]:
    """Write ``out/history_pods.csv`` (every pod) and ``out/cluster_nodes.csv``; return counts."""
    records = _records_from_logs(list(logs or []))
    api_records = (await client.list(DECISIONS)).get("items") or []
    seen = {(r.get("metadata") or {}).get("name") for r in records}
    records += [r for r in api_records if (r.get("metadata") or {}).get("name") not in seen]
    pods = (await client.list(resources.PODS)).get("items") or []
    pods_now = {}
    for p in pods:
        md = p.get("metadata") or {}
        pods_now[md.get("uid") or f"{md.get('namespace')}/{md.get('name')}"] = p
    rows = history_rows(records, pods_now)
    nodes = node_rows((await client.list(resources.NODES)).get("items") or [])
    write_csv(out / "history_pods.csv", POD_COLUMNS, rows)
    write_csv(out / "cluster_nodes.csv", NODE_COLUMNS, nodes)
    return {"records": len(records), "pods": len(rows), "nodes": len(nodes),
            "gpu_nodes": sum(1 for n in nodes if n["gpu"] > 0)}


# ---------------------------------------------------------------------------------- steps
async def _run(args: list[str], log_path: Path, nice: bool = True) -> str:
    """A child ``python -m ...`` (niced), its stdout; RuntimeError with the log's tail on failure."""
    cmd = (["nice", "-n", "19"] if nice else []) + [sys.executable, "-m", *args]
    with open(log_path, "ab") as err:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=REPO,
                                                    env={**os.environ, "PYTHONPATH": str(REPO)})
        out, _ = await proc.communicate()
    if proc.returncode != 0:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(args[:2])} failed (exit {proc.returncode}): {tail}")
    return out.decode()


async def train(cfg: RetrainConfig, pods: list[Path], nodes_csv: Path, n_nodes: int) -> Path:
    out = cfg.out / "candidate"
    args = ["schedulers.ddqn", "train", "--pods", *map(str, pods), "--nodes", str(nodes_csv), "--out", str(out),
            "--episodes", str(cfg.episodes), "--seed", str(cfg.seed), "--no-progress",
            "--nodes-min", str(max(1, min(160, n_nodes))), "--nodes-max", str(max(1, min(400, n_nodes)))]
    if cfg.max_steps:
        args += ["--max-steps", str(cfg.max_steps), "--eval-every", "1", "--learn-start", str(min(256, cfg.max_steps))]
    await _run(args, cfg.out / "train.log")
    found = sorted(out.glob("*.bin"))
    if not found:
        raise RuntimeError(f"training wrote no model file into {out}")
    return out / "ddqn_openb.bin" if (out / "ddqn_openb.bin").exists() else found[0]


async def evaluate(cfg: RetrainConfig, pods_csv: Path, nodes_csv: Path, policy: str,
                   model: Path | None = None) -> dict[str, Any]:
    args = ["schedulers.sim", "openb", "--pods", str(pods_csv), "--nodes", str(nodes_csv), "--policy", policy,
            "--seeds", ",".join(str(s) for s in cfg.seeds), "--json"]
    if model is not None:
        args += ["--option", f"model={model}"]
    out = await _run(args, cfg.out / "evaluate.log")
    res = json.loads(out.strip().splitlines()[-1])
    return {"alloc_at_100": res.get("alloc_at_100"), "alloc_at_130": res.get("alloc_at_130"),
            "per_seed_130": [s.get("alloc_at_130") for s in res.get("per_seed") or []]}


def decide(candidate: float | None, active: float | None, fgd: float | None, margin: float) -> bool:
    if candidate is None:
        return False
    return all(other is None or candidate > other + margin for other in (active, fgd))


async def retrain(client: RestClient, cfg: RetrainConfig) -> dict[str, Any]:
    """The whole loop; returns a JSON-ready summary (also in the Event's message)."""
    t0 = time.monotonic()
    cfg.out.mkdir(parents=True, exist_ok=True)
    hist = await export_history(client, cfg.out, cfg.logs)
    summary: dict[str, Any] = {"history": hist}
    if hist["pods"] < cfg.min_pods or hist["gpu_nodes"] == 0:
        msg = (f"retrain skipped: {hist['pods']} pods of history on {hist['gpu_nodes']} GPU nodes "
               f"(need {cfg.min_pods} pods and a GPU node)")
        summary.update(promoted=False, message=msg)
        if not cfg.dry_run:
            await versions.refuse(client, msg)
        return summary
    pods_csv, nodes_csv = cfg.out / "history_pods.csv", cfg.out / "cluster_nodes.csv"
    rows = list(csv.DictReader(open(pods_csv)))
    recent_csv = write_csv(cfg.out / "recent_pods.csv", POD_COLUMNS, rows[-cfg.recent:] if cfg.recent else rows)
    cur = await versions.active(client)
    active_path = cfg.out / f"active-{cur['version']}.bin"
    active_path.write_bytes(await versions.fetch(client, cur["version"]))
    t_train = time.monotonic()
    cand = await train(cfg, [pods_csv, *cfg.openb_lists], nodes_csv, hist["nodes"])
    summary["train_s"] = round(time.monotonic() - t_train, 1)
    versions.check_model(cand.read_bytes(), "candidate")
    results = {}
    for name, policy, model in (("candidate", "ddqn", cand), ("active", "ddqn", active_path), ("fgd", "FGD", None)):
        results[name] = await evaluate(cfg, recent_csv, nodes_csv, policy, model)
    c, a, f = (results[k]["alloc_at_130"] for k in ("candidate", "active", "fgd"))
    promoted = decide(c, a, f, cfg.margin)
    seeds = f"{min(cfg.seeds)}-{max(cfg.seeds)}" if len(cfg.seeds) > 1 else str(cfg.seeds[0])
    figures = (f"GPU allocated at 130% on the most recent {min(len(rows), cfg.recent or len(rows))} pods of history "
               f"({hist['nodes']} nodes, seeds {seeds}): candidate {c}%, active {cur['version']} {a}%, FGD {f}%")
    summary.update(evaluation=results, active=cur["version"], seconds=round(time.monotonic() - t0, 1))
    if cfg.dry_run:
        summary.update(promoted=False, message=f"dry run: {figures}")
        return summary
    if promoted:
        info = await versions.store(client, cand.read_bytes(), source="retrain",
                                    evaluation={"history": hist, **results, "seeds": list(cfg.seeds)})
        msg = f"promoted {info['version']} ({info['digest'][:19]}): {figures}"
        await versions.activate(client, info["version"], reason="ModelPromoted", message=msg)
        summary.update(promoted=True, version=info["version"], digest=info["digest"], message=msg)
    else:
        msg = f"candidate refused (it must beat the active model and FGD by more than {cfg.margin} points): {figures}"
        await versions.refuse(client, msg)
        summary.update(promoted=False, message=msg)
    log.info("ddqn retrain", **{k: v for k, v in summary.items() if k != "evaluation"})
    return summary
