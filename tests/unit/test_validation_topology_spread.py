"""``spec.topologySpreadConstraints`` with kube-apiserver 1.32's causes
(``validateTopologySpreadConstraints``): maxSkew, topologyKey, whenUnsatisfiable, repeated
{topologyKey, whenUnsatisfiable}, minDomains, the node inclusion policies, matchLabelKeys."""

from __future__ import annotations

from typing import Any

import pytest

from controlplane.apiserver.meta.names import Errors
from controlplane.apiserver.validation.pods import validate_pod_spec

P = "spec.topologySpreadConstraints"


def c(**kw: Any) -> dict[str, Any]:
    return {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "a"}}, **kw}


CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str, str]]]] = [
    ("valid, every field", [c(minDomains=2, nodeAffinityPolicy="Ignore", nodeTaintsPolicy="Honor",
                              matchLabelKeys=["pod-template-hash"]), c(whenUnsatisfiable="ScheduleAnyway")], []),
    ("maxSkew 0", [c(maxSkew=0)], [("FieldValueInvalid", f"{P}[0].maxSkew", "Invalid value: 0: must be greater than zero")]),
    ("maxSkew negative", [c(maxSkew=-1)],
     [("FieldValueInvalid", f"{P}[0].maxSkew", "Invalid value: -1: must be greater than zero")]),
    ("no topologyKey", [c(topologyKey="")], [("FieldValueRequired", f"{P}[0].topologyKey", "Required value: can not be empty")]),
    ("whenUnsatisfiable", [c(whenUnsatisfiable="Sometimes")],
     [("FieldValueNotSupported", f"{P}[0].whenUnsatisfiable",
       'Unsupported value: "Sometimes": supported values: "DoNotSchedule", "ScheduleAnyway"')]),
    ("repeated pair: reported on the first", [c(), c(maxSkew=2), c(whenUnsatisfiable="ScheduleAnyway")],
     [("FieldValueDuplicate", f"{P}[0].{{topologyKey, whenUnsatisfiable}}", 'Duplicate value: "{zone, DoNotSchedule}"')]),
    ("minDomains 0", [c(minDomains=0)], [("FieldValueInvalid", f"{P}[0].minDomains", "Invalid value: 0: must be greater than zero")]),
    ("minDomains with ScheduleAnyway", [c(minDomains=0, whenUnsatisfiable="ScheduleAnyway")],
     [("FieldValueInvalid", f"{P}[0].minDomains", "Invalid value: 0: must be greater than zero"),
      ("FieldValueInvalid", f"{P}[0].minDomains",
       "Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway")]),
    ("inclusion policies", [c(nodeAffinityPolicy="Always", nodeTaintsPolicy="honor")],
     [("FieldValueNotSupported", f"{P}[0].nodeAffinityPolicy", 'Unsupported value: "Always": supported values: "Honor", "Ignore"'),
      ("FieldValueNotSupported", f"{P}[0].nodeTaintsPolicy", 'Unsupported value: "honor": supported values: "Honor", "Ignore"')]),
    ("matchLabelKeys without labelSelector", [c(labelSelector=None, matchLabelKeys=["k"])],
     [("FieldValueForbidden", f"{P}[0].matchLabelKeys", "Forbidden: must not be specified when labelSelector is not set")]),
    ("matchLabelKeys also in the selector",
     [c(labelSelector={"matchLabels": {"app": "a"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
        matchLabelKeys=["app", "tier", "ok"])],
     [("FieldValueInvalid", f"{P}[0].matchLabelKeys[0]", 'Invalid value: "app": exists in both matchLabelKeys and labelSelector'),
      ("FieldValueInvalid", f"{P}[0].matchLabelKeys[1]", 'Invalid value: "tier": exists in both matchLabelKeys and labelSelector')]),
    ("matchLabelKeys: not a label name", [c(matchLabelKeys=["-bad"])],
     [("FieldValueInvalid", f"{P}[0].matchLabelKeys[0]",
       "Invalid value: \"-bad\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
       "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
       "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")]),
]


@pytest.mark.parametrize("constraints,causes", [x[1:] for x in CASES], ids=[x[0] for x in CASES])
def test_topology_spread_causes(constraints, causes):
    errs = Errors()
    validate_pod_spec({"containers": [{"name": "c", "image": "i"}], "topologySpreadConstraints": constraints},
                      "spec", errs)
    assert [(x["reason"], x["field"], x["message"]) for x in errs.causes] == causes
