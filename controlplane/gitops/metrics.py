"""Prometheus metrics of the gitops controller, named as Flux's toolkit names them
(``gotk_*``) so existing dashboards and alerts work, plus the controller's own counters.

- ``gotk_reconcile_duration_seconds{kind,name,namespace}``: histogram of reconcile durations.
- ``gotk_reconcile_condition{kind,name,namespace,type,status}``: 1 for the current status of
  the Ready condition (one series per status, the others 0), as Flux exported it.
- ``gotk_suspend_status{kind,name,namespace}``: 1 while suspended.
- ``gitops_api_writes_total{verb}``, ``gitops_api_dry_runs_total`` (``engine.py``).
- ``gitops_git_fetch_duration_seconds``: ls-remote + shallow fetch + packing, per fetch.
- ``gitops_webhook_requests_total{type,code}`` (``receiver.py``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_DURATION = Histogram(
    "gotk_reconcile_duration_seconds", "Duration of a reconcile, by object",
    ["kind", "name", "namespace"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
RECONCILE_CONDITION = Gauge("gotk_reconcile_condition", "The Ready condition of an object (1 for its current status)",
                            ["kind", "name", "namespace", "type", "status"])
SUSPEND = Gauge("gotk_suspend_status", "1 while the object is suspended", ["kind", "name", "namespace"])
GIT_FETCH = Histogram("gitops_git_fetch_duration_seconds", "Fetching and packing one Git revision",
                      buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
WEBHOOK_REQUESTS = Counter("gitops_webhook_requests_total", "Webhook requests by receiver type and answer code",
                           ["type", "code"])


def record_condition(kind: str, namespace: str, name: str, status: str) -> None:
    for s in ("True", "False", "Unknown"):
        RECONCILE_CONDITION.labels(kind, name, namespace, "Ready", s).set(1 if s == status else 0)


def forget(kind: str, namespace: str, name: str) -> None:
    for s in ("True", "False", "Unknown"):
        try:
            RECONCILE_CONDITION.remove(kind, name, namespace, "Ready", s)
        except KeyError:
            pass
    for g in (SUSPEND,):
        try:
            g.remove(kind, name, namespace)
        except KeyError:
            pass
