"""The optional retrain controller: ``controlplane ddqn-retrainer`` runs ``retrain.retrain``
every ``interval`` once enough new decisions were recorded, so the DDQN scorer keeps learning
from the cluster's own history without anyone running the command.

Level-based like a controller: each pass looks at the records the API holds now
(``SchedulingDecision`` objects, the last ``--decision-ttl``) and retrains only when at least
``min_new`` of them are newer than the last pass; a failed pass is logged, counted and retried
at the next interval (never crashes the loop). Metrics: ``ddqn_retrain_runs_total{result}``
(promoted, refused, skipped, error), ``ddqn_retrain_last_run_timestamp_seconds``,
``ddqn_retrain_allocation_percent{model}`` (candidate, active, fgd: the last evaluation at
130 %). The Events on ``kube-system/ddqn-model`` and the scheduler's
``scheduler_ddqn_model_info`` say the rest. Neighbours: ``retrain``, ``versions``,
``controlplane.cmd.ddqn_retrainer`` (the process, leader-elected on a Lease).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Awaitable, Callable

from prometheus_client import Counter, Gauge

from controlplane.client.rest import RestClient
from controlplane.log import get_logger
from controlplane.machinery.timestamps import parse_time_or_none
from schedulers.ddqn import retrain as rt

log = get_logger(__name__)

RUNS = Counter("ddqn_retrain_runs_total", "Retrain passes, by result.", ["result"])
LAST_RUN = Gauge("ddqn_retrain_last_run_timestamp_seconds", "When the last retrain pass ended (unix time).")
ALLOC = Gauge("ddqn_retrain_allocation_percent",
              "GPU allocated % at 130 % in the last evaluation, by model (candidate, active, fgd).", ["model"])


async def new_records(client: RestClient, since: float) -> int:
    items = (await client.list(rt.DECISIONS)).get("items") or []
    return sum(1 for r in items if (parse_time_or_none(r.get("decisionTime")) or 0.0) > since)


async def one_pass(client: RestClient, cfg: rt.RetrainConfig, since: float, min_new: int,
                   retrain: Callable[[RestClient, rt.RetrainConfig], Awaitable[dict[str, Any]]] = rt.retrain,
                   clock: Callable[[], float] = time.time) -> tuple[str, float]:
    """One level-based pass: (result, the time the next pass counts new records from)."""
    now = clock()
    try:
        n = await new_records(client, since)
    except Exception as e:  # the API unreachable for a moment: try again at the next interval
        RUNS.labels("error").inc()
        log.warning("ddqn retrain: cannot count the records", error=str(e))
        return "error", since
    if n < min_new:
        RUNS.labels("skipped").inc()
        log.info("ddqn retrain skipped", new_records=n, min_new=min_new)
        return "skipped", since
    out = cfg.out / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    try:
        summary = await retrain(client, replace(cfg, out=out))
    except Exception as e:  # one bad pass must not end the controller
        RUNS.labels("error").inc()
        log.error("ddqn retrain failed", error=str(e))
        return "error", since
    for model, res in (summary.get("evaluation") or {}).items():
        if res.get("alloc_at_130") is not None:
            ALLOC.labels(model).set(res["alloc_at_130"])
    result = "promoted" if summary.get("promoted") else "refused"
    RUNS.labels(result).inc()
    LAST_RUN.set(clock())
    return result, now


async def run(client: RestClient, cfg: rt.RetrainConfig, stop: asyncio.Event, *, interval: float,
              min_new: int) -> None:
    """Pass after pass until ``stop``: the first one an ``interval`` after start."""
    since = 0.0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
            return
        except asyncio.TimeoutError:
            pass
        _, since = await one_pass(client, cfg, since, min_new)


def config(out: Path, **kw: Any) -> rt.RetrainConfig:
    return rt.RetrainConfig(out=out, **kw)
