"""The HorizontalPodAutoscaler's replica calculator (Kubernetes'
``pkg/controller/podautoscaler/replica_calculator.go``), pure: given the pods a target's
selector picks, their metrics and the target, how many replicas.

- Resource / ContainerResource with a utilization target (``resource_replicas``): usage ratio
  = utilization / target where utilization = 100 * sum(usage) / sum(requests) of the pods
  with metrics (an integer percentage, as Kubernetes truncates it); within the tolerance (0.1)
  nothing changes, else ``ceil(ratio * ready pods)``.
- Pods that are being deleted or Failed are ignored; Pending pods, and for CPU pods not yet
  ready (or ready for less than one metric window inside the 5 min CPU initialization period,
  or never ready within 30 s of start), are "unready"; pods without metrics are "missing". On
  a scale-up unready pods count as using 0; missing pods count as 0 on a scale-up and as 100 %
  of their request (or the target if higher) on a scale-down; a recomputed ratio that crosses
  1.0 or lands in the tolerance keeps the current count.
- AverageValue targets (``raw_resource_replicas``, ``plain_metric_replicas`` for Pods
  metrics): the same with the average usage against the target value.
- Object / External metrics (``usage_ratio_replicas``, ``per_pod_replicas``).

Every quantity is in milli-units (``MilliValue()``), as in Kubernetes. Errors are
``CalcError`` with Kubernetes' messages. Caller: ``horizontalpodautoscaler.py``.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import NamedTuple

from controlplane.machinery.quantity import parse_quantity
from controlplane.machinery.timestamps import parse_time

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
DELAY_OF_INITIAL_READINESS_STATUS = 30.0


class CalcError(Exception):
    pass


class PodMetric(NamedTuple):
    """One pod's metric (a tuple: built for every pod of every sync, several times cheaper
    than a frozen dataclass)."""

    value: int  # milli-units
    timestamp: float = 0.0
    window: float = 0.0


_SIMPLE = re.compile(r"^(\d+)(n|u|m|k|M|G|T|Ki|Mi|Gi|Ti|)$")
_SCALE = {"n": (1, 10**6), "u": (1, 10**3), "m": (1, 1), "": (1000, 1), "k": (10**6, 1), "M": (10**9, 1),
          "G": (10**12, 1), "T": (10**15, 1), "Ki": (1024 * 1000, 1), "Mi": (1024**2 * 1000, 1),
          "Gi": (1024**3 * 1000, 1), "Ti": (1024**4 * 1000, 1)}


def milli(q: str | int | float) -> int:
    """``Quantity.MilliValue()``: rounded up. The integer forms the Metrics API writes
    (``48302113n``, ``12345Ki``) are computed without Fraction arithmetic."""
    if isinstance(q, str):
        if q[-1:] == "n" and q[:-1].isdigit() and q.isascii():  # nanocores, the Metrics API's CPU form
            return -(-int(q[:-1]) // 10**6)
        m = _SIMPLE.match(q)
        if m is not None:
            mul, div = _SCALE[m.group(2)]
            return -(-int(m.group(1)) * mul // div)
    return math.ceil(parse_quantity(q) * 1000)


def _condition(pod: dict, ctype: str) -> dict | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


@lru_cache(maxsize=65536)
def _parse(v: str) -> float | None:
    try:
        return parse_time(v)
    except ValueError:
        return None


def _time(v: str | None) -> float | None:
    """RFC 3339 to seconds (cached: pods' times and metrics' timestamps repeat every sync)."""
    return _parse(v) if v else None


_IGNORED, _PENDING, _OTHER = 0, 1, 2


def pod_facts(pods: list[dict]) -> list[tuple[str, int, float | None, dict | None, float]]:
    """What ``group_pods`` reads of each pod: (name, state: ignored (being deleted or Failed) /
    Pending / other, start time, the Ready condition, its transition time). A caller that
    keeps the same pods list across syncs computes this once."""
    out = []
    for pod in pods:
        md, st = pod.get("metadata") or {}, pod.get("status") or {}
        phase = st.get("phase")
        state = _IGNORED if md.get("deletionTimestamp") or phase == "Failed" else _PENDING if phase == "Pending" else _OTHER
        cond = _condition(pod, "Ready")
        transition = (_time(cond.get("lastTransitionTime")) or 0.0) if cond is not None else 0.0
        out.append((md.get("name", ""), state, _time(st.get("startTime")), cond, transition))
    return out


def group_pods(pods: list[dict], metrics: dict[str, PodMetric], resource: str, now: float,
               cpu_init: float = CPU_INITIALIZATION_PERIOD,
               delay_ready: float = DELAY_OF_INITIAL_READINESS_STATUS,
               facts: list[tuple[str, int, float | None, dict | None, float]] | None = None,
               ) -> tuple[int, set[str], set[str], set[str]]:
    """(ready count, unready, missing, ignored) names, as ``groupPods``. ``facts``:
    ``pod_facts(pods)`` kept by the caller."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for name, state, start, cond, transition in (pod_facts(pods) if facts is None else facts):
        if state == _IGNORED:
            ignored.add(name)
            continue
        if state == _PENDING:
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            if cond is None or start is None:
                is_unready = True
            elif start + cpu_init > now:
                is_unready = cond.get("status") == "False" or metric.timestamp < transition + metric.window
            else:
                is_unready = cond.get("status") == "False" and start + delay_ready > transition
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def ready_sums(metrics: dict[str, PodMetric], requests: dict[str, int], resource: str, now: float,
               facts: list[tuple[str, int, float | None, dict | None, float]],
               cpu_init: float = CPU_INITIALIZATION_PERIOD,
               delay_ready: float = DELAY_OF_INITIAL_READINESS_STATUS,
               ) -> tuple[int, set[str], set[str], int, int, int]:
    """``group_pods`` and ``resource_utilization_ratio``'s sums in one pass over the kept
    ``facts``, without copying ``metrics``: (ready count, unready, missing, usage total,
    request total, pods summed). The sums are those of the ready pods with a metric and a
    request, which is what ``resource_utilization_ratio`` sums after ``resource_replicas``
    dropped the ignored and unready pods' metrics, provided ``requests`` is
    ``pod_requests`` of the pods of ``facts`` (a metric of a pod outside them has no
    request, so it is not summed either way)."""
    ready = mtotal = rtotal = n = 0
    unready: set[str] = set()
    missing: set[str] = set()
    cpu = resource == "cpu"
    get = metrics.get
    for name, state, start, cond, transition in facts:
        if state != _OTHER:
            if state == _PENDING:
                unready.add(name)
            continue
        metric = get(name)
        if metric is None:
            missing.add(name)
            continue
        if cpu:
            if cond is None or start is None:
                unready.add(name)
                continue
            if start + cpu_init > now:
                if cond.get("status") == "False" or metric.timestamp < transition + metric.window:
                    unready.add(name)
                    continue
            elif cond.get("status") == "False" and start + delay_ready > transition:
                unready.add(name)
                continue
        ready += 1
        r = requests.get(name)
        if r is not None:
            mtotal += metric.value
            rtotal += r
            n += 1
    return ready, unready, missing, mtotal, rtotal, n


