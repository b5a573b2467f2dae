"""KubeSchedulerConfiguration-style profiles: ``plugins.<extensionPoint>.enabled/disabled``
merged with kube-scheduler's default plugins (``schedulers/profiles/merge.py``), as
``mergePluginSet`` and ``expandMultiPointPlugins`` do: what runs at each point, in which order,
with which weights; the errors kube-scheduler gives for profiles it refuses."""

from __future__ import annotations

import pytest

from schedulers.framework.framework import Framework
from schedulers.framework.profile import build_profile
from schedulers.profiles.loader import load_profile_configs, parse_profile

DEFAULT_SCORE = ("TaintToleration", "NodeAffinity", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity",
                 "NodeResourcesBalancedAllocation", "ImageLocality")


def framework(plugins: dict, **doc) -> Framework:
    return Framework(build_profile(parse_profile({"schedulerName": "k", "plugins": plugins, **doc})))


def names(fw: Framework, attr: str) -> tuple[str, ...]:
    return tuple(p.name for p in getattr(fw, attr))


def test_empty_plugins_is_the_default_scheduler_profile():
    """No change asked: every point runs what the shipped default-scheduler profile runs."""
    ours = framework({})
    shipped = Framework(build_profile(load_profile_configs()["default-scheduler"]))
    for attr in ("pre_filters", "filters", "post_filters", "pre_scores", "reservers", "pre_binders", "binders"):
        assert names(ours, attr) == names(shipped, attr), attr
    assert [(p.name, w) for p, w in ours.scorers] == [(p.name, w) for p, w in shipped.scorers]
    assert ours.queue_sort.name == shipped.queue_sort.name == "PrioritySort"


# (id, plugins, attribute of the Framework, expected names, or expected (name, weight) for scorers)
CASES = [
    ("multiPoint disabled: gone from every point", {"multiPoint": {"disabled": [{"name": "NodeAffinity"}]}},
     "filters", ("NodeUnschedulable", "NodeName", "TaintToleration", "NodePorts", "NodeResourcesFit", "GpuShare",
                 "VolumeBinding", "PodTopologySpread", "InterPodAffinity")),
    ("score disabled: still filters", {"score": {"disabled": [{"name": "TaintToleration"}]}},
     "filters", ("NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit",
                 "GpuShare", "VolumeBinding", "PodTopologySpread", "InterPodAffinity")),
    ("score disabled: not scored", {"score": {"disabled": [{"name": "TaintToleration"}]}},
     "scorers", [(n, w) for n, w in zip(DEFAULT_SCORE, (3, 2, 1, 2, 2, 1, 1)) if n != "TaintToleration"]),
    ('score disabled "*", one enabled', {"score": {"disabled": [{"name": "*"}],
                                                   "enabled": [{"name": "NodeResourcesFit", "weight": 5}]}},
     "scorers", [("NodeResourcesFit", 5)]),
    ("an explicit score entry overrides: first, its weight", {"score": {"enabled": [{"name": "ImageLocality",
                                                                                     "weight": 7}]}},
     "scorers", [("ImageLocality", 7), *[(n, w) for n, w in zip(DEFAULT_SCORE, (3, 2, 1, 2, 2, 1))]]),
    ("multiPoint re-configured in place, weight 0 is 1", {"multiPoint": {"enabled": [{"name": "NodeAffinity",
                                                                                      "weight": 0}]}},
     "scorers", [(n, w) for n, w in zip(DEFAULT_SCORE, (3, 1, 1, 2, 2, 1, 1))]),
    ("a new plugin at multiPoint goes last", {"multiPoint": {"enabled": [{"name": "Random", "weight": 4}]}},
     "scorers", [*[(n, w) for n, w in zip(DEFAULT_SCORE, (3, 2, 1, 2, 2, 1, 1))], ("Random", 4)]),
    ('multiPoint disabled "*": only what is enabled', {"multiPoint": {
        "disabled": [{"name": "*"}],
        "enabled": [{"name": "PrioritySort"}, {"name": "NodeResourcesFit"}, {"name": "DefaultBinder"}]}},
     "filters", ("NodeResourcesFit",)),
    ("preFilter disabled: the filter still runs", {"preFilter": {"disabled": [{"name": "*"}]}},
     "pre_filters", ()),
    ("bind replaced at its point", {"bind": {"disabled": [{"name": "DefaultBinder"}],
                                             "enabled": [{"name": "DefaultBinder"}]}},
     "binders", ("DefaultBinder",)),
    ("postFilter disabled: no preemption", {"postFilter": {"disabled": [{"name": "DefaultPreemption"}]}},
     "post_filters", ()),
]


