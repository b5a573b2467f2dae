"""HorizontalPodAutoscaler controller (``autoscaling/v2``; kube-controller-manager's
``horizontalpodautoscaling``), level-based ``reconcile(key)`` every sync period (15 s,
``--horizontal-pod-autoscaler-sync-period``), as ``pkg/controller/podautoscaler/horizontal.go``:

1. resolve ``scaleTargetRef`` (apiVersion + kind) to a resource with a ``scale`` subresource
   through discovery (any group, custom resources included) and read its Scale
   (AbleToScale False / FailedGetScale + an Event when that fails: bad apiVersion, unknown
   kind, no scale subresource, missing target);
2. with the replicas outside [min, max] correct them; with 0 replicas (and min > 0) do nothing
   (ScalingActive False / ScalingDisabled); else compute a proposal per metric from the
   Scale's selector: Resource and ContainerResource (``metrics.k8s.io``: Utilization or
   AverageValue), Pods and Object (``custom.metrics.k8s.io/v1beta2``), External
   (``external.metrics.k8s.io/v1beta1``) -- whichever aggregated API serves them -- with
   ``replicacalculator``; the largest valid proposal wins; invalid metrics set ScalingActive
   False with the first one's reason and an Event, and block scale-downs;
3. normalize (``hpanormalize``: stabilization, behavior policies, min/max, ScalingLimited),
   write the Scale when it changes (SuccessfulRescale / FailedRescale Events, lastScaleTime),
   then the status (currentReplicas, desiredReplicas, currentMetrics, conditions) when it
   changed.

Neighbours: ``replicacalculator`` and ``hpanormalize`` (pure), ``controllerutil``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any
from urllib.parse import quote

import msgspec
from prometheus_client import Counter, Gauge, Histogram

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result
from controlplane.client.informer import object_key, split_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError, RestClient, loads
from controlplane.controllers import hpanormalize as hn
from controlplane.controllers import replicacalculator as rc
from controlplane.log import get_logger
from controlplane.machinery.quantity import format_quantity
from controlplane.machinery.scale import map_selector_text, scale_view, set_based_selector_text
from controlplane.machinery.selectors import LabelSelector, parse_label_selector
from controlplane.machinery.timestamps import parse_duration, rfc3339

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:horizontal-pod-autoscaler (bootstrap_policy)
SERVICE_ACCOUNT = "horizontal-pod-autoscaler"

log = get_logger(__name__)

RECONCILIATIONS = Counter("horizontal_pod_autoscaler_controller_reconciliations_total",
                          "Number of reconciliations of HPA controller. The label 'action' should be either "
                          "'scale_down', 'scale_up', or 'none'. Also, the label 'error' should be either 'spec', "
                          "'internal', or 'none'.", ["action", "error"])
RECONCILE_SECONDS = Histogram("horizontal_pod_autoscaler_controller_reconciliation_duration_seconds",
                              "The time(seconds) that the HPA controller takes to reconcile once.", ["action", "error"],
                              buckets=(0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024,
                                       2.048, 4.096, 8.192, 16.384))
# how the resource metrics each sync reads were obtained: "request" (a namespace's PodMetrics
# list requested from the Metrics API) or "shared" (served by a list another sync of the same
# wave requested: in flight or fresh); one request per namespace per wave is the design
RESOURCE_METRICS_LISTS = Counter("horizontal_pod_autoscaler_controller_resource_metrics_lists_total",
                                 "PodMetrics namespace lists the HPA controller read, by source ('request': "
                                 "requested from the resource metrics API; 'shared': a list another sync requested).",
                                 ["source"])
# when the first of the HPAs the last resync queued becomes due (Unix time): the start of the
# next wave, so a wave's time can be read from it to its last sync's end (bench autoscaling)
RESYNC_DUE = Gauge("horizontal_pod_autoscaler_controller_resync_due_timestamp_seconds",
                   "Unix time at which the first of the HPAs queued by the controller's last resync becomes due.")
# a wave's end: when the last of the HPAs a resync queued finished its sync (Unix time), and
# the wave's length from its due time; the wave is the unit the sync period holds every HPA to
RESYNC_WAVE_DONE = Gauge("horizontal_pod_autoscaler_controller_resync_wave_done_timestamp_seconds",
                         "Unix time at which the last of the HPAs queued by a resync finished its sync.")
RESYNC_WAVE_SECONDS = Histogram("horizontal_pod_autoscaler_controller_resync_wave_duration_seconds",
                                "Seconds from a resync's due time (its first HPA due) to the end of the last sync "
                                "of the HPAs it queued.",
                                buckets=(0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 30.0))
SYNC_PERIOD = 15.0
DISCOVERY_TTL = 60.0
COMPONENT = "horizontal-pod-autoscaler"


class ScaleError(Exception):
    """The target's Scale could not be read; ``str`` is the Event/condition text."""


_DECIMAL_SUFFIX = {-3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}


def _milli_q(v: int) -> str:
    """``resource.NewMilliQuantity(v, DecimalSI).String()``: the canonical form is the largest
    exponent (a multiple of 3, at most 18) that leaves an integer mantissa; integer arithmetic
    gives the same string as ``format_quantity(Fraction(v, 1000))`` without Fractions."""
    if not isinstance(v, int):
        return format_quantity(Fraction(v) / 1000)
    if v == 0:
        return "0"
    mant, exp = abs(v), -3
    while exp < 18 and mant % 1000 == 0:
        mant //= 1000
        exp += 3
    return f"{'-' if v < 0 else ''}{mant}{_DECIMAL_SUFFIX[exp]}"


def _copy_json(v: Any) -> Any:
    """A deep copy of decoded JSON (dicts, lists, scalars): several times cheaper than
    ``copy.deepcopy``, which has to handle any object."""
    if type(v) is dict:
        return {k: _copy_json(x) for k, x in v.items()}
    if type(v) is list:
        return [_copy_json(x) for x in v]
    return v


def _ts(v: str | None) -> float:
    return (rc._time(v) or 0.0) if v else 0.0


def _go_duration(v: str | None) -> float:
    """A Go duration in seconds, 0 when absent or not one (each node's window is its own:
    ``_pod_metric_values`` keeps them per wave)."""
    try:
        return parse_duration(v) if v else 0.0
    except ValueError:
        return 0.0