class Steady(NamedTuple):
    """What ``ready_sums`` would decide about a pods list before seeing any metric, when it
    can: every pod counted ready once it has a metric (``steady``: none being deleted,
    Failed or Pending), and for CPU from ``cpu_after`` on (the latest start plus the CPU
    initialization period; None: some pod may count as unready at any time)."""

    names: frozenset[str]
    steady: bool
    cpu_after: float | None


def steady_summary(facts: list[tuple[str, int, float | None, dict | None, float]],
                   cpu_init: float = CPU_INITIALIZATION_PERIOD,
                   delay_ready: float = DELAY_OF_INITIAL_READINESS_STATUS) -> Steady:
    """``Steady`` of ``pod_facts(pods)`` (a caller keeping the pods list computes it once)."""
    names = frozenset(f[0] for f in facts)
    if len(names) != len(facts) or any(f[1] != _OTHER for f in facts):
        return Steady(names, False, None)
    cpu_after: float | None = 0.0
    for _, _, start, cond, transition in facts:
        # past the initialization period a pod is unready only when its Ready condition is
        # False and was so from its start (ready_sums' second branch): known without metrics
        if cond is None or start is None or (cond.get("status") == "False" and start + delay_ready > transition):
            cpu_after = None
            break
        cpu_after = max(cpu_after, start + cpu_init)
    return Steady(names, True, cpu_after)


