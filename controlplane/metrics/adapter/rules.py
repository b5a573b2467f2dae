"""prometheus-adapter's configuration and what it makes of Prometheus' series (pure logic).

A configuration (prometheus-adapter's ``config.yaml``) has ``rules`` (custom metrics, about
Kubernetes objects) and ``externalRules`` (external metrics). Each rule:

- ``seriesQuery``: the series selector discovery lists (``/api/v1/series?match[]=...``);
- ``seriesFilters``: ``{is: REGEX}`` / ``{isNot: REGEX}`` on the series name;
- ``resources``: which label names which Kubernetes resource, by ``overrides``
  (``{namespace: {resource: namespace}, pod: {resource: pod}}``) and/or a ``template``
  (``kube_<<.Group>>_<<.Resource>>``: a label matching it names that resource);
- ``name``: ``matches`` (a regex on the series name; ``^(.*)$`` by default) and ``as`` (the
  metric's name, with ``$1``-style references; ``$1`` when the regex has a group, else
  ``$0``);
- ``metricsQuery``: the PromQL run for a request, a template with ``<<.Series>>`` (the series
  name), ``<<.LabelMatchers>>`` (the namespace, the objects' names as a regex, and the
  metric label selector, as PromQL matchers) and ``<<.GroupBy>>`` (the object's label).

prometheus-adapter renders ``metricsQuery`` with Go's text/template; this reads only those
three fields (the ones its documentation and shipped configurations use). Anything else
between ``<<`` and ``>>`` is refused when the configuration is loaded, with the rule's index,
instead of producing a wrong query (written by hand: no Go template engine for Python).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

from controlplane.machinery.quantity import format_quantity
from controlplane.machinery.selectors import LabelSelector, Requirement

_FIELDS = {".Series", ".LabelMatchers", ".GroupBy"}
_ACTION = re.compile(r"<<(.*?)>>", re.S)


class ConfigError(ValueError):
    """The configuration cannot be used (the message says where)."""


@dataclass(frozen=True)
class GroupResource:
    group: str
    resource: str  # plural, lower case

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class ResourceInfo:
    """What the adapter knows of a Kubernetes resource (from the apiserver's discovery)."""
    gr: GroupResource
    singular: str
    namespaced: bool


NAMESPACES = GroupResource("", "namespaces")


class Mapper:
    """Resource names as written in a configuration (``pod``, ``pods``, ``Pod``, with an
    optional group) -> the resource, from the apiserver's discovery."""

    def __init__(self, infos: Iterable[ResourceInfo]) -> None:
        self.infos: dict[GroupResource, ResourceInfo] = {}
        self._names: dict[tuple[str, str], ResourceInfo] = {}
        self._any_group: dict[str, ResourceInfo] = {}
        for info in infos:
            self.infos[info.gr] = info
            for n in {info.gr.resource, info.singular}:
                if not n:
                    continue
                self._names.setdefault((info.gr.group, n), info)
                # without a group the core group wins, then the first one listed
                if info.gr.group == "" or n not in self._any_group:
                    self._any_group[n] = info

    def find(self, group: str | None, name: str) -> ResourceInfo | None:
        name = name.lower()
        if group is None:
            return self._any_group.get(name)
        return self._names.get((group, name))

    def get(self, gr: GroupResource) -> ResourceInfo | None:
        return self.infos.get(gr)


# the core resources a label commonly names: enough for tests and for an adapter whose
# discovery has not answered yet (the adapter replaces it with the apiserver's own list)
CORE = [ResourceInfo(GroupResource("", "namespaces"), "namespace", False),
        ResourceInfo(GroupResource("", "pods"), "pod", True),
        ResourceInfo(GroupResource("", "nodes"), "node", False),
        ResourceInfo(GroupResource("", "services"), "service", True),
        ResourceInfo(GroupResource("apps", "deployments"), "deployment", True),
        ResourceInfo(GroupResource("apps", "statefulsets"), "statefulset", True),
        ResourceInfo(GroupResource("apps", "replicasets"), "replicaset", True),
        ResourceInfo(GroupResource("apps", "daemonsets"), "daemonset", True),
        ResourceInfo(GroupResource("batch", "jobs"), "job", True)]


@dataclass
class Rule:
    index: int
    external: bool
    series_query: str
    filters: list[tuple[bool, re.Pattern]]
    overrides: dict[str, tuple[str | None, str]]  # label -> (group or None, resource as written)
    template: re.Pattern | None
    template_text: str
    name_matches: re.Pattern
    name_as: str
    metrics_query: str

    def passes(self, series: str) -> bool:
        return all(bool(p.search(series)) == is_ for is_, p in self.filters)

    def metric_name(self, series: str) -> str | None:
        m = self.name_matches.search(series)
        if m is None:
            return None
        return re.sub(r"\$(?:\{(\d+)\}|(\d+))",
                      lambda r: m.group(int(r.group(1) or r.group(2))) or "", self.name_as)

    def resource_labels(self, labels: Iterable[str], mapper: Mapper) -> dict[GroupResource, str]:
        """The resources this series' labels name -> the label naming each."""
        out: dict[GroupResource, str] = {}
        for label in labels:
            if label in self.overrides:
                group, name = self.overrides[label]
                info = mapper.find(group, name)
                if info is not None:
                    out.setdefault(info.gr, label)
                continue
            if self.template is not None:
                m = self.template.fullmatch(label)
                if m is not None:
                    gd = m.groupdict()
                    info = mapper.find(gd.get("group") if "group" in gd else None, gd["resource"])
                    if info is not None:
                        out.setdefault(info.gr, label)
        return out


def _regex(text: Any, where: str) -> re.Pattern:
    if not isinstance(text, str):
        raise ConfigError(f"{where}: must be a string")
    try:
        return re.compile(text)
    except re.error as e:
        raise ConfigError(f"{where}: invalid regex {text!r}: {e}") from None


def _template_regex(text: str, where: str) -> re.Pattern:
    parts, pos = [], 0
    for m in _ACTION.finditer(text):
        parts.append(re.escape(text[pos:m.start()]))
        f = m.group(1).strip()
        if f == ".Resource":
            parts.append("(?P<resource>[a-z0-9]+)")
        elif f == ".Group":
            parts.append("(?P<group>[a-z0-9.]*)")
        else:
            raise ConfigError(f"{where}: unsupported template field <<{m.group(1)}>> (only <<.Group>> and <<.Resource>>)")
        pos = m.end()
    parts.append(re.escape(text[pos:]))
    if "(?P<resource>" not in "".join(parts):
        raise ConfigError(f"{where}: the template must contain <<.Resource>>")
    return re.compile("".join(parts))


def _rule(doc: Any, index: int, external: bool) -> Rule:
    where = f"{'externalRules' if external else 'rules'}[{index}]"
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: must be a mapping")
    query = doc.get("seriesQuery")
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"{where}.seriesQuery: required")
    filters = []
    for i, f in enumerate(doc.get("seriesFilters") or []):
        if not isinstance(f, dict) or len(f) != 1 or next(iter(f)) not in ("is", "isNot"):
            raise ConfigError(f"{where}.seriesFilters[{i}]: must be {{is: REGEX}} or {{isNot: REGEX}}")
        k, v = next(iter(f.items()))
        filters.append((k == "is", _regex(v, f"{where}.seriesFilters[{i}].{k}")))
    res = doc.get("resources") or {}
    if not isinstance(res, dict):
        raise ConfigError(f"{where}.resources: must be a mapping")
    overrides: dict[str, tuple[str | None, str]] = {}
    for label, o in (res.get("overrides") or {}).items():
        if not isinstance(o, dict) or not isinstance(o.get("resource"), str) or not o["resource"]:
            raise ConfigError(f"{where}.resources.overrides.{label}: needs a resource")
        overrides[str(label)] = (o.get("group") if isinstance(o.get("group"), str) else None, o["resource"])
    template_text = res.get("template") or ""
    template = _template_regex(template_text, f"{where}.resources.template") if template_text else None
    name = doc.get("name") or {}
    if not isinstance(name, dict):
        raise ConfigError(f"{where}.name: must be a mapping")
    matches = _regex(name.get("matches") or "^(.*)$", f"{where}.name.matches")
    as_ = name.get("as") or ("$1" if matches.groups else "$0")
    mq = doc.get("metricsQuery")
    if not isinstance(mq, str) or not mq.strip():
        raise ConfigError(f"{where}.metricsQuery: required")
    for m in _ACTION.finditer(mq):
        if m.group(1).strip() not in _FIELDS:
            raise ConfigError(f"{where}.metricsQuery: unsupported template action <<{m.group(1)}>> "
                              f"(supported: {', '.join('<<' + f + '>>' for f in sorted(_FIELDS))})")
    return Rule(index, external, query, filters, overrides, template, template_text, matches, str(as_), mq)


