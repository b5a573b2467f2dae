"""Discovery documents, CRD -> ResourceInfo mapping and CRD checks, kubeconfig contents."""

from __future__ import annotations

import pytest
import yaml

from controlplane.apiserver.discovery import documents as discovery
from controlplane.apiserver.meta import errors
from controlplane.apiserver.server.crds import infos_for
from controlplane.apiserver.strategy.builtins import builtin_registry
from controlplane.apiserver.strategy.customresourcedefinition import check_servable
from controlplane.kubeconfig import write_kubeconfig

REG = builtin_registry()


def _crd(**over) -> dict:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                    "versions": [
                        {"name": "v1beta1", "served": True, "storage": False,
                         "schema": {"openAPIV3Schema": {"type": "object"}}},
                        {"name": "v1", "served": True, "storage": True,
                         "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.n",
                                                                  "statusReplicasPath": ".status.n"}},
                         "additionalPrinterColumns": [{"name": "N", "type": "integer", "jsonPath": ".spec.n"}],
                         "schema": {"openAPIV3Schema": {"type": "object"}}},
                        {"name": "v0", "served": False, "storage": False,
                         "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    crd["spec"].update(over)
    return crd


def test_group_list_and_resource_lists() -> None:
    groups = {g["name"]: g for g in discovery.api_group_list(REG)["groups"]}
    assert {"apps", "batch", "coordination.k8s.io", "apiextensions.k8s.io"} <= set(groups)
    assert groups["apps"]["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    core = {r["name"]: r for r in discovery.api_resource_list(REG, "", "v1")["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and "all" in core["pods"]["categories"]
    assert core["pods/binding"]["verbs"] == ["create"] and core["pods/status"]["verbs"] == ["get", "patch", "update"]
    assert core["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
    assert core["pods/ephemeralcontainers"]["kind"] == "Pod"
    assert core["namespaces"]["namespaced"] is False and "deletecollection" not in core["namespaces"]["verbs"]
    apps = {r["name"]: r for r in discovery.api_resource_list(REG, "apps", "v1")["resources"]}
    assert apps["deployments/scale"]["group"] == "autoscaling" and apps["deployments/scale"]["kind"] == "Scale"
    assert discovery.api_resource_list(REG, "nope", "v1") is None


def test_crd_infos_per_served_version() -> None:
    infos = {i.version: i for i in infos_for(_crd())}
    assert set(infos) == {"v1beta1", "v1"}
    v1 = infos["v1"]
    assert v1.is_custom and v1.namespaced and v1.storage_version == "v1" and infos["v1beta1"].storage_version == "v1"
    assert v1.subresources == {"status", "scale"} and v1.scale["specReplicasPath"] == ".spec.n"
    assert v1.printer_columns[0]["name"] == "N" and v1.short_names == ("wd",) and v1.list_kind == "WidgetList"
    reg = builtin_registry()
    for i in infos.values():
        reg.add(i)
    assert reg.group_versions()["example.com"] == ["v1", "v1beta1"]  # the first is the preferred one


@pytest.mark.parametrize("over,field", [
    ({"group": "nodots"}, "spec.group"),
    ({"scope": "Galaxy"}, "spec.scope"),
    ({"names": {"plural": "Widgets", "kind": "Widget"}}, "spec.names.plural"),
    ({"versions": []}, "spec.versions"),
], ids=["group", "scope", "plural", "versions"])
def test_crd_validation(over: dict, field: str) -> None:
    with pytest.raises(errors.ApiError) as e:
        check_servable(_crd(**over))
    assert e.value.code == 422
    assert any(c["field"] == field for c in e.value.details["causes"])


def test_kubeconfig(tmp_path) -> None:
    path = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1234")
    cfg = yaml.safe_load(path.read_text())
    assert cfg["clusters"][0]["cluster"]["server"] == "http://127.0.0.1:1234"
    assert cfg["current-context"] == cfg["contexts"][0]["name"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