def steady_resource_replicas(current: int, target_utilization: int, resource: str, summary: Steady,
                             names: set[str] | frozenset[str], usage_total: int, requests_total: int, now: float,
                             tolerance: float = TOLERANCE) -> tuple[int, int, int] | None:
    """``resource_replicas`` (the kept-facts path) from sums alone, when the pods are
    ``summary``'s and every one of them has exactly one metric (``names``, their summed
    milli-usage ``usage_total``): then every pod is ready, none is missing, and the sums are
    ``ready_sums``' (``requests_total``: their requests summed). None when that cannot be
    known from the sums (the caller takes the per-pod path)."""
    if not summary.steady or requests_total <= 0 or not names or names != summary.names:
        return None
    if resource == "cpu" and (summary.cpu_after is None or summary.cpu_after > now):
        return None
    n = len(names)
    utilization = (usage_total * 100) // requests_total
    ratio = utilization / target_utilization
    if within(ratio, tolerance):
        return current, utilization, usage_total // n
    return math.ceil(ratio * n), utilization, usage_total // n


def pod_requests(pods: list[dict], resource: str, container: str = "") -> dict[str, int]:
    """Milli-unit requests per pod (``calculatePodRequests``): regular containers and
    restartable (sidecar) init containers; a container without the request is an error."""
    out: dict[str, int] = {}
    for pod in pods:
        spec = pod.get("spec") or {}
        name = (pod.get("metadata") or {}).get("name", "")
        cs = list(spec.get("containers") or []) + [c for c in spec.get("initContainers") or []
                                                    if c.get("restartPolicy") == "Always"]
        total = 0
        for c in cs:
            if container and c.get("name") != container:
                continue
            req = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if req is None:
                raise CalcError(f"missing request for {resource} in container {c.get('name')} of Pod {name}")
            total += milli(req)
        out[name] = total
    return out


def resource_utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int],
                               target: int) -> tuple[float, int, int]:
    """(ratio, utilization %, raw average milli-value), as ``GetResourceUtilizationRatio``."""
    mtotal = rtotal = n = 0
    for name, m in metrics.items():
        r = requests.get(name)
        if r is None:
            continue
        mtotal += m.value
        rtotal += r
        n += 1
    if rtotal == 0:
        raise CalcError("no metrics returned matched known pods")
    utilization = (mtotal * 100) // rtotal  # Go's int64 division (both non-negative)
    return utilization / target, utilization, mtotal // n


def metric_usage_ratio(metrics: dict[str, PodMetric], target: int) -> tuple[float, int]:
    """(ratio, average milli-value), as ``GetMetricUsageRatio`` (integer average)."""
    total = sum(m.value for m in metrics.values())
    usage = int(total / len(metrics))  # Go's integer division truncates toward zero
    return usage / target, usage


def within(ratio: float, tolerance: float = TOLERANCE) -> bool:
    return abs(1.0 - ratio) <= tolerance