def load_config(doc: Any) -> tuple[list[Rule], list[Rule]]:
    """(custom rules, external rules) of a parsed configuration; ConfigError if unusable."""
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError("the configuration must be a mapping with rules and/or externalRules")
    unknown = set(doc) - {"rules", "externalRules", "resourceRules"}
    if unknown:
        raise ConfigError(f"unknown keys: {', '.join(sorted(unknown))}")
    rules = [_rule(r, i, False) for i, r in enumerate(doc.get("rules") or [])]
    external = [_rule(r, i, True) for i, r in enumerate(doc.get("externalRules") or [])]
    return rules, external


# -- discovery: the metrics the series make -------------------------------------------------------

@dataclass
class Metric:
    """One metric as the API lists it: its rule, the series behind it and the labels that
    name each resource it is available for."""
    name: str
    rule: Rule
    series: str
    resources: dict[GroupResource, str] = field(default_factory=dict)


def discover(rule: Rule, series: Iterable[dict[str, str]], mapper: Mapper, into: dict[str, Metric]) -> None:
    """Add what ``series`` (label sets as ``/api/v1/series`` lists them) make under ``rule``
    to ``into`` (metric name -> Metric; a name a former rule made stays that rule's, as
    prometheus-adapter's first match wins)."""
    for s in series:
        name = s.get("__name__", "")
        if not name or not rule.passes(name):
            continue
        metric = rule.metric_name(name)
        if not metric:
            continue
        resources = rule.resource_labels((k for k in s if k != "__name__"), mapper)
        if not rule.external and not resources:
            continue  # a custom metric must describe some object
        cur = into.get(metric)
        if cur is None:
            into[metric] = Metric(metric, rule, name, resources)
        elif cur.rule is rule and cur.series == name:
            for gr, label in resources.items():
                cur.resources.setdefault(gr, label)


