"""The metrics adapter's rules (prometheus-adapter's configuration): loading and its errors,
naming, discovery from series label sets, the PromQL built for a request, quantities."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controlplane.machinery.selectors import parse_label_selector
from controlplane.metrics.adapter import rules as rl

REPO = Path(__file__).resolve().parents[2]
PODS, NAMESPACES, DEPLOYMENTS = rl.GroupResource("", "pods"), rl.NAMESPACES, rl.GroupResource("apps", "deployments")
MAPPER = rl.Mapper(rl.CORE)


def _rule(**over) -> dict:
    base = {"seriesQuery": '{__name__=~"^x_.*"}', "resources": {"overrides": {"namespace": {"resource": "namespace"},
                                                                             "pod": {"resource": "pod"}}},
            "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"}
    base.update(over)
    return base


@pytest.mark.parametrize("doc,error", [
    ([], "must be a mapping"),
    ({"rules": [{}]}, "rules[0].seriesQuery: required"),
    ({"rules": [_rule(metricsQuery="")]}, "rules[0].metricsQuery: required"),
    ({"rules": [_rule(metricsQuery="sum(<<.Series>>) by (<<.GroupBySlice>>)")]}, "unsupported template action <<.GroupBySlice>>"),
    ({"rules": [_rule(seriesFilters=[{"is": "("}])]}, "rules[0].seriesFilters[0].is: invalid regex"),
    ({"rules": [_rule(seriesFilters=[{"maybe": "x"}])]}, "must be {is: REGEX} or {isNot: REGEX}"),
    ({"rules": [_rule(name={"matches": "[a"})]}, "rules[0].name.matches: invalid regex"),
    ({"rules": [_rule(resources={"overrides": {"pod": {}}})]}, "overrides.pod: needs a resource"),
    ({"rules": [_rule(resources={"template": "kube_<<.Kind>>"})]}, "unsupported template field <<.Kind>>"),
    ({"externalRules": [_rule(seriesQuery=7)]}, "externalRules[0].seriesQuery: required"),
    ({"rules": [], "extra": 1}, "unknown keys: extra"),
])
def test_unusable_configurations_are_refused_with_their_place(doc, error):
    with pytest.raises(rl.ConfigError) as e:
        rl.load_config(doc)
    assert error in str(e.value)


def test_the_shipped_configuration_loads():
    custom, external = rl.load_config(yaml.safe_load((REPO / "manifests/prometheus-adapter/config.yaml").read_text()))
    assert len(custom) >= 4 and len(external) >= 1


@pytest.mark.parametrize("name,series,want", [
    ({}, "x_requests", "x_requests"),  # ^(.*)$ and $1
    ({"matches": "^x_(.*)_total$"}, "x_requests_total", "requests"),
    ({"matches": "^x_(.*)_total$"}, "x_requests", None),
    ({"matches": "^x_.*_total$"}, "x_requests_total", "x_requests_total"),  # no group: $0
    ({"matches": "^(.*)_total$", "as": "${1}_per_second"}, "x_requests_total", "x_requests_per_second"),
    ({"matches": "^(x)_(.*)$", "as": "$2_of_$1"}, "x_hits", "hits_of_x"),
])
def test_metric_names(name, series, want):
    rule = rl.load_config({"rules": [_rule(name=name)]})[0][0]
    assert rule.metric_name(series) == want


def _shipped() -> tuple[list[rl.Rule], list[rl.Rule]]:
    return rl.load_config(yaml.safe_load((REPO / "manifests/prometheus-adapter/config.yaml").read_text()))


def _discover(rules: list[rl.Rule], series: list[dict]) -> dict[str, rl.Metric]:
    out: dict[str, rl.Metric] = {}
    for r in rules:
        rl.discover(r, series, MAPPER, out)
    return out


def test_discovery_with_the_shipped_rules():
    lab = {"namespace": "default", "pod": "web-1", "container": "c", "job": "kubelet"}
    series = [{"__name__": "container_cpu_usage_seconds_total", **lab},
              {"__name__": "container_network_receive_bytes_total", **lab, "container": ""},
              {"__name__": "container_memory_working_set_bytes", **lab},
              {"__name__": "container_memory_failures_total", **lab},
              {"__name__": "http_requests_total", "namespace": "default", "pod": "web-1"},
              {"__name__": "queue_depth", "namespace": "default", "pod": "web-1"},
              {"__name__": "node_load1", "instance": "x"}]  # no object label: not a custom metric
    custom, external = _shipped()
    found = _discover(custom, series)
    assert set(found) == {"cpu_usage", "network_receive_bytes", "memory_working_set_bytes", "memory_failures",
                          "http_requests_per_second", "queue_depth"}
    assert found["cpu_usage"].series == "container_cpu_usage_seconds_total"
    assert found["cpu_usage"].resources == {NAMESPACES: "namespace", PODS: "pod"}
    assert "rate(" in found["network_receive_bytes"].rule.metrics_query
    assert "rate(" not in found["queue_depth"].rule.metrics_query
    ext = _discover(external, [{"__name__": "kube_pod_status_phase", "namespace": "default", "pod": "p",
                                "phase": "Running"}])
    assert set(ext) == {"pods_by_phase"}


@pytest.mark.parametrize("template,label,want", [
    ("kube_<<.Group>>_<<.Resource>>", "kube_apps_deployment", DEPLOYMENTS),
    ("kube_<<.Group>>_<<.Resource>>", "kube__pod", PODS),
    ("<<.Resource>>", "namespace", NAMESPACES),
    ("<<.Resource>>", "deployment", DEPLOYMENTS),
    ("<<.Resource>>", "instance", None),
])
def test_resource_templates(template, label, want):
    rule = rl.load_config({"rules": [_rule(resources={"template": template})]})[0][0]
    got = rule.resource_labels([label], MAPPER)
    assert got == ({want: label} if want else {})


@pytest.mark.parametrize("names,metric_selector,want", [
    (["web-1"], "", 'sum(x_hits{namespace="default",pod="web-1"}) by (pod)'),
    (["web-1", "web.2"], "", 'sum(x_hits{namespace="default",pod=~"web-1|web\\\\.2"}) by (pod)'),
    (["a"], "code=200,verb in (GET,PUT),!debug,tier",
     'sum(x_hits{namespace="default",pod="a",code="200",debug="",tier!="",verb=~"GET|PUT"}) by (pod)'),
    (["a"], "code!=500,region notin (eu)", 'sum(x_hits{namespace="default",pod="a",code!="500",region!~"eu"}) by (pod)'),
])
def test_object_queries(names, metric_selector, want):
    rule = rl.load_config({"rules": [_rule()]})[0][0]
    metric = _discover([rule], [{"__name__": "x_hits", "namespace": "n", "pod": "p"}])["x_hits"]
    query, label = rl.object_query(metric, PODS, "default", names, parse_label_selector(metric_selector))
    assert (query, label) == (want, "pod")


def test_the_namespace_object_and_selectors_without_promql_form():
    rule = rl.load_config({"rules": [_rule()]})[0][0]
    metric = _discover([rule], [{"__name__": "x_hits", "namespace": "n", "pod": "p"}])["x_hits"]
    query, label = rl.object_query(metric, NAMESPACES, None, ["team-a"], parse_label_selector(""))
    assert (query, label) == ('sum(x_hits{namespace="team-a"}) by (namespace)', "namespace")
    with pytest.raises(ValueError, match="cannot be expressed"):
        rl.object_query(metric, PODS, "default", ["a"], parse_label_selector("replicas>2"))
    with pytest.raises(ValueError, match="not a Prometheus label name"):
        rl.object_query(metric, PODS, "default", ["a"], parse_label_selector("app.kubernetes.io/name=web"))


@pytest.mark.parametrize("namespace,selector,want", [
    ("default", "", 'sum(kube_pod_status_phase{namespace="default"}) by (phase)'),
    ("default", "phase=Pending", 'sum(kube_pod_status_phase{namespace="default",phase="Pending"}) by (phase)'),
    ("a\"b", "", 'sum(kube_pod_status_phase{namespace="a\\"b"}) by (phase)'),
])
def test_external_queries(namespace, selector, want):
    _, external = _shipped()
    metric = _discover(external, [{"__name__": "kube_pod_status_phase", "namespace": "x", "phase": "Running"}])["pods_by_phase"]
    assert rl.external_query(metric, namespace, parse_label_selector(selector)) == want


@pytest.mark.parametrize("value,want", [
    ("0.98", "980m"), ("2", "2"), ("1536", "1536"), ("0.0001", "0"), ("NaN", None), ("+Inf", None),
    ("-0.5", "-500m"), ("12.3456", "12345m"),
])
def test_quantities(value, want):
    assert rl.quantity(value) == want


@pytest.mark.parametrize("text,want", [("web-1", "web-1"), ("a.b", "a\\.b"), ("x+(y)|z", "x\\+\\(y\\)\\|z")])
def test_quote_meta(text, want):
    assert rl.quote_meta(text) == want


def test_a_configuration_file_error_names_the_file(tmp_path: Path):
    from controlplane.cmd.metrics_adapter import load_rules
    bad = tmp_path / "config.yaml"
    bad.write_text('rules:\n- seriesQuery: up\n  metricsQuery: "sum(<<.Series>>) by (<<.GroupBySlice>>)"\n')
    with pytest.raises(rl.ConfigError, match=r"config.yaml: rules\[0\].metricsQuery: unsupported template action"):
        load_rules(str(bad))
    bad.write_text("rules: [\n")
    with pytest.raises(rl.ConfigError, match="config.yaml"):
        load_rules(str(bad))
    assert load_rules(str(REPO / "manifests/prometheus-adapter/config.yaml"))[0]