class Discovery:
    """group/kind -> (version, plural, namespaced, has scale) from the server's discovery, cached
    per group (a miss refreshes at most every 10 s): the HPA's RESTMapper."""

    def __init__(self, client: RestClient, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.clock = clock
        self._groups: dict[str, tuple[float, list[tuple[str, dict, set[str]]]]] = {}
        self._found: dict[tuple[str, str], tuple[tuple, list[tuple[R.Resource, bool]]]] = {}

    async def _load(self, group: str) -> list[tuple[str, dict, set[str]]]:
        if group == "":
            versions = ["v1"]
        else:
            try:
                g = await self.client.request("GET", f"/apis/{group}")
            except ApiStatusError as e:
                if e.not_found:
                    return []
                raise
            pv = (g.get("preferredVersion") or {}).get("version")
            versions = [v["version"] for v in g.get("versions") or []]
            if pv in versions:
                versions.remove(pv)
                versions.insert(0, pv)
        out = []
        for v in versions:
            path = "/api/v1" if group == "" else f"/apis/{group}/{v}"
            try:
                lst = await self.client.request("GET", path)
            except ApiStatusError:
                continue
            entries = lst.get("resources") or []
            subs = {e["name"] for e in entries if "/" in e.get("name", "")}
            for e in entries:
                if "/" not in e.get("name", ""):
                    out.append((v, e, subs))
        return out

    async def mappings(self, group: str, kind: str) -> list[tuple[R.Resource, bool]]:
        """[(resource, has a scale subresource)] for ``kind`` in ``group``, preferred version first."""
        now = self.clock()
        for attempt in range(2):
            hit = self._groups.get(group)
            if hit is None or now - hit[0] > DISCOVERY_TTL or (attempt == 1 and now - hit[0] > 10.0):
                self._groups[group] = hit = (now, await self._load(group))
            # every sync asks: the answer is kept with the group's discovery it was read from
            known = self._found.get((group, kind))
            if known is not None and known[0] is hit:
                found = known[1]
            else:
                found = [(R.Resource(group, v, e["name"], e.get("kind", ""), bool(e.get("namespaced", True))),
                          f"{e['name']}/scale" in subs) for v, e, subs in hit[1] if e.get("kind") == kind]
                self._found[(group, kind)] = (hit, found)
            if found:
                return found
        return []

    async def plural(self, group: str, kind: str) -> R.Resource | None:
        m = await self.mappings(group, kind)
        return m[0][0] if m else None


class _Meta(msgspec.Struct, gc=False):
    name: str = ""
    namespace: str = ""
    # the labels' JSON as it came: the pods of a workload share one label set, so a list is
    # grouped by these bytes and each distinct set decoded once (``_labels_of``), instead of
    # a dict built per item
    labels: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))


def _labels_of(raw: bytes) -> dict[str, str]:
    """A label set's JSON as a dict, leniently (what is not an object is no labels; values
    that are not strings are read as their text, as ``pod_metrics_from_dicts`` reads them)."""
    try:
        labels = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return {}
    if not isinstance(labels, dict):
        return {}
    if all(type(v) is str for v in labels.values()):
        return labels
    return {str(k): str(v) for k, v in labels.items()}


class _ContainerMetrics(msgspec.Struct, gc=False):
    name: str = ""
    usage: dict[str, str | int | float] = msgspec.field(default_factory=dict)


class _PodMetrics(msgspec.Struct, gc=False):
    """The fields of a ``metrics.k8s.io`` PodMetrics the HPA reads (the rest is skipped unparsed).
    ``gc=False``: the structs (no cycles possible) are not tracked by the garbage collector, so
    a 1,500-item list adds little to its collections."""
    metadata: _Meta = msgspec.field(default_factory=_Meta)
    timestamp: str | None = None
    window: str | None = None
    containers: list[_ContainerMetrics] = msgspec.field(default_factory=list)


class _PodMetricsList(msgspec.Struct, gc=False):
    items: list[_PodMetrics] | None = None


_POD_METRICS_LIST = msgspec.json.Decoder(_PodMetricsList)


def pod_metrics_from_dicts(items: Any) -> list[_PodMetrics]:
    """Decoded PodMetrics (JSON dicts) as ``_PodMetrics``, leniently: what is not the expected
    shape is read as absent, as the dict-walking code before the typed decoder read it."""
    out = []
    for m in items if isinstance(items, list) else []:
        if not isinstance(m, dict):
            continue
        md = m.get("metadata") if isinstance(m.get("metadata"), dict) else {}
        labels = md.get("labels") if isinstance(md.get("labels"), dict) else {}
        cs = []
        for c in m.get("containers") if isinstance(m.get("containers"), list) else []:
            if isinstance(c, dict):
                usage = c.get("usage") if isinstance(c.get("usage"), dict) else {}
                cs.append(_ContainerMetrics(str(c.get("name") or ""), dict(usage)))
        t, w = m.get("timestamp"), m.get("window")
        out.append(_PodMetrics(_Meta(str(md.get("name") or ""), str(md.get("namespace") or ""),
                                     msgspec.Raw(msgspec.json.encode({str(k): str(v) for k, v in labels.items()}))),
                               t if isinstance(t, str) else None, w if isinstance(w, str) else None, cs))
    return out


def decode_pod_metrics_list(raw: bytes) -> list[_PodMetrics]:
    """A ``PodMetricsList`` body -> its items. msgspec decodes straight into the few fields the
    HPA reads (skipping the rest unparsed), ~3x faster than ujson into dicts at 1,500 items, and
    the values code then reads attributes instead of ``dict.get`` chains; a body of another
    shape (a quantity as a number, a null where an object was expected, ...) is decoded
    generically and read leniently instead (``pod_metrics_from_dicts``)."""
    try:
        return _POD_METRICS_LIST.decode(raw).items or []
    except msgspec.ValidationError:
        lst = loads(raw)
        return pod_metrics_from_dicts(lst.get("items") if isinstance(lst, dict) else None)


_WINDOWS = ("windows",)  # the windows' key in a times dict (no timestamp text can equal it)