# -- queries ------------------------------------------------------------------------------------

_META = set("\\.+*?()|[]{}^$")


def quote_meta(s: str) -> str:
    """Go's ``regexp.QuoteMeta`` (what PromQL's RE2 reads literally)."""
    return "".join("\\" + c if c in _META else c for c in s)


def _promql_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def selector_matchers(sel: LabelSelector) -> list[str]:
    """A Kubernetes label selector as PromQL label matchers."""
    out = []
    for r in sel.requirements:
        out.append(_matcher(r))
    return out


_PROM_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _matcher(r: Requirement) -> str:
    op, k = r.op, r.key
    if not _PROM_LABEL.fullmatch(k):
        raise ValueError(f"label {k!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)")
    if op in ("=", "=="):
        return f"{k}={_promql_string(r.values[0])}"
    if op == "!=":
        return f"{k}!={_promql_string(r.values[0])}"
    if op == "in":
        return f"{k}=~{_promql_string('|'.join(quote_meta(v) for v in r.values))}"
    if op == "notin":
        return f"{k}!~{_promql_string('|'.join(quote_meta(v) for v in r.values))}"
    if op == "exists":
        return f'{k}!=""'
    if op in ("!", "doesnotexist"):
        return f'{k}=""'
    # gt / lt have no PromQL matcher: refuse rather than ignore
    raise ValueError(f"label selector operator {op!r} cannot be expressed as a Prometheus label matcher")


def render(rule: Rule, series: str, matchers: list[str], group_by: str) -> str:
    values = {".Series": series, ".LabelMatchers": ",".join(matchers), ".GroupBy": group_by}
    return _ACTION.sub(lambda m: values[m.group(1).strip()], rule.metrics_query)


def object_query(metric: Metric, gr: GroupResource, namespace: str | None, names: list[str],
                 metric_selector: LabelSelector) -> tuple[str, str]:
    """(PromQL, the label whose values name the objects) for ``names`` of ``gr`` (in
    ``namespace`` when it is namespaced)."""
    label = metric.resources[gr]
    matchers = []
    if namespace is not None and gr != NAMESPACES:
        ns_label = metric.resources.get(NAMESPACES)
        if ns_label is None:
            raise LookupError(f"metric {metric.name} has no namespace label")
        matchers.append(f"{ns_label}={_promql_string(namespace)}")
    if len(names) == 1:
        matchers.append(f"{label}={_promql_string(names[0])}")
    else:
        matchers.append(f"{label}=~{_promql_string('|'.join(quote_meta(n) for n in names))}")
    matchers.extend(selector_matchers(metric_selector))
    return render(metric.rule, metric.series, matchers, label), label


def external_query(metric: Metric, namespace: str | None, selector: LabelSelector) -> str:
    matchers = []
    ns_label = metric.resources.get(NAMESPACES)
    if namespace is not None and ns_label is not None:
        matchers.append(f"{ns_label}={_promql_string(namespace)}")
    matchers.extend(selector_matchers(selector))
    return render(metric.rule, metric.series, matchers, "")


def quantity(value: str | float) -> str | None:
    """A sample's value as prometheus-adapter writes it (milli-units, ``NewMilliQuantity``);
    None for NaN and infinities (no value to give)."""
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return None
    return format_quantity(Fraction(int(v * 1000.0), 1000))


Clock = Callable[[], float]
