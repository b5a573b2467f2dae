"""``custom.metrics.k8s.io`` (``v1beta2``, ``v1beta1``) and ``external.metrics.k8s.io/v1beta1``
over HTTPS, as prometheus-adapter serves them behind their APIServices.

Paths (each version of the custom group):

- ``/namespaces/NS/RESOURCE/NAME/METRIC``: one object; ``NAME`` ``*``: the objects of that
  resource in ``NS`` that ``labelSelector`` picks (listed from the apiserver), each with its
  value (``MetricValueList``); ``metricLabelSelector`` narrows the series;
- ``/namespaces/NS/metrics/METRIC``: the namespace itself;
- ``/RESOURCE/NAME/METRIC``: cluster-scoped objects (``nodes``, ``namespaces``);
- ``/apis/external.metrics.k8s.io/v1beta1/namespaces/NS/METRIC?labelSelector=``:
  ``ExternalMetricValueList``, one item per sample of the rule's query.

Discovery lists what the rules made of the series Prometheus had at the last relist
(``RESOURCE/METRIC`` entries; external metrics by name). Errors are ``Status`` objects as
prometheus-adapter gives them: 404 ``the server could not find the metric M for pods`` (for
an unknown metric, or one object without a sample), 400 for a selector that does not parse or
has no PromQL form, 500 ``Internal error occurred: unable to fetch metrics`` when Prometheus
fails (with its message), 405 for anything but GET.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from controlplane.client.delegatedauth import RequestAuth
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.machinery.selectors import LabelSelector, parse_label_selector
from controlplane.machinery.timestamps import rfc3339
from controlplane.metrics.adapter import rules as rl
from controlplane.metrics.adapter.prom import Prometheus, PrometheusError
from controlplane.metrics.api import guarded, status

log = get_logger(__name__)

CUSTOM, EXTERNAL = "custom.metrics.k8s.io", "external.metrics.k8s.io"
CUSTOM_VERSIONS = ("v1beta2", "v1beta1")


class _Failure(Exception):
    def __init__(self, response: web.Response) -> None:
        self.response = response


def _metric_not_found(gr: str, metric: str, name: str | None = None) -> _Failure:
    msg = (f"the server could not find the metric {metric} for {gr} {name}" if name
           else f"the server could not find the metric {metric} for {gr}")
    return _Failure(status(404, "NotFound", msg, {"name": metric, "group": CUSTOM, "kind": gr}))


def _selector(request: web.Request, key: str) -> LabelSelector:
    try:
        return parse_label_selector(request.query.get(key) or "")
    except ValueError as e:
        raise _Failure(status(400, "BadRequest", f"unable to parse {key}: {e}")) from None


async def resource_infos(client: RestClient) -> tuple[list[rl.ResourceInfo], dict[rl.GroupResource, tuple[str, str]]]:
    """Every resource the apiserver serves (preferred versions), and per resource its
    (group/version path prefix, kind)."""
    infos: list[rl.ResourceInfo] = []
    where: dict[rl.GroupResource, tuple[str, str]] = {}

    def add(prefix: str, group: str, lst: dict) -> None:
        for r in lst.get("resources") or []:
            name = r.get("name") or ""
            if not name or "/" in name:
                continue
            gr = rl.GroupResource(group, name)
            if gr in where:
                continue
            infos.append(rl.ResourceInfo(gr, r.get("singularName") or (r.get("kind") or "").lower(),
                                         bool(r.get("namespaced"))))
            where[gr] = (prefix, r.get("kind") or "")
    add("/api/v1", "", await client.request("GET", "/api/v1"))
    groups = await client.request("GET", "/apis")
    for g in groups.get("groups") or []:
        pv = (g.get("preferredVersion") or {}).get("groupVersion")
        if not pv or g.get("name") in (CUSTOM, EXTERNAL):
            continue
        try:
            add(f"/apis/{pv}", g["name"], await client.request("GET", f"/apis/{pv}"))
        except ApiStatusError as e:  # an aggregated group that is down: the rest still maps
            log.info("group discovery failed", group=pv, error=e.message)
    return infos, where


class AdapterApi:
    def __init__(self, client: RestClient, prometheus: Prometheus, custom_rules: list[rl.Rule],
                 external_rules: list[rl.Rule], *, relist_interval: float = 60.0, series_window: float | None = None,
                 auth: RequestAuth | None = None) -> None:
        self.client = client
        self.prom = prometheus
        self.custom_rules, self.external_rules = custom_rules, external_rules
        self.relist_interval = relist_interval
        self.series_window = series_window or max(relist_interval, 60.0)
        self.auth = auth
        self.mapper = rl.Mapper(rl.CORE)
        self.where: dict[rl.GroupResource, tuple[str, str]] = {}
        self.custom: dict[str, rl.Metric] = {}
        self.external: dict[str, rl.Metric] = {}
        self.listed_once = False
        self.app = web.Application(middlewares=[self._guard])
        r = self.app.router
        for path in ("/healthz", "/livez"):
            r.add_get(path, lambda _: web.Response(text="ok"))
        r.add_get("/readyz", self.readyz)
        r.add_get("/apis", self.group_list)
        r.add_get(f"/apis/{CUSTOM}", self.custom_group)
        r.add_get(f"/apis/{EXTERNAL}", self.external_group)
        for v in CUSTOM_VERSIONS:
            base = f"/apis/{CUSTOM}/{v}"
            r.add_get(base, self.custom_resources)
            r.add_get(base + "/namespaces/{ns}/metrics/{metric}", self.namespace_metric)
            r.add_get(base + "/namespaces/{ns}/{resource}/{name}/{metric}", self.namespaced_metric)
            r.add_get(base + "/{resource}/{name}/{metric}", self.cluster_metric)
        r.add_get(f"/apis/{EXTERNAL}/v1beta1", self.external_resources)
        r.add_get(f"/apis/{EXTERNAL}/v1beta1/namespaces/{{ns}}/{{metric}}", self.external_metric)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        async def run(req: web.Request) -> web.StreamResponse:
            try:
                return await handler(req)
            except _Failure as f:
                return f.response
        return await guarded(self.auth, request, run, "metrics resources")

    async def readyz(self, _: web.Request) -> web.Response:
        if not self.listed_once:
            return web.Response(status=503, text="metrics not discovered yet")
        return web.Response(text="ok")

    # -- discovery: the series Prometheus has, as metrics ------------------------------------
    async def relist(self) -> None:
        """Re-read the apiserver's resources and Prometheus' series; the metrics found replace
        the former ones (a rule whose series cannot be listed keeps its former metrics)."""
        try:
            infos, where = await resource_infos(self.client)
            self.mapper, self.where = rl.Mapper(infos), where
        except (ApiStatusError, OSError) as e:
            log.warning("resource discovery failed; keeping the former mapping", error=str(e))
        custom: dict[str, rl.Metric] = {}
        external: dict[str, rl.Metric] = {}
        ok = True
        for rules, into, old in ((self.custom_rules, custom, self.custom), (self.external_rules, external, self.external)):
            for rule in rules:
                try:
                    series = await self.prom.series(rule.series_query, self.series_window)
                except PrometheusError as e:
                    ok = False
                    log.warning("series discovery failed", rule=rule.index, external=rule.external, error=str(e))
                    for name, m in old.items():
                        if m.rule is rule:
                            into.setdefault(name, m)
                    continue
                rl.discover(rule, series, self.mapper, into)
        self.custom, self.external = custom, external
        if ok:
            self.listed_once = True
        log.debug("metrics discovered", custom=len(custom), external=len(external))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.relist()
            except Exception as e:  # noqa: BLE001 - discovery must go on
                log.exception("relist failed", error=repr(e))
            try:
                await asyncio.wait_for(stop.wait(), self.relist_interval)
            except TimeoutError:
                pass

    # -- discovery documents -----------------------------------------------------------------
    @staticmethod
    def _custom_group() -> dict:
        versions = [{"groupVersion": f"{CUSTOM}/{v}", "version": v} for v in CUSTOM_VERSIONS]
        return {"name": CUSTOM, "versions": versions, "preferredVersion": versions[0]}

    @staticmethod
    def _external_group() -> dict:
        v = {"groupVersion": f"{EXTERNAL}/v1beta1", "version": "v1beta1"}
        return {"name": EXTERNAL, "versions": [v], "preferredVersion": v}

    async def group_list(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1",
                                  "groups": [self._custom_group(), self._external_group()]})

    async def custom_group(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._custom_group()})

    async def external_group(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroup", "apiVersion": "v1", **self._external_group()})

    async def custom_resources(self, request: web.Request) -> web.Response:
        gv = request.path.rstrip("/").rsplit("/", 2)[-2:]
        out = []
        for name in sorted(self.custom):
            m = self.custom[name]
            for gr in sorted(m.resources, key=str):
                info = self.mapper.get(gr)
                namespaced = gr != rl.NAMESPACES and (info.namespaced if info else True)
                out.append({"name": f"{gr}/{name}", "singularName": "", "namespaced": namespaced,
                            "kind": "MetricValueList", "verbs": ["get"]})
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "/".join(gv),
                                  "resources": out})

    async def external_resources(self, _: web.Request) -> web.Response:
        out = [{"name": n, "singularName": "", "namespaced": True, "kind": "ExternalMetricValueList", "verbs": ["get"]}
               for n in sorted(self.external)]
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{EXTERNAL}/v1beta1",
                                  "resources": out})

    # -- custom metrics ----------------------------------------------------------------------
    def _resolve(self, resource: str) -> rl.GroupResource:
        plural, _, group = resource.partition(".")
        info = self.mapper.find(group, plural)
        if info is None:
            raise _Failure(status(404, "NotFound", f"the server could not find the requested resource ({resource})"))
        return info.gr

    async def namespaced_metric(self, request: web.Request) -> web.Response:
        m = request.match_info
        return await self._objects(request, self._resolve(m["resource"]), m["ns"], m["name"], m["metric"])

    async def namespace_metric(self, request: web.Request) -> web.Response:
        m = request.match_info
        return await self._objects(request, rl.NAMESPACES, None, m["ns"], m["metric"])

    async def cluster_metric(self, request: web.Request) -> web.Response:
        m = request.match_info
        gr = self._resolve(m["resource"])
        info = self.mapper.get(gr)
        if info is not None and info.namespaced:
            raise _Failure(status(404, "NotFound", f"{gr} is namespaced: use namespaces/NAMESPACE/{gr}/NAME/METRIC"))
        return await self._objects(request, gr, None, m["name"], m["metric"])

    async def _names(self, gr: rl.GroupResource, namespace: str | None, selector: str) -> list[str]:
        """The objects of ``gr`` (in ``namespace``) that ``selector`` picks, from the apiserver."""
        prefix, _ = self.where.get(gr) or ("/api/v1" if gr.group == "" else "", "")
        if not prefix:
            raise _Failure(status(404, "NotFound", f"the server could not find the requested resource ({gr})"))
        path = f"{prefix}/namespaces/{quote(namespace, safe='')}/{gr.resource}" if namespace else f"{prefix}/{gr.resource}"
        try:
            lst = await self.client.request("GET", path, params={"labelSelector": selector or None})
        except ApiStatusError as e:
            raise _Failure(status(e.code, e.reason, e.message)) from None
        return [((i.get("metadata") or {}).get("name") or "") for i in lst.get("items") or []]

    async def _objects(self, request: web.Request, gr: rl.GroupResource, namespace: str | None, name: str,
                       metric_name: str) -> web.Response:
        version = request.path.split("/")[3]
        metric = self.custom.get(metric_name)
        if metric is None or gr not in metric.resources:
            raise _metric_not_found(str(gr), metric_name)
        metric_selector = _selector(request, "metricLabelSelector")
        if name == "*":
            selector = _selector(request, "labelSelector")
            names = await self._names(gr, namespace, selector.to_string())
            if not names:
                return self._value_list(version, gr, namespace, metric_name, metric_selector, [], time.time())
        else:
            names = [name]
        try:
            query, label = rl.object_query(metric, gr, namespace, names, metric_selector)
        except ValueError as e:
            raise _Failure(status(400, "BadRequest", str(e))) from None
        except LookupError as e:
            raise _metric_not_found(str(gr), metric_name) from e
        try:
            at, samples = await self.prom.query(query)
        except PrometheusError as e:
            log.info("query failed", query=query, error=str(e))
            raise _Failure(status(500, "InternalError", f"Internal error occurred: unable to fetch metrics: {e}")) from None
        wanted = set(names)
        values = []
        for labels, _, value in samples:
            obj = labels.get(label, "")
            q = rl.quantity(value)
            if obj in wanted and q is not None:
                values.append((obj, q))
        if name != "*" and not values:
            raise _metric_not_found(str(gr), metric_name, name)
        return self._value_list(version, gr, namespace, metric_name, metric_selector, sorted(values), at)

    def _value_list(self, version: str, gr: rl.GroupResource, namespace: str | None, metric: str,
                    metric_selector: LabelSelector, values: list[tuple[str, str]], at: float) -> web.Response:
        prefix, kind = self.where.get(gr) or ("", "")
        api_version = prefix.removeprefix("/apis/").removeprefix("/api/") if prefix else "v1"
        kind = kind or (self.mapper.get(gr).singular.capitalize() if self.mapper.get(gr) else gr.resource)
        sel = metric_selector.to_string() or None
        ts = rfc3339(at)
        items = []
        for obj, q in values:
            described = {"kind": kind, "name": obj, "apiVersion": api_version}
            if namespace is not None and gr != rl.NAMESPACES:
                described["namespace"] = namespace
            if version == "v1beta1":
                items.append({"describedObject": described, "metricName": metric, "timestamp": ts, "value": q,
                              "selector": {"matchLabels": _match_labels(metric_selector)} if sel else None})
            else:
                items.append({"describedObject": described,
                              "metric": {"name": metric, **({"selector": _label_selector_dict(metric_selector)} if sel else {})},
                              "timestamp": ts, "value": q})
        return web.json_response({"kind": "MetricValueList", "apiVersion": f"{CUSTOM}/{version}", "metadata": {},
                                  "items": items})

    # -- external metrics --------------------------------------------------------------------
    async def external_metric(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["metric"]
        metric = self.external.get(name)
        if metric is None:
            raise _Failure(status(404, "NotFound", f"the server could not find the requested resource ({name})",
                                  {"name": name, "group": EXTERNAL}))
        selector = _selector(request, "labelSelector")
        try:
            query = rl.external_query(metric, ns, selector)
        except ValueError as e:
            raise _Failure(status(400, "BadRequest", str(e))) from None
        try:
            at, samples = await self.prom.query(query)
        except PrometheusError as e:
            log.info("query failed", query=query, error=str(e))
            raise _Failure(status(500, "InternalError", f"Internal error occurred: unable to fetch metrics: {e}")) from None
        items = []
        for labels, _, value in samples:
            q = rl.quantity(value)
            if q is None:
                continue
            items.append({"metricName": name, "metricLabels": {k: v for k, v in labels.items() if k != "__name__"},
                          "timestamp": rfc3339(at), "value": q})
        return web.json_response({"kind": "ExternalMetricValueList", "apiVersion": f"{EXTERNAL}/v1beta1",
                                  "metadata": {}, "items": items})


def _match_labels(sel: LabelSelector) -> dict[str, str]:
    return {r.key: r.values[0] for r in sel.requirements if r.op in ("=", "==") and r.values}


def _label_selector_dict(sel: LabelSelector) -> dict[str, Any]:
    """A parsed selector as a ``metav1.LabelSelector`` (equalities as ``matchLabels``)."""
    ops = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist", "!=": "NotIn"}
    out: dict[str, Any] = {}
    exprs = []
    for r in sel.requirements:
        if r.op in ("=", "=="):
            out.setdefault("matchLabels", {})[r.key] = r.values[0]
        elif r.op in ops:
            e: dict[str, Any] = {"key": r.key, "operator": ops[r.op]}
            if r.values:
                e["values"] = list(r.values)
            exprs.append(e)
    if exprs:
        out["matchExpressions"] = exprs
    return out