def resource_replicas(current: int, target_utilization: int, resource: str, pods: list[dict],
                      metrics: dict[str, PodMetric], now: float, container: str = "",
                      tolerance: float = TOLERANCE, requests: dict[str, int] | None = None,
                      facts: list | None = None) -> tuple[int, int, int]:
    """(replicas, utilization %, raw average milli-value): ``GetResourceReplicas`` after the
    metrics were fetched. ``requests``: ``pod_requests(pods, resource, container)`` and
    ``facts``: ``pod_facts(pods)``, when the caller kept them from an earlier sync over the
    same pods."""
    if not pods:
        raise CalcError("no pods returned by selector while calculating replica count")
    if requests is not None and facts is not None:
        # the common case in one pass: every pod ready with a metric, nothing to add back
        sums = ready_sums(metrics, requests, resource, now, facts)
        if not sums[2] and sums[5] > 0 and sums[4] > 0:
            ready, unready, _, mtotal, rtotal, n = sums
            utilization = (mtotal * 100) // rtotal
            ratio = utilization / target_utilization
            if not (unready and ratio > 1.0):
                if within(ratio, tolerance):
                    return current, utilization, mtotal // n
                return math.ceil(ratio * ready), utilization, mtotal // n
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now, facts=facts)
    for n in ignored | unready:
        metrics.pop(n, None)
    if requests is None:
        requests = pod_requests(pods, resource, container)
    if not metrics:
        raise CalcError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, utilization, raw = resource_utilization_ratio(metrics, requests, target_utilization)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if within(ratio, tolerance):
            return current, utilization, raw
        return math.ceil(ratio * ready), utilization, raw
    if missing:
        if ratio < 1.0:
            fallback = max(100, target_utilization)
            for n in missing:
                metrics[n] = PodMetric(requests[n] * fallback // 100)
        elif ratio > 1.0:
            for n in missing:
                metrics[n] = PodMetric(0)
    if scale_up_with_unready:
        for n in unready:
            metrics[n] = PodMetric(0)
    new_ratio, _, _ = resource_utilization_ratio(metrics, requests, target_utilization)
    if within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, utilization, raw
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, utilization, raw
    return replicas, utilization, raw


def plain_metric_replicas(current: int, target: int, resource: str, pods: list[dict], metrics: dict[str, PodMetric],
                          now: float, tolerance: float = TOLERANCE, facts: list | None = None) -> tuple[int, int]:
    """(replicas, average milli-value): ``calcPlainMetricReplicas`` (AverageValue resource
    targets and Pods metrics); ``facts`` as for ``resource_replicas``."""
    if not pods:
        raise CalcError("no pods returned by selector while calculating replica count")
    metrics = dict(metrics)
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now, facts=facts)
    for n in ignored | unready:
        metrics.pop(n, None)
    if not metrics:
        raise CalcError("did not receive metrics for targeted pods (pods might be unready)")
    ratio, usage = metric_usage_ratio(metrics, target)
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if within(ratio, tolerance):
            return current, usage
        return math.ceil(ratio * ready), usage
    if missing:
        for n in missing:
            metrics[n] = PodMetric(target if ratio < 1.0 else 0)
    if scale_up_with_unready:
        for n in unready:
            metrics[n] = PodMetric(0)
    new_ratio, _ = metric_usage_ratio(metrics, target)
    if within(new_ratio, tolerance) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current, usage
    replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, usage
    return replicas, usage


def ready_pod_count(pods: list[dict]) -> int:
    """Running pods whose Ready condition is True (``getReadyPodsCount``)."""
    if not pods:
        raise CalcError("no pods returned by selector while calculating replica count")
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"
               and (_condition(p, "Ready") or {}).get("status") == "True")


def usage_ratio_replicas(current: int, ratio: float, pods: list[dict], tolerance: float = TOLERANCE) -> int:
    """``getUsageRatioReplicaCount`` (Object and External Value targets)."""
    if current != 0:
        if within(ratio, tolerance):
            return current
        try:
            ready = ready_pod_count(pods)
        except CalcError as e:
            raise CalcError(f"unable to calculate ready pods: {e}") from None
        return math.ceil(ratio * ready)
    return math.ceil(ratio)


def per_pod_replicas(status_replicas: int, target_average: int, usage: int,
                     tolerance: float = TOLERANCE) -> tuple[int, int]:
    """(replicas, usage per pod): ``GetObjectPerPodMetricReplicas`` /
    ``GetExternalPerPodMetricReplicas`` (AverageValue targets of Object and External)."""
    replicas = status_replicas
    ratio = usage / (target_average * replicas) if replicas else math.inf
    if not within(ratio, tolerance):
        replicas = math.ceil(usage / target_average)
    per_pod = math.ceil(usage / status_replicas) if status_replicas else usage
    return replicas, per_pod
