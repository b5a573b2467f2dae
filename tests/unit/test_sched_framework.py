"""Framework pieces without an API: profile loading rules, the plugin registry, node sampling,
preemption victim selection, and that a live GPU score plugin gives the simulator's scores."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from schedulers.framework import registry
from schedulers.framework.cache import Cache
from schedulers.framework.framework import Framework
from schedulers.framework.interface import Plugin
from schedulers.framework.podinfo import PodInfo
from schedulers.framework.profile import ProfileConfig, build_profile
from schedulers.gpu.policies.bestfit import BestFit
from schedulers.profiles.loader import load_profile_configs, parse_profile


def node(name, cpu="4", gpus=0, model=""):
    n = {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
         "status": {"allocatable": {"cpu": cpu, "memory": "16Gi", "pods": "110"}}}
    if gpus:
        n["status"]["allocatable"]["nvidia.com/gpu"] = str(gpus)
        n["metadata"]["labels"]["nvidia.com/gpu.product"] = model
    return n


def pod(name, cpu="1", prio=0, ann=None):
    return PodInfo.from_pod({"metadata": {"name": name, "namespace": "d", "uid": name, "annotations": ann or {}},
                             "spec": {"priority": prio, "containers": [{"name": "c", "image": "i",
                                                                        "resources": {"requests": {"cpu": cpu}}}]}})


def test_registering_a_name_twice_is_an_error():
    registry.PLUGINS.load()

    class Dup(Plugin):
        name = "NodeName"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Dup)


@pytest.mark.parametrize("doc,error", [
    ({"schedulerName": "x", "plugins": ["NodeName", "NodeName"]}, "listed twice"),
    ({"schedulerName": "x", "plugins": ["NoSuchPlugin"]}, "unknown scheduler plugin"),
    ({"plugins": ["NodeName"]}, "without schedulerName"),
])
def test_profile_errors(doc, error):
    with pytest.raises((ValueError, KeyError), match=error):
        parse_profile(doc)


def test_shipped_profiles_load():
    cfgs = load_profile_configs()
    assert {"default-scheduler", "enhanced-scheduler", "fgd-scheduler", "fifo-scheduler"} <= set(cfgs)
    default = dict((n, w) for n, w, _ in cfgs["default-scheduler"].plugins)
    assert default["TaintToleration"] == 3 and default["NodeAffinity"] == 2 and default["ImageLocality"] == 1


SHORT_NAMES = {"random": "random-scheduler", "fifo": "fifo-scheduler", "enhanced": "enhanced-scheduler",
               "dotprod": "dotprod-scheduler", "gpuclustering": "gpuclustering-scheduler",
               "gpupacking": "gpupacking-scheduler", "bestfit": "bestfit-scheduler", "fgd": "fgd-scheduler",
               "ddqn": "ddqn-scheduler"}


def test_shipped_profiles_answer_to_their_short_names():
    cfgs = load_profile_configs()
    aliases = {a: cfg.scheduler_name for cfg in cfgs.values() for a in cfg.aliases}
    assert aliases == SHORT_NAMES


@pytest.mark.parametrize("doc,queue_sort,binders", [
    ({"schedulerName": "x", "plugins": ["NodeName"]}, "PrioritySort", ["DefaultBinder"]),
    ({"schedulerName": "x", "plugins": ["DefaultBinder", "PrioritySort", "NodeName"]}, "PrioritySort",
     ["DefaultBinder"]),
], ids=["defaulted", "listed"])
def test_profiles_get_queue_sort_and_default_binder(doc, queue_sort, binders):
    cfg = parse_profile(doc)
    fw = Framework(build_profile(cfg))
    assert fw.queue_sort is not None and fw.queue_sort.name == queue_sort
    assert [p.name for p in fw.binders] == binders
    assert [n for n, _, _ in cfg.plugins].count("DefaultBinder") == 1


@pytest.mark.parametrize("docs,error", [
    ([{"schedulerName": "a", "aliases": ["x"]}, {"schedulerName": "b", "aliases": ["x"]}], "'x' of profile 'b'"),
    ([{"schedulerName": "a"}, {"schedulerName": "b", "aliases": ["a"]}], "'a' of profile 'b'"),
    ([{"schedulerName": "a"}, {"schedulerName": "a"}], "'a' of profile 'a'"),
    ([{"schedulerName": "a", "aliases": ["a"]}], "its own name"),
    ([{"schedulerName": "a", "aliases": ["x", "x"]}], "alias twice"),
    ([{"schedulerName": "a", "aliases": "x"}], "must be a list"),
], ids=["alias-twice", "alias-is-a-name", "name-twice", "own-name", "repeated", "not-a-list"])
def test_scheduler_names_are_unique(tmp_path, docs, error):
    f = tmp_path / "p.yaml"
    f.write_text(yaml.safe_dump({"profiles": [{**d, "plugins": ["NodeName"]} for d in docs]}))
    with pytest.raises(ValueError, match=error):
        load_profile_configs([f])


def test_sampling_rotates_over_feasible_nodes():
    c = Cache()
    for i in range(300):
        c.add_or_update_node(node(f"n{i:03d}"))
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {})], 0)), seed=1)
    r1 = fw.schedule(pod("a"), c)
    # max(100, 300 * 48 // 100); like kube-scheduler the search stops once that many fit
    assert r1.feasible == 144 and r1.evaluated == 144
    start = fw.next_start
    fw.schedule(pod("b"), c)
    assert fw.next_start == (start + 144) % 300


def test_preemption_picks_the_cheapest_node():
    c = Cache()
    c.add_or_update_node(node("a", cpu="2"))
    c.add_or_update_node(node("b", cpu="2"))
    c.refresh()
    c.add_pod(pod("a-low", cpu="2", prio=10), "a")
    c.add_pod(pod("b-lower", cpu="1", prio=1), "b")
    c.add_pod(pod("b-low2", cpu="1", prio=5), "b")
    cfg = ProfileConfig("t", [("NodeResourcesFit", 1, {}), ("DefaultPreemption", 1, {})])
    fw = Framework(build_profile(cfg), seed=1)
    vip = pod("vip", cpu="1", prio=100)
    res = fw.schedule(vip, c)
    assert res.node is None
    node_name, victims, _ = fw.preempt(res.cycle_state, vip, c, res.diagnosis)
    # a: victim priority 10; b: evicting only the priority-1 pod suffices -> b wins
    assert node_name == "b" and [v.name for v in victims] == ["b-lower"]
    assert c.pod_count[c.row["b"]] == 2  # the cache is restored after the what-if


def test_no_preemption_for_equal_priority():
    c = Cache()
    c.add_or_update_node(node("a", cpu="1"))
    c.refresh()
    c.add_pod(pod("peer", prio=5), "a")
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {}), ("DefaultPreemption", 1, {})])))
    p = pod("new", prio=5)
    res = fw.schedule(p, c)
    node_name, victims, msg = fw.preempt(res.cycle_state, p, c, res.diagnosis)
    assert node_name is None and msg == "0/1 nodes are available: 1 No preemption victims found for incoming pod."


def test_live_gpu_plugin_scores_like_the_simulator():
    c = Cache()
    c.add_or_update_node(node("g1", cpu="32", gpus=2, model="T4"))
    c.add_or_update_node(node("g2", cpu="32", gpus=8, model="V100"))
    c.refresh()
    c.add_pod(pod("s", cpu="4", ann={"scheduling.controlplane.io/gpu-milli": "300"}), "g2")
    p = pod("new", cpu="2", ann={"scheduling.controlplane.io/gpu-milli": "500"})
    fw = Framework(build_profile(ProfileConfig("t", [("GpuShare", 1, {}), ("BestFit", 1000, {})], 100)))
    res = fw.schedule(p, c)
    idx = np.arange(c.n)
    want = BestFit().score(c.gpu, p.gpu, idx)
    got = {x["node"]: {e["name"]: e for e in x["plugins"]}["BestFit"] for x in res.candidates}
    assert {k: v["raw"] for k, v in got.items()} == {"g1": int(want[0]), "g2": int(want[1])}
    assert {k: v["weighted"] for k, v in got.items()} == {"g1": 1000 * int(want[0]), "g2": 1000 * int(want[1])}
    assert res.node == ("g1" if want[0] > want[1] else "g2")


def labelled(name, cpu="1", prio=0, app="web"):
    p = pod(name, cpu=cpu, prio=prio)
    p.labels = {"app": app}
    return p


def budget(app, allowed, disrupted=None, ns="d"):
    return {"metadata": {"name": f"{app}-pdb", "namespace": ns}, "spec": {"selector": {"matchLabels": {"app": app}}},
            "status": {"disruptionsAllowed": allowed, "disruptedPods": disrupted or {}}}


@pytest.mark.parametrize("allowed,disrupted,violating", [
    (2, None, []),                         # two allowed: neither of the two victims violates
    (1, None, ["w2"]),                     # one allowed: the second victim of the budget violates
    (0, None, ["w1", "w2"]),
    (1, {"w1": "2026-12-07T00:00:00Z"}, []),  # w1 counted by the apiserver already: not spent again
])
def test_split_by_budget(allowed, disrupted, violating):
    from schedulers.plugins.default_preemption import split_by_budget
    victims = [labelled("w1"), labelled("w2"), labelled("x", app="other")]
    bad, good = split_by_budget(victims, [budget("web", allowed, disrupted), budget("web", 5, ns="elsewhere")])
    assert [p.name for p in bad] == violating
    assert [p.name for p in good] == [p.name for p in victims if p.name not in violating]


@pytest.mark.parametrize("nodes,pods,with_budget,without_budget", [
    # a: a low-priority pod a budget protects (none allowed); b: a higher-priority one it does
    # not: the node without a violation wins; without the budget the cheaper victim on a does
    ({"a": "2", "b": "2"}, [("a-web", "a", 1, "web"), ("b-batch", "b", 10, "batch")],
     ("b", ["b-batch"]), ("a", ["a-web"])),
    # either pod's removal makes room on a: the protected one is reprieved first though its
    # priority is the lower (by priority alone it would be the victim)
    ({"a": "3"}, [("plain", "a", 2, "batch"), ("kept", "a", 1, "web"), ("other", "a", 50, "batch")],
     ("a", ["plain"]), ("a", ["kept"])),
], ids=["node-pick", "reprieve-order"])
def test_preemption_weighs_disruption_budgets(nodes, pods, with_budget, without_budget):
    c = Cache()
    for name, cpu in nodes.items():
        c.add_or_update_node(node(name, cpu=cpu))
    c.refresh()
    for name, where, prio, app in pods:
        c.add_pod(labelled(name, cpu="1" if len(nodes) == 1 else "2", prio=prio, app=app), where)
    fw = Framework(build_profile(ProfileConfig("t", [("NodeResourcesFit", 1, {}), ("DefaultPreemption", 1, {})])))
    vip = pod("vip", cpu="1", prio=100)
    res = fw.schedule(vip, c)
    for pdbs, want in (({"d": {"web-pdb": budget("web", 0)}}, with_budget), ({}, without_budget)):
        c.pdbs = pdbs
        node_name, victims, _ = fw.preempt(res.cycle_state, vip, c, res.diagnosis)
        assert (node_name, [v.name for v in victims]) == want