@pytest.mark.parametrize("plugins,attr,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_merge(plugins, attr, want):
    fw = framework(plugins)
    got = [(p.name, w) for p, w in fw.scorers] if attr == "scorers" else names(fw, attr)
    assert got == want


ERRORS = [
    ("queueSort disabled", {"queueSort": {"disabled": [{"name": "PrioritySort"}]}}, "no queue sort plugin is enabled"),
    ('multiPoint disabled "*"', {"multiPoint": {"disabled": [{"name": "*"}]}}, "no queue sort plugin is enabled"),
    ("bind disabled at its point", {"bind": {"disabled": [{"name": "DefaultBinder"}]},
                                    "multiPoint": {"enabled": [{"name": "DefaultBinder"}]}},
     "at least one bind plugin is needed"),
    ("bind disabled", {"multiPoint": {"disabled": [{"name": "DefaultBinder"}]}}, "at least one bind plugin is needed"),
    ("not that point's", {"filter": {"enabled": [{"name": "ImageLocality"}]}},
     'plugin "ImageLocality" does not extend FilterPlugin plugin'),
    ("twice at a point", {"score": {"enabled": [{"name": "Random"}, {"name": "Random"}]}},
     'plugin "Random" already registered as "ScorePlugin"'),
    ("twice at multiPoint", {"multiPoint": {"enabled": [{"name": "Random"}, {"name": "Random"}]}},
     'plugin "Random" already registered as "ScorePlugin"'),
    ("unknown point", {"scoring": {"enabled": [{"name": "Random"}]}}, "unknown extension point"),
    ("unknown plugin", {"score": {"enabled": [{"name": "NoSuchPlugin"}]}}, "unknown scheduler plugin"),
]


@pytest.mark.parametrize("plugins,message", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_refused(plugins, message):
    with pytest.raises((ValueError, KeyError), match=message):
        parse_profile({"schedulerName": "k", "plugins": plugins})


def test_plugin_config_args_and_duplicates():
    fw = framework({}, pluginConfig=[{"name": "NodeResourcesFit", "args": {"scoringStrategy": {
        "type": "MostAllocated", "resources": [{"name": "cpu", "weight": 1}]}}}])
    fit = next(p for p in fw.filters if p.name == "NodeResourcesFit")
    assert fit.strategy == "MostAllocated" and fit.resources == [("cpu", 1)]
    with pytest.raises(ValueError, match='Duplicate value: "NodeResourcesFit"'):
        parse_profile({"schedulerName": "k", "plugins": {}, "pluginConfig": [{"name": "NodeResourcesFit"}] * 2})


def test_a_whole_kube_scheduler_configuration_file(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("""apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
profiles:
  - schedulerName: lean
    plugins:
      score:
        disabled: [{name: "*"}]
  - schedulerName: own-pct
    percentageOfNodesToScore: 70
    plugins:
      multiPoint:
        disabled: [{name: ImageLocality}]
""")
    cfgs = load_profile_configs([f])
    assert cfgs["lean"].percentage_of_nodes_to_score == 30 and cfgs["own-pct"].percentage_of_nodes_to_score == 70
    assert Framework(build_profile(cfgs["lean"])).scorers == []
    assert "ImageLocality" not in [n for n, _, _ in cfgs["own-pct"].plugins]


def test_the_short_form_is_unchanged():
    cfg = parse_profile({"schedulerName": "s", "plugins": [{"name": "NodeResourcesFit"}]})
    assert [n for n, _, _ in cfg.plugins] == ["PrioritySort", "NodeResourcesFit", "DefaultBinder"]
    assert cfg.points is None