def _pod_metric_values(items: list[tuple[int, _PodMetrics]], resource: str, container: str,
                       times: dict[Any, float] | None = None) -> tuple[dict[str, rc.PodMetric], tuple[int, str] | None]:
    """PodMetrics (with their list positions) -> {pod: PodMetric} for ``resource`` (of one
    ``container`` if given), and the first (position, message) of a pod lacking that container.
    ``times``: parsed timestamps by their text, and under ``_WINDOWS`` the windows (a list's
    items share a few timestamps; a node's pods share its window, across the namespaces'
    lists of a wave)."""
    out: dict[str, rc.PodMetric] = {}
    times = {} if times is None else times
    windows = times.setdefault(_WINDOWS, {})
    milli = rc.milli
    metric, new = rc.PodMetric, tuple.__new__
    last_t = last_w = None  # the items of a list share a few timestamps and windows, mostly in runs
    ts = window = 0.0
    for i, m in items:
        t_text, w_text = m.timestamp, m.window
        if t_text != last_t or t_text is None:
            ts = times.get(t_text)
            if ts is None:
                ts = times[t_text] = _ts(t_text)
            last_t = t_text
        if w_text != last_w or w_text is None:
            window = windows.get(w_text)
            if window is None:  # each node's own ("15.004211s"), shared by that node's pods
                window = windows[w_text] = _go_duration(w_text)
            last_w = w_text
        cs = m.containers
        if container:
            c = next((c for c in cs if c.name == container), None)
            if c is None:
                md = m.metadata
                return out, (i, f"failed to get container metrics: container {container} not present in "
                                f"metrics for pod {md.namespace}/{md.name}")
            v = c.usage.get(resource)
            if v is not None:
                out[m.metadata.name] = rc.PodMetric(milli(v), ts, window)
            continue
        if len(cs) == 1:  # the common case, without the generators below
            v = cs[0].usage.get(resource)
            if v is not None:
                # nanocores (the Metrics API's CPU form) inline: rc.milli's first case
                # (and the PodMetric built by tuple.__new__: its generated __new__ is a Python call)
                if type(v) is str and v[-1:] == "n" and (d := v[:-1]).isdigit() and d.isascii():
                    out[m.metadata.name] = new(metric, (-(-int(d) // 1000000), ts, window))
                else:
                    out[m.metadata.name] = new(metric, (milli(v), ts, window))
            continue
        if not cs or any(resource not in c.usage for c in cs):
            continue
        out[m.metadata.name] = rc.PodMetric(sum(milli(c.usage[resource]) for c in cs), ts, window)
    return out, None


def _usage_total(items: list[tuple[int, _PodMetrics]], resource: str) -> tuple[set[str], int] | None:
    """(the pods' names, their ``resource`` usage summed in milli-units, each pod's rounded up
    first as ``_pod_metric_values`` does), or None when a pod lacks the resource or a name
    repeats: what ``rc.steady_resource_replicas`` needs, without the per-pod values."""
    total = 0
    names = set()
    milli = rc.milli
    for _, m in items:
        cs = m.containers
        if len(cs) == 1:
            v = cs[0].usage.get(resource)
            if v is None:
                return None
            if type(v) is str and v[-1:] == "n" and (d := v[:-1]).isdigit() and d.isascii():
                total += -(-int(d) // 1000000)
            else:
                total += milli(v)
        else:
            if not cs or any(resource not in c.usage for c in cs):
                return None
            total += sum(milli(c.usage[resource]) for c in cs)
        names.add(m.metadata.name)
    return (names, total) if len(names) == len(items) else None


class _NamespacePodMetrics:
    """One namespace's PodMetrics list, grouped by label set (the pods of a workload share
    theirs), with each group's values per (resource, container) computed once."""

    def __init__(self, items: list[_PodMetrics], fetched: float, times: dict[Any, Any] | None = None) -> None:
        self.fetched = fetched
        groups: dict[bytes, tuple[dict, list[tuple[int, _PodMetrics]]]] = {}
        for i, m in enumerate(items):
            # the pods of a template list their labels in one order; a set listed in another
            # order is a group of its own, and select() merges the groups it matches anyway
            k = bytes(m.metadata.labels)
            g = groups.get(k)
            if g is None:
                g = groups[k] = (_labels_of(k), [])
            g[1].append((i, m))
        self.groups = list(groups.values())
        self._times: dict[Any, Any] = {} if times is None else times
        self._values: dict[tuple[int, str, str], tuple[dict[str, rc.PodMetric], tuple[int, str] | None]] = {}
        self._totals: dict[tuple[int, str, str], tuple[set[str], int] | None] = {}

    def usage_total(self, selector: LabelSelector, resource: str) -> tuple[set[str], int] | None:
        """``_usage_total`` of the one label set ``selector`` matches (None when it matches
        none or several: ``select`` then), computed once per list."""
        found = -1
        for gi, (labels, _) in enumerate(self.groups):
            if selector.matches(labels):
                if found >= 0:
                    return None
                found = gi
        if found < 0:
            return None
        key = (found, resource, "")
        hit = self._totals.get(key, False)
        if hit is False:
            hit = self._totals[key] = _usage_total(self.groups[found][1], resource)
        return hit

    def select(self, selector: LabelSelector, resource: str, container: str) -> tuple[dict[str, rc.PodMetric], float]:
        """What ``GET .../namespaces/NS/pods?labelSelector=S`` would have given, as values.
        The dict is shared with other callers (one group's values as they are, when the
        selector matches one label set: the common case): read-only."""
        out: dict[str, rc.PodMetric] | None = None
        merged = False
        first: tuple[int, _PodMetrics] | None = None
        error: tuple[int, str] | None = None
        for gi, (labels, items) in enumerate(self.groups):
            if not selector.matches(labels):
                continue
            if first is None or items[0][0] < first[0]:
                first = items[0]
            hit = self._values.get((gi, resource, container))
            if hit is None:
                hit = self._values[(gi, resource, container)] = _pod_metric_values(items, resource, container, self._times)
            if out is None:
                out = hit[0]
            else:
                if not merged:
                    out, merged = dict(out), True
                out.update(hit[0])
            if hit[1] is not None and (error is None or hit[1][0] < error[0]):
                error = hit[1]
        if first is None or out is None:
            raise rc.CalcError("no metrics returned from resource metrics API")
        if error is not None:
            raise rc.CalcError(error[1])
        return out, _ts(first[1].timestamp)


class MetricsClient:
    """Reads the metrics APIs through the apiserver (aggregated): resource metrics
    (``metrics.k8s.io``), custom metrics (``custom.metrics.k8s.io/v1beta2``) and external
    metrics (``external.metrics.k8s.io/v1beta1``), as the HPA's REST metrics client.

    Resource metrics: one ``PodMetrics`` list per namespace serves every HPA of that namespace
    for ``resource_ttl`` seconds (concurrent readers share one request), filtered by each HPA's
    selector here instead of by the server. The Metrics API changes once per metrics
    resolution (15 s), so HPAs synced in one wave see what per-HPA lists would have shown;
    ``resource_ttl=0`` fetches per call."""

    def __init__(self, client: RestClient, discovery: Discovery, resource_ttl: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.discovery = discovery
        self.resource_ttl = resource_ttl
        self.clock = clock
        self._ns: dict[str, _NamespacePodMetrics] = {}
        self._inflight: dict[str, asyncio.Task] = {}
        self._unread: set[str] = set()  # prefetched lists no sync has read yet
        self._times: dict[Any, Any] = {}  # parsed timestamps and windows, shared by the lists (see _pod_metric_values)
        self._read = asyncio.Event()

    async def _fetch_namespace(self, namespace: str) -> _NamespacePodMetrics:
        try:
            items = await self.client.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                                              decode=decode_pod_metrics_list)
        except ApiStatusError as e:
            raise rc.CalcError(f"unable to fetch metrics from resource metrics API: {e.message}") from None
        except (msgspec.DecodeError, ValueError) as e:  # not JSON
            raise rc.CalcError(f"unable to fetch metrics from resource metrics API: {e}") from None
        # timed on arrival: a list slower than the TTL (a loaded apiserver) must still serve the
        # HPAs waiting on it and those that follow, not be stale on arrival
        if len(self._times) + len(self._times.get(_WINDOWS, ())) > 50_000:
            self._times = {}  # a few cycles' timestamps and nodes' windows: dropped now and then
        entry = _NamespacePodMetrics(items if isinstance(items, list) else [], self.clock(), self._times)
        if self.resource_ttl > 0:
            self._ns[namespace] = entry
            # dropped once stale: between waves nothing of the lists is kept
            asyncio.get_running_loop().call_later(self.resource_ttl, self._expire, namespace, entry)
        return entry

    def _expire(self, namespace: str, entry: _NamespacePodMetrics) -> None:
        if self._ns.get(namespace) is entry:
            del self._ns[namespace]

    def _fresh(self, namespace: str) -> _NamespacePodMetrics | None:
        hit = self._ns.get(namespace)
        return hit if hit is not None and self.clock() - hit.fetched < self.resource_ttl else None

    def _request(self, namespace: str) -> asyncio.Task:
        RESOURCE_METRICS_LISTS.labels("request").inc()
        task = self._inflight[namespace] = asyncio.ensure_future(self._fetch_namespace(namespace))
        task.add_done_callback(lambda _t, ns=namespace: self._inflight.pop(ns, None))
        return task

    async def prefetch(self, namespaces: list[str], ahead: int = 8) -> None:
        """Request the lists of ``namespaces`` in that order (the order their HPAs are queued
        in a wave), at most ``ahead`` of them not yet read by a sync: the wave's syncs then
        find their namespace's list ready instead of all waiting for it in turn (with 20
        workers and 10 HPAs per namespace, two lists at a time). Each list is still
        requested once per wave; one that fails is requested again by the syncs."""
        if self.resource_ttl <= 0:
            return
        tasks = []
        try:
            for ns in namespaces:
                while len(self._unread) >= ahead:
                    self._read.clear()
                    await self._read.wait()
                if self._fresh(ns) is not None or ns in self._inflight:
                    continue
                self._unread.add(ns)
                tasks.append(self._request(ns))
            await asyncio.gather(*(asyncio.shield(t) for t in tasks), return_exceptions=True)
        finally:
            self._unread.clear()

    async def namespace_pod_metrics(self, namespace: str) -> _NamespacePodMetrics:
        if namespace in self._unread:
            self._unread.discard(namespace)
            self._read.set()
        hit = self._ns.get(namespace)
        if hit is not None and self.clock() - hit.fetched < self.resource_ttl:
            RESOURCE_METRICS_LISTS.labels("shared").inc()
            return hit
        task = self._inflight.get(namespace)
        if task is None:
            task = self._request(namespace)
        else:
            RESOURCE_METRICS_LISTS.labels("shared").inc()
        return await asyncio.shield(task)

    async def resource(self, resource: str, namespace: str, selector: LabelSelector,
                       container: str = "") -> tuple[dict[str, rc.PodMetric], float]:
        entry = await self.namespace_pod_metrics(namespace)
        return entry.select(selector, resource, container)

    async def raw(self, metric: str, namespace: str, selector: str,
                  metric_selector: str) -> tuple[dict[str, rc.PodMetric], float]:
        try:
            lst = await self.client.request(
                "GET", f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/pods/*/{quote(metric, safe='')}",
                params={"labelSelector": selector, "metricLabelSelector": metric_selector or None})
        except ApiStatusError as e:
            raise rc.CalcError(f"unable to fetch metrics from custom metrics API: {e.message}") from None
        items = lst.get("items") or []
        if not items:
            raise rc.CalcError("no metrics returned from custom metrics API")
        out = {}
        for it in items:
            name = (it.get("describedObject") or {}).get("name", "")
            out[name] = rc.PodMetric(rc.milli(it.get("value", "0")), _ts(it.get("timestamp")),
                                     float(it.get("windowSeconds") or 0))
        return out, _ts(items[0].get("timestamp"))

    async def object(self, metric: str, namespace: str, ref: dict, metric_selector: str) -> tuple[int, float]:
        gv = ref.get("apiVersion") or "v1"
        group = gv.rpartition("/")[0] if "/" in gv else ""
        res = await self.discovery.plural(group, ref.get("kind", ""))
        if res is None:
            raise rc.CalcError(f'no matches for kind "{ref.get("kind")}" in group "{group}"')
        gr = res.group_resource
        path = (f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace}/{gr}/{ref.get('name')}/{quote(metric, safe='')}"
                if res.namespaced else f"/apis/custom.metrics.k8s.io/v1beta2/{gr}/{ref.get('name')}/{quote(metric, safe='')}")
        try:
            lst = await self.client.request("GET", path, params={"metricLabelSelector": metric_selector or None})
        except ApiStatusError as e:
            raise rc.CalcError(f"unable to fetch metrics from custom metrics API: {e.message}") from None
        items = lst.get("items") if isinstance(lst, dict) and "items" in lst else [lst]
        if not items or not items[0]:
            raise rc.CalcError("no metrics returned from custom metrics API")
        return rc.milli(items[0].get("value", "0")), _ts(items[0].get("timestamp"))

    async def external(self, metric: str, namespace: str, selector: str) -> tuple[list[int], float]:
        try:
            lst = await self.client.request(
                "GET", f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{quote(metric, safe='')}",
                params={"labelSelector": selector or None})
        except ApiStatusError as e:
            raise rc.CalcError(f"unable to fetch metrics from external metrics API: {e.message}") from None
        items = lst.get("items") or []
        if not items:
            raise rc.CalcError("no metrics returned from external metrics API")
        return [rc.milli(i.get("value", "0")) for i in items], _ts(items[0].get("timestamp"))


def _selector_str(sel: dict | None) -> str:
    return LabelSelector.from_dict(sel).to_string() if sel else ""


# The built-in workloads whose Scale is read from the controller-manager's informer caches
# instead of a GET of ``/scale`` per sync: the same view the apiserver's scale subresource
# gives (``spec.replicas``, ``status.replicas``, the selector as a string), no request.
CACHED_SCALE: dict[tuple[str, str], R.Resource] = {
    ("apps", "Deployment"): R.DEPLOYMENTS, ("apps", "ReplicaSet"): R.REPLICASETS,
    ("apps", "StatefulSet"): R.STATEFULSETS, ("", "ReplicationController"): R.REPLICATIONCONTROLLERS}


def scale_of(kind: str, obj: dict) -> dict:
    """The ``autoscaling/v1`` Scale the apiserver serves for a built-in workload ``obj``."""
    spec = obj.get("spec") or {}
    text = (map_selector_text if kind == "ReplicationController" else set_based_selector_text)(spec.get("selector"))
    return scale_view(obj.get("metadata") or {}, spec.get("replicas"), (obj.get("status") or {}).get("replicas"), text)


class _Resync:
    """The HPA informer's resync, as kube-controller-manager registers its HPA handler with a
    resync period of one sync period: every period each HPA is enqueued again with a delay of
    one period. The queue keeps the earlier of two pending times, so an HPA already waiting
    keeps its time; one being synced or queued at the resync gets the resync's. Without it
    each HPA runs one period after its own sync ended, so a wave stays as spread as the first
    one (1,000 HPAs processed at start-up) and drifts; with it the HPAs in flight at a resync
    run together one period later.

    The resync's clock starts with the first sync (a moment after it, once every HPA of that
    first wave is queued), and each later resync comes one period after the previous one was
    done, i.e. just after the HPAs it queued have fired: at the start of a wave. So each
    resync also prefetches the wave's PodMetrics lists (``MetricsClient.prefetch``), in the
    order the wave's HPAs are queued."""

    name = "horizontalpodautoscaling-resync"
    LAG = 0.05  # after the first sync / after the previous resync's timers

    def __init__(self, ctl: "HPAController") -> None:
        self.ctl = ctl
        self.first_sync = asyncio.Event()
        self.resyncs = 0
        # the waves not yet done, oldest first: (due time (monotonic), due time (Unix), HPAs not
        # yet synced in it); the next resync comes just after a wave's due time, before its end
        self.waves: list[tuple[float, float, set[str]]] = []
        self.monotonic = time.monotonic  # the clock of the syncs' start times

    def resync(self) -> list[str]:
        """Enqueue every HPA one period ahead; returns the namespaces of those with resource
        metrics, in that order."""
        period = self.ctl.sync_period
        namespaces: dict[str, None] = {}
        queue = self.ctl.controller.queue
        # the wave starts with the earliest of them: one that synced (and requeued itself) before
        # the resync keeps its earlier time
        first_at: float | None = None  # the earliest time a key is ready, on the queue's clock
        for key in self.ctl.hpa_inf.keys():
            self.ctl.controller.enqueue_after(key, period)
            at = queue.ready_at(key)
            if at is not None and (first_at is None or at < first_at):
                first_at = at
            hpa = self.ctl.hpa_inf.get(key) or {}
            if any(m.get("type") in ("Resource", "ContainerResource") for m in (hpa.get("spec") or {}).get("metrics") or []):
                namespaces[(hpa.get("metadata") or {}).get("namespace") or "default"] = None
        self.resyncs += 1
        # read once the loop is done (at 1,000 HPAs it takes a few ms): the due time in the
        # clocks of the syncs' start times and of the gauge
        first = max(0.0, first_at - queue.clock.now()) if first_at is not None else period
        due = time.time() + first
        RESYNC_DUE.set(due)
        # a wave's syncs are those that begin from its due time on; one not done two periods
        # after its due time is dropped (an HPA that never synced: no end to report)
        now = self.monotonic()
        self.waves = [w for w in self.waves if w[0] > now - 2 * period]
        self.waves.append((now + first - 0.001, due, set(self.ctl.hpa_inf.keys())))
        return list(namespaces)

    def synced(self, key: str, started: float) -> None:
        """``key``'s sync that began at ``started`` (monotonic) ended: it counts for the oldest
        wave due by then that still waits for it; a wave ends with the last of its HPAs."""
        for i, (due_at, due, keys) in enumerate(self.waves):
            if started >= due_at and key in keys:
                keys.discard(key)
                if not keys:
                    self._done(i)
                return

    def forget(self, key: str) -> None:
        """``key`` is gone: no wave waits for it."""
        for i in range(len(self.waves) - 1, -1, -1):
            keys = self.waves[i][2]
            keys.discard(key)
            if not keys:
                self._done(i)

    def _done(self, i: int) -> None:
        _, due, _ = self.waves.pop(i)
        end = time.time()
        RESYNC_WAVE_DONE.set(end)
        RESYNC_WAVE_SECONDS.observe(max(0.0, end - due))

    async def start(self, stop_event: asyncio.Event) -> None:
        prefetch: asyncio.Task | None = None

        async def beat() -> None:
            nonlocal prefetch
            await self.first_sync.wait()
            delay = self.LAG
            while True:
                await asyncio.sleep(delay)
                namespaces = self.resync()
                if prefetch is not None:  # the previous wave's: done or given up (it clears its state)
                    prefetch.cancel()
                    await asyncio.gather(prefetch, return_exceptions=True)
                prefetch = asyncio.ensure_future(self.ctl.metrics.prefetch(namespaces))
                delay = self.ctl.sync_period + self.LAG

        task = asyncio.ensure_future(beat())
        try:
            await stop_event.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            if prefetch is not None:
                prefetch.cancel()
                await asyncio.gather(prefetch, return_exceptions=True)


class HPAController:
    def __init__(self, manager: Manager, *, workers: int = 5, sync_period: float = SYNC_PERIOD,
                 downscale_stabilization: float = hn.DOWNSCALE_STABILIZATION, tolerance: float = rc.TOLERANCE,
                 clock: Callable[[], float] = time.time) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.hpa_inf = manager.informer(R.HORIZONTALPODAUTOSCALERS)
        self.pod_inf = manager.informer(R.PODS)
        self.recorder = manager.recorder(COMPONENT, SERVICE_ACCOUNT)
        self.sync_period = sync_period
        self.tolerance = tolerance
        self.clock = clock
        self.scale_infs = {gk: manager.informer(res) for gk, res in CACHED_SCALE.items()}
        self.discovery = Discovery(self.client)
        # one PodMetrics list per namespace per sync wave (see MetricsClient)
        self.metrics = MetricsClient(self.client, self.discovery, resource_ttl=min(5.0, sync_period / 3))
        self.norm = hn.Normalizer(clock, downscale_stabilization)
        # namespace -> {HPA key: its target's selector}, and per namespace a generation bumped
        # when an HPA's selector there changes or goes
        self.selectors: dict[str, dict[str, LabelSelector]] = {}
        self._selector_texts: dict[str, str] = {}
        self._selectors_gen: dict[str, int] = {}
        self._pod_gen: dict[str, int] = {}  # namespace -> bumped on every pod event there
        # HPA key -> (namespace pod generation, selector text, selected pods) and
        # (pod generation, selectors generation, HPAs selecting those pods)
        self._pods_cache: dict[str, tuple[int, str, list[dict]]] = {}
        self._selecting_cache: dict[str, tuple[int, int, list[str]]] = {}
        # HPA key -> (the cached pods list, {(resource, container): milli requests per pod, ("", "facts"): rc.pod_facts})
        self._requests_cache: dict[str, tuple[list[dict], dict[tuple, Any]]] = {}
        self.syncs = 0
        self.controller = Controller("horizontalpodautoscaling", self.reconcile, workers=workers)
        self.resyncer = _Resync(self)
        self.hpa_inf.add_handler(self._on_hpa)
        self.pod_inf.add_handler(self._on_pod)
        manager.add(self.controller)
        manager.add(self.resyncer)

    def _on_pod(self, etype: str, obj: dict, old: dict | None) -> None:
        ns = (obj.get("metadata") or {}).get("namespace") or ""
        self._pod_gen[ns] = self._pod_gen.get(ns, 0) + 1

    def _forget(self, key: str) -> None:
        self.norm.forget(key)
        self.resyncer.forget(key)
        ns = split_key(key)[0] or ""
        if self.selectors.get(ns, {}).pop(key, None) is not None:
            self._selectors_gen[ns] = self._selectors_gen.get(ns, 0) + 1
        self._selector_texts.pop(key, None)
        self._pods_cache.pop(key, None)
        self._selecting_cache.pop(key, None)
        self._requests_cache.pop(key, None)

    def _on_hpa(self, etype: str, obj: dict, old: dict | None) -> None:
        key = object_key(obj)
        if etype == "DELETED":
            self._forget(key)
            return
        # as kube-controller-manager: every request waits one sync period in the queue
        self.controller.enqueue_after(key, self.sync_period)

    async def reconcile(self, key: str) -> Result | None:
        hpa = self.hpa_inf.get(key)
        if hpa is None:
            self._forget(key)
            return None
        self.resyncer.first_sync.set()
        started = time.monotonic()
        t0 = time.perf_counter()
        action, error = "none", "internal"
        try:
            action, error = await self.reconcile_hpa(key, hpa)
        except ApiStatusError as e:
            log.warning("horizontal pod autoscaler sync failed", hpa=key, error=str(e))
        except Exception as e:  # noqa: BLE001 - one HPA must never stop the others
            log.exception("horizontal pod autoscaler sync failed", hpa=key, error=repr(e))
        RECONCILIATIONS.labels(action, error).inc()
        RECONCILE_SECONDS.labels(action, error).observe(time.perf_counter() - t0)
        self.syncs += 1
        self.resyncer.synced(key, started)
        return Result(requeue_after=self.sync_period)

    # -- the sync --------------------------------------------------------------------------------
    async def reconcile_hpa(self, key: str, shared: dict) -> tuple[str, str]:
        """One sync; returns the (action, error) labels of the reconciliation metrics."""
        # only the status is written: the cached object's status stays the original, the
        # rest of the object is shared read-only (never mutated below)
        original = shared.get("status") or {}
        hpa = dict(shared)
        status = hpa["status"] = _copy_json(original)
        ns = hpa["metadata"].get("namespace") or "default"
        spec = hpa.get("spec") or {}
        conds: list[dict] = status.setdefault("conditions", [])
        now = self.clock()

        def cond(ctype: str, st: str, reason: str, message: str) -> None:
            hn.set_condition(conds, ctype, st, reason, message, now)

        ref = spec.get("scaleTargetRef") or {}
        reference = f"{ref.get('kind')}/{ns}/{ref.get('name')}"
        try:
            scale, target = await self._scale(ns, ref)
        except ScaleError as e:
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(e))
            cond("AbleToScale", "False", "FailedGetScale", f"the HPA controller was unable to get the target's current scale: {e}")
            await self._update_status(hpa, original)
            log.info("failed to get scale", hpa=key, reference=reference, error=str(e))
            return "none", "spec"
        cond("AbleToScale", "True", "SucceededGetScale", "the HPA controller was able to get the target's current scale")
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        self.norm.record_initial(key, current)
        min_r = int(spec["minReplicas"]) if spec.get("minReplicas") is not None else 1
        max_r = int(spec.get("maxReplicas") or 0)
        statuses: list[dict] = []
        desired, rescale_reason, rescale = 0, "", True
        if current == 0 and min_r != 0:
            rescale = False
            cond("ScalingActive", "False", "ScalingDisabled", "scaling is disabled since the replica count of the target is zero")
        elif current > max_r:
            rescale_reason, desired = "Current number of replicas above Spec.MaxReplicas", max_r
        elif current < min_r:
            rescale_reason, desired = "Current number of replicas below Spec.MinReplicas", min_r
        else:
            proposal, metric_name, statuses, err = await self._compute(hpa, scale, cond, now)
            if err is not None and proposal == -1:
                self._set_status(hpa, current, int(status.get("desiredReplicas") or 0), statuses, False, now)
                await self._update_status(hpa, original)
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", err)
                log.info("failed to compute desired replicas", hpa=key, reference=reference, error=err)
                return "none", "spec"
            rescale_metric = ""
            if proposal > desired:
                desired, rescale_metric = proposal, metric_name
            if desired > current:
                rescale_reason = f"{rescale_metric} above target"
            if desired < current:
                rescale_reason = "All metrics below target"
            behavior = spec.get("behavior")
            if behavior is None:
                desired = self.norm.normalize(key, current, desired, min_r, max_r, cond)
            else:
                desired = self.norm.normalize_with_behaviors(key, behavior, current, desired, min_r, max_r, cond)
            rescale = desired != current
        if rescale:
            try:
                await self._write_scale(target, ns, ref.get("name", ""), scale, desired)
            except ApiStatusError as e:
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {rescale_reason}; error: {e.message}")
                cond("AbleToScale", "False", "FailedUpdateScale", f"the HPA controller was unable to update the target scale: {e.message}")
                self._set_status(hpa, current, int(status.get("desiredReplicas") or 0), statuses, False, now)
                await self._update_status(hpa, original)
                return "none", "internal"
            cond("AbleToScale", "True", "SucceededRescale", f"the HPA controller was able to update the target scale to {desired}")
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
            self.norm.store_scale_event(spec.get("behavior"), key, current, desired)
            log.info("successfully rescaled", hpa=key, current=current, desired=desired, reason=rescale_reason)
        else:
            desired = current
        self._set_status(hpa, current, desired, statuses, rescale, now)
        await self._update_status(hpa, original)
        action = "scale_up" if desired > current else "scale_down" if desired < current else "none"
        return action, "none"

    @staticmethod
    def _set_status(hpa: dict, current: int, desired: int, statuses: list[dict], rescale: bool, now: float) -> None:
        old = hpa.get("status") or {}
        st: dict[str, Any] = {"observedGeneration": hpa["metadata"].get("generation", 1), "currentReplicas": current,
                              "desiredReplicas": desired}
        if rescale:
            st["lastScaleTime"] = rfc3339(now)
        elif old.get("lastScaleTime"):
            st["lastScaleTime"] = old["lastScaleTime"]
        if statuses:
            st["currentMetrics"] = statuses
        st["conditions"] = old.get("conditions") or []
        hpa["status"] = st

    async def _update_status(self, hpa: dict, original: dict) -> None:
        if hpa.get("status") == original:
            return
        md = hpa["metadata"]
        try:
            # the answer (the stored HPA) is not read: the watch brings it to the informer
            await self.client.request("PUT", R.HORIZONTALPODAUTOSCALERS.path(md.get("namespace"), md["name"], "status"),
                                      body=hpa, decode=_unread)
        except ApiStatusError as e:
            if e.not_found:
                return
            self.recorder.event(hpa, "Warning", "FailedUpdateStatus", e.message)
            raise

    # -- the target's scale ----------------------------------------------------------------------
    async def _scale(self, ns: str, ref: dict) -> tuple[dict, R.Resource]:
        gv = ref.get("apiVersion") or ""
        if gv.count("/") > 1 or not ref.get("kind"):
            raise ScaleError(f"unexpected GroupVersion string: {gv}")
        group = gv.rpartition("/")[0] if "/" in gv else ""
        try:
            maps = await self.discovery.mappings(group, ref["kind"])
        except ApiStatusError as e:
            raise ScaleError(f"unable to determine resource for scale target reference: {e.message}") from None
        if not maps:
            raise ScaleError(f'no matches for kind "{ref["kind"]}" in group "{group}"')
        cached = CACHED_SCALE.get((group, ref["kind"]))
        if cached is not None:
            obj = self.scale_infs[(group, ref["kind"])].get_by(ns, ref.get("name", ""))
            if obj is not None:  # else the GET below gives the apiserver's answer
                return scale_of(ref["kind"], obj), cached
        first_err: str | None = None
        for res, has_scale in maps:
            if not has_scale:
                first_err = first_err or "the server could not find the requested resource"
                continue
            try:
                return await self.client.get(res, ref.get("name", ""), ns, subresource="scale"), res
            except ApiStatusError as e:
                first_err = first_err or e.message
        raise ScaleError(first_err or "no scale subresource")

    async def _write_scale(self, res: R.Resource, ns: str, name: str, scale: dict, replicas: int) -> None:
        body = {"apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": {k: v for k, v in (scale.get("metadata") or {}).items() if k in ("name", "namespace", "resourceVersion")},
                "spec": {"replicas": replicas}}
        await self.client.request("PUT", res.path(ns, name, "scale"), body=body)

    # -- metrics ---------------------------------------------------------------------------------
    def _selector(self, hpa: dict, scale: dict, cond: Callable[..., None]) -> tuple[LabelSelector | None, str | None]:
        text = (scale.get("status") or {}).get("selector") or ""
        key = object_key(hpa)
        if not text:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            cond("ScalingActive", "False", "InvalidSelector", "the HPA target's scale is missing a selector")
            return None, "selector is required"
        try:
            sel = parse_label_selector(text)
        except ValueError as e:
            msg = f"couldn't convert selector into a corresponding internal selector object: {e}"
            self.recorder.event(hpa, "Warning", "InvalidSelector", msg)
            cond("ScalingActive", "False", "InvalidSelector", msg)
            return None, msg
        ns = hpa["metadata"].get("namespace") or ""
        if self._selector_texts.get(key) != text:
            self._selectors_gen[ns] = self._selectors_gen.get(ns, 0) + 1
            self._selector_texts[key] = text
        self.selectors.setdefault(ns, {})[key] = sel
        pods = self._pods(key, ns, text, sel)
        gen, sgen = self._pod_gen.get(ns, 0), self._selectors_gen.get(ns, 0)
        hit = self._selecting_cache.get(key)
        if hit is not None and hit[0] == gen and hit[1] == sgen:
            selecting = hit[2]
        else:
            # each distinct label set once (a workload's pods share theirs)
            sets = {tuple(lb.items()): lb for lb in ((p.get("metadata") or {}).get("labels") or {} for p in pods)}
            labels = list(sets.values())
            selecting = sorted(k for k, s in self.selectors[ns].items() if any(s.matches(lb) for lb in labels))
            self._selecting_cache[key] = (gen, sgen, selecting)
        if len(selecting) > 1:
            msg = f"pods by selector {text} are controlled by multiple HPAs: [{' '.join(selecting)}]"
            self.recorder.event(hpa, "Warning", "AmbiguousSelector", msg)
            cond("ScalingActive", "False", "AmbiguousSelector", msg)
            return None, msg
        return sel, None

    def _pods(self, key: str, ns: str, text: str, sel: LabelSelector) -> list[dict]:
        """The cached pods ``sel`` picks in ``ns`` (the pod lister), listed again only after
        a pod event in that namespace or a selector change."""
        gen = self._pod_gen.get(ns, 0)
        hit = self._pods_cache.get(key)
        if hit is not None and hit[0] == gen and hit[1] == text:
            return hit[2]
        pods = self.pod_inf.list(ns, sel.matches)
        self._pods_cache[key] = (gen, text, pods)
        return pods

    def _kept(self, key: str, pods: list[dict]) -> dict[tuple, Any]:
        """What is computed once per cached pods list of ``key`` (dropped with the list)."""
        hit = self._requests_cache.get(key)
        if hit is None or hit[0] is not pods:
            hit = self._requests_cache[key] = (pods, {})
        return hit[1]

    def _requests(self, key: str, pods: list[dict], resource: str, container: str) -> dict[str, int]:
        """``pod_requests`` of the cached pods list, computed once per list (a missing request
        raises every time)."""
        kept = self._kept(key, pods)
        out = kept.get((resource, container))
        if out is None:
            out = kept[(resource, container)] = rc.pod_requests(pods, resource, container)
        return out

    def _facts(self, key: str, pods: list[dict]) -> list:
        """``rc.pod_facts`` of the cached pods list, computed once per list."""
        kept = self._kept(key, pods)
        out = kept.get(("", "facts"))
        if out is None:
            out = kept[("", "facts")] = rc.pod_facts(pods)
        return out

    def _steady(self, key: str, entry: _NamespacePodMetrics, sel: LabelSelector, resource: str, pods: list[dict],
                target: int, current: int, now: float) -> tuple[int, int, int] | None:
        """``rc.steady_resource_replicas`` for a Resource utilization target: the replica
        count from the one label set's summed usage and the kept pods' summed requests, when
        the kept pods are all steady and are exactly the pods with metrics; None otherwise
        (a missing request, a pod without metrics or not ready, ...: the per-pod path
        decides, with its errors)."""
        kept = self._kept(key, pods)
        summary = kept.get(("", "steady"))
        if summary is None:
            summary = kept[("", "steady")] = rc.steady_summary(self._facts(key, pods))
        if not summary.steady or (resource == "cpu" and (summary.cpu_after is None or summary.cpu_after > now)):
            return None
        total = entry.usage_total(sel, resource)
        if total is None:
            return None
        try:
            requests_total = kept.get(("", "total", resource))
            if requests_total is None:
                requests_total = kept[("", "total", resource)] = sum(self._requests(key, pods, resource, "").values())
        except rc.CalcError:
            return None  # a pod without the request: the per-pod path raises it
        return rc.steady_resource_replicas(current, target, resource, summary, total[0], total[1], requests_total,
                                           now, self.tolerance)

    def _unable(self, hpa: dict, reason: str, err: str) -> tuple[str, str, str, str]:
        self.recorder.event(hpa, "Warning", reason, err)
        return ("ScalingActive", "False", reason, f"the HPA was unable to compute the replica count: {err}")

    async def _compute(self, hpa: dict, scale: dict, cond: Callable[..., None],
                       now: float) -> tuple[int, str, list[dict], str | None]:
        """``computeReplicasForMetrics``: (replicas or -1, metric name, statuses, error)."""
        sel, err = self._selector(hpa, scale, cond)
        if sel is None:
            return -1, "", [], err
        spec_replicas = int((scale.get("spec") or {}).get("replicas") or 0)
        status_replicas = int((scale.get("status") or {}).get("replicas") or 0)
        specs = (hpa.get("spec") or {}).get("metrics") or []
        ns = hpa["metadata"].get("namespace") or "default"
        pods = self._pods(object_key(hpa), hpa["metadata"].get("namespace") or "",
                          (scale.get("status") or {}).get("selector") or "", sel)
        replicas, metric, invalid, first_err, first_cond = 0, "", 0, None, None
        statuses: list[dict] = []
        for ms in specs:
            try:
                proposal, name, st = await self._one(hpa, ms, spec_replicas, status_replicas, sel, pods, now)
            except _MetricError as e:
                if invalid == 0:
                    first_err, first_cond = e.err, e.condition
                invalid += 1
                statuses.append({"type": ""})  # kept aligned with spec.metrics, as Kubernetes does
                continue
            statuses.append(st)
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        error = None
        if first_err is not None:
            error = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_err}"
        if invalid >= len(specs) or (invalid > 0 and replicas < spec_replicas):
            if first_cond is not None:
                cond(*first_cond)
            return -1, "", statuses, error or "no metrics specified"
        cond("ScalingActive", "True", "ValidMetricFound", f"the HPA was able to successfully calculate a replica count from {metric}")
        return replicas, metric, statuses, error

    async def _one(self, hpa: dict, ms: dict, spec_replicas: int, status_replicas: int, sel: LabelSelector,
                   pods: list[dict], now: float) -> tuple[int, str, dict]:
        mtype = ms.get("type")
        ns = hpa["metadata"].get("namespace") or "default"
        if mtype in ("Resource", "ContainerResource"):
            src = ms.get("resource") if mtype == "Resource" else ms.get("containerResource")
            src = src or {}
            rname, container = src.get("name", ""), src.get("container", "") if mtype == "ContainerResource" else ""
            reason = "FailedGetResourceMetric" if mtype == "Resource" else "FailedGetContainerResourceMetric"
            wrap = (f"failed to get {rname} resource metric value" if mtype == "Resource"
                    else f"failed to get {container} container metric value")
            target = src.get("target") or {}
            try:
                if target.get("averageValue") is not None:
                    try:
                        metrics, _ = await self.metrics.resource(rname, ns, sel, container)
                    except rc.CalcError as e:
                        raise rc.CalcError(f"failed to get {rname} usage: unable to get metrics for resource {rname}: {e}") from None
                    try:
                        proposal, raw = rc.plain_metric_replicas(spec_replicas, rc.milli(target["averageValue"]), rname,
                                                                 pods, metrics, now, self.tolerance,
                                                                 facts=self._facts(object_key(hpa), pods))
                    except rc.CalcError as e:
                        raise rc.CalcError(f"failed to get {rname} usage: {e}") from None
                    current = {"averageValue": _milli_q(raw)}
                    name = f"{rname} resource"
                else:
                    if target.get("averageUtilization") is None:
                        raise rc.CalcError("invalid resource metric source: neither an average utilization target "
                                           "nor an average value (usage) target was set")
                    util_t = int(target["averageUtilization"])
                    try:
                        entry = await self.metrics.namespace_pod_metrics(ns)
                        # the common case from sums (every pod ready with one metric), else per pod
                        fast = self._steady(object_key(hpa), entry, sel, rname, pods, util_t, spec_replicas, now) \
                            if mtype == "Resource" and pods else None
                        if fast is None:
                            metrics, _ = entry.select(sel, rname, container)
                    except rc.CalcError as e:
                        raise rc.CalcError(f"failed to get {rname} utilization: unable to get metrics for resource {rname}: {e}") from None
                    try:
                        if fast is not None:
                            proposal, util, raw = fast
                        else:
                            proposal, util, raw = rc.resource_replicas(
                                spec_replicas, util_t, rname, pods, metrics, now, container, self.tolerance,
                                requests=self._requests(object_key(hpa), pods, rname, container) if pods else None,
                                facts=self._facts(object_key(hpa), pods))
                    except rc.CalcError as e:
                        raise rc.CalcError(f"failed to get {rname} utilization: {e}") from None
                    current = {"averageUtilization": util, "averageValue": _milli_q(raw)}
                    name = (f"{rname} resource utilization (percentage of request)" if mtype == "Resource"
                            else f"{rname} container resource utilization (percentage of request)")
            except rc.CalcError as e:
                raise _MetricError(f"{wrap}: {e}", self._unable(hpa, reason, str(e))) from None
            if mtype == "Resource":
                return proposal, name, {"type": "Resource", "resource": {"name": rname, "current": current}}
            return proposal, name, {"type": "ContainerResource",
                                    "containerResource": {"name": rname, "container": container, "current": current}}
        if mtype == "Pods":
            src = ms.get("pods") or {}
            metric = src.get("metric") or {}
            mname = metric.get("name", "")
            try:
                msel = _selector_str(metric.get("selector"))
                try:
                    metrics, _ = await self.metrics.raw(mname, ns, sel.to_string(), msel)
                except rc.CalcError as e:
                    raise rc.CalcError(f"unable to get metric {mname}: {e}") from None
                proposal, usage = rc.plain_metric_replicas(spec_replicas, rc.milli((src.get("target") or {}).get("averageValue") or "0"),
                                                           "", pods, metrics, now, self.tolerance,
                                                           facts=self._facts(object_key(hpa), pods))
            except (rc.CalcError, ValueError) as e:
                raise _MetricError(f"failed to get pods metric value: {e}", self._unable(hpa, "FailedGetPodsMetric", str(e))) from None
            return proposal, f"pods metric {mname}", {"type": "Pods", "pods": {"metric": metric, "current": {"averageValue": _milli_q(usage)}}}
        if mtype == "Object":
            src = ms.get("object") or {}
            metric = src.get("metric") or {}
            mname = metric.get("name", "")
            target = src.get("target") or {}
            ref = src.get("describedObject") or {}
            try:
                msel = _selector_str(metric.get("selector"))
                if target.get("type") == "Value" and target.get("value") is not None:
                    try:
                        usage, _ = await self.metrics.object(mname, ns, ref, msel)
                    except rc.CalcError as e:
                        raise rc.CalcError(f"unable to get metric {mname}: {e} on {ref.get('kind')} {ns}/{ref.get('name')}") from None
                    proposal = rc.usage_ratio_replicas(spec_replicas, usage / rc.milli(target["value"]), pods, self.tolerance)
                    current = {"value": _milli_q(usage)}
                    name = f"{ref.get('kind')} metric {mname}"
                elif target.get("type") == "AverageValue" and target.get("averageValue") is not None:
                    usage, _ = await self.metrics.object(mname, ns, ref, msel)
                    proposal, per_pod = rc.per_pod_replicas(status_replicas, rc.milli(target["averageValue"]), usage, self.tolerance)
                    current = {"averageValue": _milli_q(per_pod)}
                    name = f"external metric {mname}({metric.get('selector')})"
                else:
                    raise rc.CalcError("invalid object metric source: neither a value target nor an average value target was set")
            except (rc.CalcError, ValueError) as e:
                raise _MetricError(f"failed to get object metric value: {e}", self._unable(hpa, "FailedGetObjectMetric", str(e))) from None
            return proposal, name, {"type": "Object", "object": {"describedObject": ref, "metric": metric, "current": current}}
        if mtype == "External":
            src = ms.get("external") or {}
            metric = src.get("metric") or {}
            mname = metric.get("name", "")
            target = src.get("target") or {}
            try:
                values, _ = await self.metrics.external(mname, ns, _selector_str(metric.get("selector")))
                usage = sum(values)
                if target.get("averageValue") is not None:
                    proposal, per_pod = rc.per_pod_replicas(status_replicas, rc.milli(target["averageValue"]), usage, self.tolerance)
                    current = {"averageValue": _milli_q(per_pod)}
                elif target.get("value") is not None:
                    proposal = rc.usage_ratio_replicas(spec_replicas, usage / rc.milli(target["value"]), pods, self.tolerance)
                    current = {"value": _milli_q(usage)}
                else:
                    raise rc.CalcError("invalid external metric source: neither a value target nor an average value target was set")
            except (rc.CalcError, ValueError) as e:
                raise _MetricError(f"failed to get {mname} external metric value: {e}",
                                   self._unable(hpa, "FailedGetExternalMetric", str(e))) from None
            return proposal, f"external metric {mname}({metric.get('selector')})", {
                "type": "External", "external": {"metric": metric, "current": current}}
        err = f'unknown metric source type "{mtype}"'
        raise _MetricError(err, self._unable(hpa, "InvalidMetricSourceType", err))


def _unread(_raw: bytes) -> None:
    """A response body nobody reads, left undecoded."""
    return None


class _MetricError(Exception):
    def __init__(self, err: str, condition: tuple[str, str, str, str]) -> None:
        super().__init__(err)
        self.err = err
        self.condition = condition


def setup(manager: Manager, workers: int = 5, sync_period: float = SYNC_PERIOD,
          downscale_stabilization: float = hn.DOWNSCALE_STABILIZATION, tolerance: float = rc.TOLERANCE) -> HPAController:
    return HPAController(manager, workers=workers, sync_period=sync_period,
                         downscale_stabilization=downscale_stabilization, tolerance=tolerance)
