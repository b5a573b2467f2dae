"""A Job's generated selector (``generateSelectorIfNeeded`` at create) and its validation
(``ValidateGeneratedSelector``) with kube-apiserver's causes: what the user may leave out, what
is refused as "`selector` not auto-generated", and ``manualSelector``'s way out."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.discovery.registry import Registry
from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.apiserver.strategy.job import JobStrategy
from controlplane.apiserver.validation.batch import job as validate_job

UID = "6c1a0b52-8d3e-4d59-9a1a-2f6d2f1a0c11"
GEN = {"job-name": "j", "batch.kubernetes.io/job-name": "j", "controller-uid": UID,
       "batch.kubernetes.io/controller-uid": UID}


def _job(**spec: Any) -> dict[str, Any]:
    template = spec.pop("template", {})
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "uid": UID},
            "spec": {"template": {**template, "spec": {"restartPolicy": "Never",
                                                       "containers": [{"name": "c", "image": "busybox"}]}},
                     **spec}}


def _created(obj: dict[str, Any]) -> dict[str, Any]:
    registry: Registry = builtin_registry()
    info = registry.get("batch", "v1", "jobs")
    s = JobStrategy()
    s.prepare_for_create(info, obj)
    return s.default(obj)


CASES = [
    ("generated", _job(), {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}, GEN, []),
    ("template labels kept", _job(template={"metadata": {"labels": {"app": "a"}}}),
     {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}, {**GEN, "app": "a"}, []),
    ("a selector of the user's", _job(selector={"matchLabels": {"app": "a"}},
                                      template={"metadata": {"labels": {"app": "a"}}}),
     {"matchLabels": {"app": "a", "batch.kubernetes.io/controller-uid": UID}}, {**GEN, "app": "a"},
     [("FieldValueInvalid", "spec.selector", "`selector` not auto-generated")]),
    ("a job-name label of the user's", _job(template={"metadata": {"labels": {"job-name": "other"}}}),
     {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}, {**GEN, "job-name": "other"},
     [("FieldValueInvalid", "spec.template.metadata.labels[job-name]", "must be 'j'")]),
    ("manualSelector", _job(manualSelector=True, selector={"matchLabels": {"app": "a"}},
                            template={"metadata": {"labels": {"app": "a"}}}),
     {"matchLabels": {"app": "a"}}, {"app": "a"}, []),
]


@pytest.mark.parametrize("name,obj,selector,labels,causes", CASES, ids=[c[0] for c in CASES])
def test_generated_selector(name, obj, selector, labels, causes):
    job = _created(obj)
    assert job["spec"]["selector"] == selector
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    errs = Errors()
    validate_job(job, errs, False, {})
    got = [(c["reason"], c["field"], c["message"].split(": ", 1)[0] if c["message"].startswith("Invalid value")
            else c["message"]) for c in errs.causes]
    want = [(r, f, "Invalid value") for r, f, _ in causes]
    assert got == want, errs.causes
    for (_, _, detail), cause in zip(causes, errs.causes):
        assert cause["message"].endswith(detail), cause


def test_an_update_keeps_what_create_generated():
    job = _created(_job())
    errs = Errors()
    validate_job(job, errs, True, job)
    assert errs.causes == []
