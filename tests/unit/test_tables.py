"""Server-side Table output: columns and cells as kubectl prints them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.printing.format import human_duration
from controlplane.apiserver.printing.jsonpath import find
from controlplane.apiserver.printing.tables import to_table
from controlplane.apiserver.strategy.builtins import builtin_registry

NOW = datetime(2026, 1, 2, 12, 0, 0, tzinfo=timezone.utc)
REG = builtin_registry()


def ts(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def info(group: str, plural: str) -> ResourceInfo:
    i = REG.get(group, "v1", plural)
    assert i is not None
    return i


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (200, "3m20s"), (600, "10m"),
    (3 * 3600 + 120, "3h2m"), (8 * 3600, "8h"), (47 * 3600, "47h"), (2 * 86400, "2d"),
    (2 * 86400 + 3 * 3600, "2d3h"), (30 * 86400, "30d"), (800 * 86400, "2y70d"), (-5, "<invalid>"),
])
def test_human_duration(seconds, text):
    assert human_duration(timedelta(seconds=seconds)) == text


def _pod(**status):
    return {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ts(200),
                         "resourceVersion": "7"},
            "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}],
                     "nodeName": "node-1"},
            "status": {"phase": "Pending", **status}}


def _running(ready=True, restarts=0, finished=None):
    cs = {"name": "a", "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if finished:
        cs["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": finished}}
    return cs


@pytest.mark.parametrize("status,expect", [
    ({}, ("0/2", "Pending", "0")),
    ({"phase": "Running", "containerStatuses": [_running(), _running()]}, ("2/2", "Running", "0")),
    ({"phase": "Running", "containerStatuses": [
        _running(), {"name": "b", "restartCount": 5, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ts(300)}}}]},
     ("1/2", "CrashLoopBackOff", "5 (5m ago)")),
    ({"phase": "Pending", "containerStatuses": [
        {"name": "a", "state": {"waiting": {"reason": "ContainerCreating"}}}]}, ("0/2", "ContainerCreating", "0")),
    ({"phase": "Succeeded", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}, ("0/2", "Completed", "0")),
    ({"phase": "Failed", "containerStatuses": [
        {"name": "a", "state": {"terminated": {"exitCode": 3}}}]}, ("0/2", "ExitCode:3", "0")),
    ({"phase": "Failed", "reason": "Evicted"}, ("0/2", "Evicted", "0")),
], ids=["pending", "running", "crashloop", "creating", "completed", "exitcode", "evicted"])
def test_pod_rows(status, expect):
    table = to_table(info("", "pods"), [_pod(**status)], now=NOW)
    cells = table["rows"][0]["cells"]
    assert tuple(cells[1:4]) == expect
    assert cells[0] == "web" and cells[4] == "3m20s" and cells[6] == "node-1"


def test_pod_init_and_terminating():
    p = _pod(initContainerStatuses=[{"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}])
    p["spec"]["initContainers"] = [{"name": "i", "image": "x"}]
    assert to_table(info("", "pods"), [p], now=NOW)["rows"][0]["cells"][2] == "Init:0/1"
    p["metadata"]["deletionTimestamp"] = ts(1)
    assert to_table(info("", "pods"), [p], now=NOW)["rows"][0]["cells"][2] == "Terminating"


def test_pod_table_shape():
    table = to_table(info("", "pods"), [_pod()], now=NOW)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    cols = [(c["name"], c["priority"]) for c in table["columnDefinitions"]]
    assert cols == [("Name", 0), ("Ready", 0), ("Status", 0), ("Restarts", 0), ("Age", 0),
                    ("IP", 1), ("Node", 1), ("Nominated Node", 1), ("Readiness Gates", 1)]
    obj = table["rows"][0]["object"]
    assert obj["kind"] == "PartialObjectMetadata" and obj["metadata"]["resourceVersion"] == "7"
    assert len(table["rows"][0]["cells"]) == len(table["columnDefinitions"])
    full = to_table(info("", "pods"), [_pod()], include_object="Object", now=NOW)
    assert full["rows"][0]["object"]["spec"]["nodeName"] == "node-1"
    assert "object" not in to_table(info("", "pods"), [_pod()], include_object="None", now=NOW)["rows"][0]


@pytest.mark.parametrize("group,plural,obj,cells", [
    ("apps", "deployments",
     {"metadata": {"name": "d", "creationTimestamp": ts(10)},
      "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "a"}},
               "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
      "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}},
     ["d", "2/3", 3, 2, "10s", "c", "nginx", "app=a"]),
    ("apps", "replicasets",
     {"metadata": {"name": "r", "creationTimestamp": ts(10)}, "spec": {"replicas": 2},
      "status": {"replicas": 2, "readyReplicas": 1}},
     ["r", 2, 2, 1, "10s", "", "", "<none>"]),
    ("", "nodes",
     {"metadata": {"name": "n1", "creationTimestamp": ts(86400 * 3),
                   "labels": {"node-role.kubernetes.io/control-plane": ""}},
      "spec": {"unschedulable": True},
      "status": {"conditions": [{"type": "Ready", "status": "True"}],
                 "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                 "nodeInfo": {"kubeletVersion": "v1.32.4", "osImage": "Linux",
                              "kernelVersion": "6.1", "containerRuntimeVersion": "runc://1.1"}}},
     ["n1", "Ready,SchedulingDisabled", "control-plane", "3d", "v1.32.4", "10.0.0.5", "<none>",
      "Linux", "6.1", "runc://1.1"]),
    ("", "services",
     {"metadata": {"name": "s", "creationTimestamp": ts(60)},
      "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "a"},
               "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}},
     ["s", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP,53/UDP", "60s", "app=a"]),
    ("", "endpoints",
     {"metadata": {"name": "e", "creationTimestamp": ts(1)},
      "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(5)], "ports": [{"port": 80}]}]},
     ["e", "10.0.0.0:80,10.0.0.1:80,10.0.0.2:80 + 2 more...", "1s"]),
    ("", "configmaps", {"metadata": {"name": "c", "creationTimestamp": ts(5)}, "data": {"a": "1", "b": "2"}},
     ["c", 2, "5s"]),
    ("", "secrets", {"metadata": {"name": "s", "creationTimestamp": ts(5)}, "type": "Opaque",
                     "data": {"a": "MQ=="}}, ["s", "Opaque", 1, "5s"]),
    ("", "namespaces", {"metadata": {"name": "ns", "creationTimestamp": ts(5)}, "status": {"phase": "Active"}},
     ["ns", "Active", "5s"]),
    ("", "serviceaccounts", {"metadata": {"name": "default", "creationTimestamp": ts(5)}}, ["default", 0, "5s"]),
    ("coordination.k8s.io", "leases", {"metadata": {"name": "l", "creationTimestamp": ts(5)},
                                       "spec": {"holderIdentity": "me"}}, ["l", "me", "5s"]),
    ("batch", "jobs",
     {"metadata": {"name": "j", "creationTimestamp": ts(100)}, "spec": {"completions": 3},
      "status": {"succeeded": 3, "startTime": ts(100), "completionTime": ts(40),
                 "conditions": [{"type": "Complete", "status": "True"}]}},
     ["j", "Complete", "3/3", "60s", "100s", "", "", "<none>"]),
    ("", "events",
     {"metadata": {"name": "p.1", "creationTimestamp": ts(30)}, "type": "Normal", "reason": "Started",
      "involvedObject": {"kind": "Pod", "name": "p"}, "message": "Started container",
      "source": {"component": "kubelet", "host": "n1"}, "lastTimestamp": ts(30),
      "firstTimestamp": ts(90), "count": 2},
     ["30s", "Normal", "Started", "pod/p", "", "kubelet, n1", "Started container", "90s", "2", "p.1"]),
])
def test_builtin_rows(group, plural, obj, cells):
    table = to_table(info(group, plural), [obj], now=NOW)
    assert table["rows"][0]["cells"] == cells
    assert len(table["columnDefinitions"]) == len(cells)


@pytest.mark.parametrize("conditions,deleting,status", [
    ([], False, "Running"),
    (["FailureTarget"], False, "FailureTarget"),
    (["FailureTarget", "Failed"], False, "Failed"),
    (["SuccessCriteriaMet"], False, "SuccessCriteriaMet"),
    (["SuccessCriteriaMet", "Complete"], False, "Complete"),
    (["FailureTarget"], True, "Terminating"),
    (["Suspended"], False, "Suspended"),
    (["Failed", "Complete"], False, "Complete"),  # printJob looks at Complete first
])
def test_job_status_column(conditions, deleting, status):
    md = {"name": "j", "creationTimestamp": ts(10), **({"deletionTimestamp": ts(1)} if deleting else {})}
    obj = {"metadata": md, "spec": {"completions": 1},
           "status": {"conditions": [{"type": t, "status": "True"} for t in conditions]}}
    assert to_table(info("batch", "jobs"), [obj], now=NOW)["rows"][0]["cells"][1] == status


def test_custom_resource_printer_columns():
    cr_info = ResourceInfo(group="stable.example.com", version="v1", kind="CronTab", plural="crontabs",
                           singular="crontab", namespaced=True, is_custom=True, printer_columns=(
                               {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                               {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                               {"name": "Ready", "type": "string",
                                "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                               {"name": "Image", "type": "string", "jsonPath": ".spec.image", "priority": 1},
                               {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}))
    obj = {"metadata": {"name": "c1", "creationTimestamp": ts(400)},
           "spec": {"cronSpec": "* * * * */5", "replicas": 2},
           "status": {"conditions": [{"type": "Other", "status": "False"}, {"type": "Ready", "status": "True"}]}}
    table = to_table(cr_info, [obj], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Ready", "Image", "Age"]
    assert table["columnDefinitions"][4]["priority"] == 1
    assert table["rows"][0]["cells"] == ["c1", "* * * * */5", 2, "True", None, "6m40s"]


def test_custom_resource_default_age_column():
    cr_info = ResourceInfo(group="x.io", version="v1", kind="Foo", plural="foos", singular="foo",
                           namespaced=False, is_custom=True)
    table = to_table(cr_info, [{"metadata": {"name": "f", "creationTimestamp": ts(3)}}], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["rows"][0]["cells"] == ["f", "3s"]


@pytest.mark.parametrize("path,expect", [
    (".spec.a", [1]), ("{.spec.a}", [1]), (".spec.list[0].n", ["x"]), (".spec.list[-1].n", ["y"]),
    (".spec.list[*].n", ["x", "y"]), (".spec['dotted.key']", [2]), (".spec.missing", []),
    ('.spec.list[?(@.n=="y")].v', [20]), (".spec.list[?(@.v==10)].n", ["x"]),
])
def test_jsonpath(path, expect):
    obj = {"spec": {"a": 1, "dotted.key": 2, "list": [{"n": "x", "v": 10}, {"n": "y", "v": 20}]}}
    assert find(obj, path) == expect


def test_role_binding_columns_and_subjects():
    rb = {"metadata": {"name": "dev-read", "namespace": "team-a", "creationTimestamp": ts(90)},
          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
          "subjects": [{"kind": "User", "name": "jane"}, {"kind": "Group", "name": "devs"},
                       {"kind": "ServiceAccount", "name": "dev", "namespace": "team-a"},
                       {"kind": "User", "name": "joe"}]}
    table = to_table(info("rbac.authorization.k8s.io", "rolebindings"), [rb], now=NOW)
    assert [(c["name"], c["priority"]) for c in table["columnDefinitions"]] == [
        ("Name", 0), ("Role", 0), ("Age", 0), ("Users", 1), ("Groups", 1), ("ServiceAccounts", 1)]
    assert table["rows"][0]["cells"] == ["dev-read", "Role/pod-reader", "90s", "jane, joe", "devs", "team-a:dev"]
    crb = {"metadata": {"name": "admins", "creationTimestamp": ts(90)},
           "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"}}
    assert to_table(info("rbac.authorization.k8s.io", "clusterrolebindings"), [crb], now=NOW)["rows"][0]["cells"] == [
        "admins", "ClusterRole/cluster-admin", "90s", "", "", ""]


@pytest.mark.parametrize("status, condition", [
    ({}, "Pending"),
    ({"conditions": [{"type": "Approved", "status": "True"}]}, "Approved"),
    ({"conditions": [{"type": "Approved", "status": "True"}], "certificate": "Y2VydA=="}, "Approved,Issued"),
    ({"conditions": [{"type": "Denied", "status": "True"}, {"type": "Approved", "status": "True"}]}, "Denied"),
    ({"conditions": [{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}]},
     "Approved,Failed"),
])
def test_csr_columns(status, condition):
    csr = {"metadata": {"name": "jane", "creationTimestamp": ts(30)},
           "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "kubernetes-admin",
                    "expirationSeconds": 86400, "request": "", "usages": ["client auth"]}, "status": status}
    table = to_table(info("certificates.k8s.io", "certificatesigningrequests"), [csr], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"]
    assert table["rows"][0]["cells"] == ["jane", "30s", "kubernetes.io/kube-apiserver-client", "kubernetes-admin",
                                         "24h", condition]
