"""ReplicationController and CronJob in the apiserver: served where Kubernetes serves them,
their strategies' defaults, validation with Kubernetes' messages, table columns, the RC's Scale."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from controlplane.apiserver.endpoints.subresources import to_scale
from controlplane.apiserver.meta.errors import ApiError
from controlplane.apiserver.printing.tables import to_table
from controlplane.apiserver.validation.objects import validate
from tests.unit.apiserver_kinds import REGISTRY, apply_defaults

RC = ("", "v1", "ReplicationController")
CJ = ("batch", "v1", "CronJob")
NOW = datetime(2026, 1, 5, 12, 0, 0, tzinfo=timezone.utc)


def rc(**spec: Any) -> dict:
    base = {"template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
    return {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "web", "namespace": "d"},
            "spec": {**base, **spec}}


def cj(name: str = "tick", **spec: Any) -> dict:
    base = {"schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}],
                                                           "restartPolicy": "OnFailure"}}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "d"},
            "spec": {**base, **spec}}


def test_served_with_kubernetes_names() -> None:
    rcs = REGISTRY.get("", "v1", "replicationcontrollers")
    cjs = REGISTRY.get("batch", "v1", "cronjobs")
    assert rcs is not None and rcs.short_names == ("rc",) and rcs.subresources == {"status", "scale"}
    assert cjs is not None and cjs.short_names == ("cj",) and cjs.subresources == {"status"}
    assert "all" in rcs.categories and "all" in cjs.categories
    assert rcs.strategy.tracks_generation and cjs.strategy.tracks_generation


def test_rc_defaults_selector_labels_and_replicas_from_the_template() -> None:
    out = apply_defaults(rc(), RC)
    assert out["spec"]["selector"] == {"app": "web"} and out["metadata"]["labels"] == {"app": "web"}
    assert out["spec"]["replicas"] == 1
    assert out["spec"]["template"]["spec"]["restartPolicy"] == "Always"  # pod template defaults
    kept = apply_defaults(rc(selector={"app": "web"}, replicas=0), RC)
    assert kept["spec"]["replicas"] == 0 and kept["spec"]["selector"] == {"app": "web"}


def test_cronjob_defaults() -> None:
    spec = apply_defaults(cj(), CJ)["spec"]
    assert (spec["concurrencyPolicy"], spec["suspend"], spec["successfulJobsHistoryLimit"],
            spec["failedJobsHistoryLimit"]) == ("Allow", False, 3, 1)
    assert "startingDeadlineSeconds" not in spec and "timeZone" not in spec
    assert spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in spec["jobTemplate"]["spec"]  # a Job's own defaults are the Job's
    explicit = apply_defaults(cj(concurrencyPolicy="Forbid", suspend=True, successfulJobsHistoryLimit=0), CJ)["spec"]
    assert (explicit["concurrencyPolicy"], explicit["suspend"], explicit["successfulJobsHistoryLimit"]) == \
        ("Forbid", True, 0)


def _causes(obj: dict, gvk: tuple[str, str, str], old: dict | None = None) -> list[tuple[str, str]]:
    obj = apply_defaults(obj, gvk)
    try:
        validate(obj, gvk, strict=True, is_update=old is not None, old=apply_defaults(old, gvk) if old else None)
    except ApiError as e:
        assert e.code == 422, e.message
        return [(c["field"], c["message"]) for c in e.details["causes"]]
    return []


@pytest.mark.parametrize("spec,want", [
    ({}, []),
    ({"selector": {"app": "db"}},
     [("spec.template.metadata.labels",
       'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`')]),
    ({"replicas": -1}, [("spec.replicas", "Invalid value: -1: must be greater than or equal to 0")]),
    ({"template": {"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}},
     [("spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"')]),
    ({"template": {"metadata": {"labels": {"app": "web"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}], "activeDeadlineSeconds": 5}}},
     [("spec.template.spec.activeDeadlineSeconds",
       "Forbidden: activeDeadlineSeconds in ReplicationController is not Supported")]),
    ({"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
     [("spec.selector", "Required value")]),
], ids=["valid", "selector-mismatch", "negative-replicas", "restart-never", "active-deadline", "no-selector"])
def test_rc_validation(spec: dict, want: list) -> None:
    assert _causes(rc(**spec), RC) == want


@pytest.mark.parametrize("name,spec,want", [
    ("tick", {}, []),
    ("tick", {"schedule": "@hourly", "timeZone": "Europe/Berlin", "startingDeadlineSeconds": 30}, []),
    ("tick", {"schedule": "* * * *"},
     [("spec.schedule", 'Invalid value: "* * * *": expected exactly 5 fields, found 4: [* * * *]')]),
    ("tick", {"schedule": "61 * * * *"},
     [("spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61')]),
    ("tick", {"schedule": "@sometimes"}, [("spec.schedule", 'Invalid value: "@sometimes": unrecognized descriptor: '
                                                            "@sometimes")]),
    ("tick", {"schedule": ""}, [("spec.schedule", "Required value")]),
    ("tick", {"schedule": "TZ=UTC 0 * * * *"},
     [("spec.schedule", 'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone '
                        "field instead")]),
    ("tick", {"timeZone": "Mars/Olympus_Mons"},
     [("spec.timeZone", 'Invalid value: "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons')]),
    ("tick", {"timeZone": "../etc/passwd"},
     [("spec.timeZone", 'Invalid value: "../etc/passwd": unknown time zone ../etc/passwd')]),
    ("tick", {"timeZone": ""}, [("spec.timeZone", 'Invalid value: "": timeZone must be nil or non-empty string')]),
    ("tick", {"concurrencyPolicy": "Sometimes"},
     [("spec.concurrencyPolicy", 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"')]),
    ("tick", {"startingDeadlineSeconds": -1},
     [("spec.startingDeadlineSeconds", "Invalid value: -1: must be greater than or equal to 0")]),
    ("tick", {"failedJobsHistoryLimit": -2},
     [("spec.failedJobsHistoryLimit", "Invalid value: -2: must be greater than or equal to 0")]),
    ("tick", {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}}},
     [("spec.jobTemplate.spec.template.spec.restartPolicy",
       'Unsupported value: "Always": supported values: "OnFailure", "Never"')]),
    ("tick", {"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
        "metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "b"}], "restartPolicy": "Never"}}}}},
     [("spec.jobTemplate.spec.selector",
       'Invalid value: {"matchLabels": {"a": "b"}}: `selector` will be auto-generated')]),
    ("x" * 53, {}, [("metadata.name", f'Invalid value: "{"x" * 53}": must be no more than 52 characters')]),
    ("tick", {"jobTemplate": {"spec": {"completionMode": "Sharded", "template": {
        "spec": {"containers": [{"name": "c", "image": "b"}], "restartPolicy": "Never"}}}}},
     [("spec.jobTemplate.spec.completionMode", 'Unsupported value: "Sharded": supported values: "NonIndexed", '
                                               '"Indexed"')]),
    ("tick", {"jobTemplate": {"spec": {"completionMode": "Indexed", "parallelism": 2, "template": {
        "spec": {"containers": [{"name": "c", "image": "b"}], "restartPolicy": "Never"}}}}},
     [("spec.jobTemplate.spec.completions", "Required value: when completion mode is Indexed")]),
    ("tick", {"jobTemplate": {"spec": {"completionMode": "Indexed", "completions": 5, "parallelism": 100001,
                                       "template": {"spec": {"containers": [{"name": "c", "image": "b"}],
                                                             "restartPolicy": "Never"}}}}},
     [("spec.jobTemplate.spec.parallelism",
       "Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed")]),
], ids=["valid", "valid-zone-deadline", "four-fields", "minute-61", "descriptor", "empty", "tz-in-schedule",
        "unknown-zone", "zone-path", "empty-zone", "policy", "deadline", "history", "restart-always",
        "template-selector", "name-too-long", "completion-mode", "indexed-without-completions",
        "indexed-parallelism"])
def test_cronjob_validation(name: str, spec: dict, want: list) -> None:
    assert _causes(cj(name, **spec), CJ) == want


def test_cronjob_update_keeps_a_tz_schedule_and_a_long_name() -> None:
    old = cj("y" * 60, schedule="TZ=UTC 0 * * * *")
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    assert _causes(new, CJ, old=old) == []  # names over 52 and TZ= are kept on update (created before)
    new["spec"]["timeZone"] = "UTC"
    assert _causes(new, CJ, old=old) == [
        ("spec.schedule", 'Invalid value: "TZ=UTC 0 * * * *": cannot use both timeZone field and TZ or CRON_TZ in '
                          "schedule")]


def test_cronjob_invalid_message_as_kubectl_shows_it() -> None:
    obj = apply_defaults(cj("bad", schedule="* * * *"), CJ)
    with pytest.raises(ApiError) as e:
        validate(obj, CJ, strict=True)
    assert e.value.message == ('CronJob.batch "bad" is invalid: spec.schedule: Invalid value: "* * * *": '
                               "expected exactly 5 fields, found 4: [* * * *]")


def _ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_rc_table() -> None:
    info = REGISTRY.get("", "v1", "replicationcontrollers")
    obj = apply_defaults(rc(replicas=3), RC)
    obj["metadata"]["creationTimestamp"] = _ts(300)
    obj["status"] = {"replicas": 3, "readyReplicas": 2}
    table = to_table(info, [obj], now=NOW)
    cols = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert cols == ["Name", "Desired", "Current", "Ready", "Age"]
    assert table["rows"][0]["cells"] == ["web", 3, 3, 2, "5m", "c", "busybox", "app=web"]


@pytest.mark.parametrize("spec,status,cells", [
    ({}, {}, ["tick", "*/1 * * * *", "<none>", "False", 0, "<none>", "10m"]),
    ({"timeZone": "Europe/Berlin", "suspend": True}, {"active": [{"name": "tick-1"}], "lastScheduleTime": _ts(30)},
     ["tick", "*/1 * * * *", "Europe/Berlin", "True", 1, "30s", "10m"]),
], ids=["fresh", "active"])
def test_cronjob_table(spec: dict, status: dict, cells: list) -> None:
    info = REGISTRY.get("batch", "v1", "cronjobs")
    obj = apply_defaults(cj(**spec), CJ)
    obj["metadata"]["creationTimestamp"] = _ts(600)
    obj["status"] = status
    table = to_table(info, [obj], now=NOW)
    cols = [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0]
    assert cols == ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age"]
    assert table["rows"][0]["cells"][:7] == cells
    assert table["rows"][0]["cells"][7:] == ["c", "busybox", "<none>"]


def test_rc_scale_view() -> None:
    info = REGISTRY.get("", "v1", "replicationcontrollers")
    obj = apply_defaults(rc(replicas=4), RC)
    obj["metadata"].update(resourceVersion="3", uid="u")
    obj["status"] = {"replicas": 2}
    sc = to_scale(info, obj)
    assert sc["spec"] == {"replicas": 4} and sc["status"] == {"replicas": 2, "selector": "app=web"}
