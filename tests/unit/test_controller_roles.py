"""The controllers' own roles (``--use-service-account-credentials``): every controller the
controller-manager runs has a ServiceAccount, a ``system:controller:<name>`` ClusterRole and
a binding of it; each role allows what an audit of the controller's code found it writes (and
reads live, past the shared informers); it grants no write beyond that audit and what
Kubernetes' own role ships; and the controller-manager's identity still holds every one of
them (the path without the flag)."""

from __future__ import annotations

import pytest

from controlplane.apiserver.authorization import bootstrap_policy as bp
from controlplane.apiserver.authorization.attributes import Attributes
from controlplane.apiserver.authorization.rules import covers, rule_allows
from controlplane.client.clientbuilder import next_backoff, parse_expiration, refresh_delay
from controlplane.cmd.controller_manager import CONTROLLERS, service_account
from controlplane.machinery.userinfo import UserInfo

EV = [("create", "", "events"), ("patch", "", "events")]
ANY = "*"

# The audit: (verb, group, resource[/subresource][, name]) each controller sends through its own
# client (controlplane/controllers/<module>.py and the controllerutil helpers it calls:
# claim -> patch + owner GET, remove_finalizer -> GET + update, sync_history -> create/GET/update
# controllerrevisions, update_with_retry -> GET + update). Reads of the shared informers use the
# controller-manager's identity and are not here.
AUDIT: dict[str, list[tuple[str, ...]]] = {
    "clusterrole-aggregation-controller": [("update", "rbac.authorization.k8s.io", "clusterroles")],
    "cronjob-controller": [("get", "batch", "jobs"), ("create", "batch", "jobs"), ("delete", "batch", "jobs"),
                           ("patch", "batch", "cronjobs/status"), *EV],
    "certificate-controller": [
        ("create", "authorization.k8s.io", "subjectaccessreviews"),
        ("update", "certificates.k8s.io", "certificatesigningrequests/approval"),
        ("update", "certificates.k8s.io", "certificatesigningrequests/status"),
        ("approve", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client-kubelet"),
        ("approve", "certificates.k8s.io", "signers", "kubernetes.io/kubelet-serving"),
        ("sign", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client"),
        ("sign", "certificates.k8s.io", "signers", "kubernetes.io/kube-apiserver-client-kubelet"),
        ("sign", "certificates.k8s.io", "signers", "kubernetes.io/kubelet-serving"),
        ("sign", "certificates.k8s.io", "signers", "kubernetes.io/legacy-unknown")],
    "daemon-set-controller": [
        ("create", "", "pods"), ("delete", "", "pods"), ("patch", "", "pods"), ("get", "apps", "daemonsets"),
        ("update", "apps", "daemonsets/status"),
        *[(v, "apps", "controllerrevisions") for v in ("create", "get", "update", "delete", "patch")], *EV],
    "deployment-controller": [
        ("patch", "apps", "deployments"), ("patch", "apps", "deployments/status"), ("get", "apps", "deployments"),
        *[(v, "apps", "replicasets") for v in ("create", "get", "update", "delete", "patch")], *EV],
    "disruption-controller": [("get", "apps", "deployments/scale"), ("get", "apps", "statefulsets/scale"),
                              ("get", "example.com", "widgets/scale"),
                              ("update", "policy", "poddisruptionbudgets/status"), *EV],
    "endpoint-controller": [(v, "", "endpoints") for v in ("create", "update", "delete")] + EV,
    "endpointslice-controller": [(v, "discovery.k8s.io", "endpointslices") for v in ("create", "update", "delete")]
    + EV,
    "endpointslicemirroring-controller": [(v, "discovery.k8s.io", "endpointslices")
                                          for v in ("create", "update", "delete")] + EV,
    "generic-garbage-collector": [("get", "apps", "deployments"), ("patch", "", "pods"), ("update", "", "configmaps"),
                                  ("delete", "apps", "replicasets"), ("delete", "example.com", "widgets"), *EV],
    "horizontal-pod-autoscaler": [
        ("list", "metrics.k8s.io", "pods"), ("get", "custom.metrics.k8s.io", "pods"),
        ("list", "custom.metrics.k8s.io", "pods"), ("list", "external.metrics.k8s.io", "queue_length"),
        ("update", "autoscaling", "horizontalpodautoscalers/status"),
        ("get", "apps", "deployments/scale"), ("update", "apps", "deployments/scale"),
        ("update", "", "replicationcontrollers/scale"), *EV],
    "job-controller": [*[(v, "", "pods") for v in ("create", "delete", "patch", "get", "update")],
                       ("update", "batch", "jobs/status"), ("get", "batch", "jobs"), *EV],
    "namespace-controller": [("list", "", "configmaps"), ("list", "apps", "deployments"),
                             ("deletecollection", "", "pods"), ("delete", "example.com", "widgets"),
                             ("update", "", "namespaces/finalize"), *EV],
    "node-controller": [("get", "", "nodes"), ("update", "", "nodes"), ("patch", "", "nodes"),
                        ("update", "", "nodes/status"), ("delete", "", "pods"), *EV],
    "persistent-volume-binder": [
        ("get", "", "persistentvolumes"), ("update", "", "persistentvolumes"), ("delete", "", "persistentvolumes"),
        ("update", "", "persistentvolumes/status"), ("get", "", "persistentvolumeclaims"),
        ("update", "", "persistentvolumeclaims"), ("update", "", "persistentvolumeclaims/status"), *EV],
    "pod-garbage-collector": [("get", "batch", "jobs"), ("get", "", "nodes"), ("get", "", "pods"),
                              ("update", "", "pods"), ("update", "", "pods/status"), ("delete", "", "pods")],
    "pvc-protection-controller": [("list", "", "pods"), ("get", "", "persistentvolumeclaims"),
                                  ("update", "", "persistentvolumeclaims")],
    "pv-protection-controller": [("get", "", "persistentvolumes"), ("update", "", "persistentvolumes")],
    "replicaset-controller": [("patch", "apps", "replicasets/status"), ("get", "apps", "replicasets"),
                              *[(v, "", "pods") for v in ("create", "delete", "patch")], *EV],
    "replication-controller": [("patch", "", "replicationcontrollers/status"), ("get", "", "replicationcontrollers"),
                               *[(v, "", "pods") for v in ("create", "delete", "patch")], *EV],
    "resourcequota-controller": [("list", "", "pods"), ("list", "example.com", "widgets"),
                                 ("update", "", "resourcequotas/status"), *EV],
    "root-ca-cert-publisher": [("create", "", "configmaps"), ("update", "", "configmaps")],
    "service-account-controller": [("create", "", "serviceaccounts"), *EV],
    "statefulset-controller": [
        *[(v, "", "pods") for v in ("create", "delete", "patch")],
        *[(v, "", "persistentvolumeclaims") for v in ("get", "create", "update")],
        ("get", "apps", "statefulsets"), ("update", "apps", "statefulsets/status"),
        *[(v, "apps", "controllerrevisions") for v in ("create", "get", "update", "delete", "patch")], *EV],
    "ttl-after-finished-controller": [("get", "batch", "jobs"), ("delete", "batch", "jobs")],
    "servicelb-controller": [("update", "", "services/status"), *EV],
    "local-path-provisioner": [("create", "", "persistentvolumes"), ("delete", "", "persistentvolumes"), *EV],
}

# Writes Kubernetes' controller_policy.go grants that our controllers do not make (kept so the
# roles stay as Kubernetes ships them); anything else a role grants must be in AUDIT.
KUBERNETES_SHIPS: dict[str, set[tuple[str, str, str]]] = {
    "clusterrole-aggregation-controller": {("escalate", "rbac.authorization.k8s.io", "clusterroles"),
                                           ("patch", "rbac.authorization.k8s.io", "clusterroles")},
    "cronjob-controller": {("update", "batch", "cronjobs"), ("update", "batch", "jobs"), ("patch", "batch", "jobs"),
                           ("update", "batch", "cronjobs/status"), ("update", "batch", "cronjobs/finalizers"),
                           ("delete", "", "pods")},
    "certificate-controller": {("delete", "certificates.k8s.io", "certificatesigningrequests")},
    "daemon-set-controller": {("update", "apps", "daemonsets/finalizers"), ("create", "", "pods/binding")},
    "deployment-controller": {("update", "apps", "deployments"), ("update", "apps", "deployments/status"),
                              ("update", "apps", "deployments/finalizers"), ("update", "", "pods")},
    "disruption-controller": {("patch", "", "pods/status"), ("update", "", "pods/status")},
    "endpoint-controller": {("create", "", "endpoints/restricted")},
    "endpointslice-controller": {("update", "", "services/finalizers")},
    "endpointslicemirroring-controller": {("update", "", "services/finalizers"),
                                          ("update", "", "endpoints/finalizers")},
    "job-controller": {("patch", "batch", "jobs"), ("update", "batch", "jobs"), ("patch", "batch", "jobs/status"),
                       ("update", "batch", "jobs/finalizers")},
    "namespace-controller": {("delete", "", "namespaces"), ("update", "", "namespaces/status")},
    "node-controller": {("delete", "", "nodes"), ("patch", "", "nodes/status"), ("patch", "", "pods/status"),
                        ("update", "", "pods/status")},
    "persistent-volume-binder": {("create", "", "persistentvolumes"), ("create", "", "pods"), ("delete", "", "pods"),
                                 ("create", "", "endpoints"), ("update", "", "endpoints"), ("delete", "", "endpoints"),
                                 ("create", "", "services"), ("delete", "", "services")},
    "pod-garbage-collector": {("patch", "", "pods/status")},
    "replicaset-controller": {("update", "apps", "replicasets"), ("update", "apps", "replicasets/status"),
                              ("update", "apps", "replicasets/finalizers")},
    "replication-controller": {("update", "", "replicationcontrollers"),
                               ("update", "", "replicationcontrollers/status"),
                               ("update", "", "replicationcontrollers/finalizers")},
    "statefulset-controller": {("update", "", "pods"), ("update", "apps", "statefulsets/finalizers"),
                               ("delete", "", "persistentvolumeclaims")},
}

SA_USER = UserInfo(name="system:serviceaccount:kube-system:x", groups=("system:serviceaccounts",))
READ_VERBS = {"get", "list", "watch"}


def _attrs(verb: str, group: str, resource: str, name: str = "") -> Attributes:
    res, _, sub = resource.partition("/")
    return Attributes(user=SA_USER, verb=verb, api_group=group, resource=res, subresource=sub, name=name)


def _allows(rules: list[dict], verb: str, group: str, resource: str, name: str = "") -> bool:
    a = _attrs(verb, group, resource, name)
    return any(rule_allows(r, a) for r in rules)


def _role(name: str) -> dict:
    return next(c for c in bp.cluster_roles() if c["metadata"]["name"] == bp.CONTROLLER_ROLE_PREFIX + name)


def test_every_controller_has_a_role_and_binding():
    roles = {c["metadata"]["name"]: c for c in bp.cluster_roles()}
    bindings = {b["metadata"]["name"]: b for b in bp.cluster_role_bindings()}
    for controller in CONTROLLERS:
        sa = service_account(controller)
        name = f"system:controller:{sa}"
        assert name in roles, controller
        assert roles[name]["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
        b = bindings[name]
        assert b["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}]


def test_no_role_without_a_controller_and_audit_covers_every_role():
    used = {service_account(c) for c in CONTROLLERS}
    assert set(bp.CONTROLLER_RULES) == used == set(AUDIT)


@pytest.mark.parametrize("sa,need", [(sa, n) for sa, needs in AUDIT.items() for n in needs],
                         ids=lambda v: v if isinstance(v, str) else "/".join(v))
def test_role_allows_what_the_controller_sends(sa, need):
    assert _allows(_role(sa)["rules"], *need), f"system:controller:{sa} must allow {need}"


def _grants(rules: list[dict]) -> set[tuple[str, str, str]]:
    """Every (verb, group, resource) a role grants beyond reading (names ignored)."""
    out = set()
    for r in rules:
        for v in r.get("verbs") or []:
            if v in READ_VERBS:
                continue
            for g in r.get("apiGroups") or []:
                for res in r.get("resources") or []:
                    out.add((v, g, res))
    return out


def _granted_by_audit(sa: str, grant: tuple[str, str, str]) -> bool:
    v, g, res = grant
    if res == "events":  # Kubernetes' eventsRule, in (nearly) every controller role it ships
        return True
    audited = {(n[0], n[1], n[2]) for n in AUDIT[sa]}
    if grant in audited or (g == "extensions" and (v, "apps", res) in audited | KUBERNETES_SHIPS.get(sa, set())):
        return True
    # a wildcard grant is audited by a need it exists for (the garbage collector, */scale, metrics)
    return any(av == v and (g == "*" or ag == g) and (res in ("*", ares) or (res.startswith("*/") and
                                                                          ares.endswith(res[1:])))
               for av, ag, ares in audited if g == "*" or res == "*" or res.startswith("*/"))


@pytest.mark.parametrize("sa", sorted(bp.CONTROLLER_RULES))
def test_role_grants_no_write_beyond_the_audit_and_kubernetes(sa):
    extra = {g for g in _grants(_role(sa)["rules"])
             if not _granted_by_audit(sa, g) and g not in KUBERNETES_SHIPS.get(sa, set())}
    assert not extra, f"system:controller:{sa} grants writes no controller makes: {sorted(extra)}"


@pytest.mark.parametrize("sa,verb,group,resource", [
    ("replicaset-controller", "delete", "", "nodes"),
    ("replicaset-controller", "create", "", "secrets"),
    ("deployment-controller", "create", "", "pods"),
    ("job-controller", "update", "", "nodes"),
    ("endpoint-controller", "create", "", "pods"),
    ("service-account-controller", "create", "", "serviceaccounts/token"),
    ("namespace-controller", "create", "", "pods"),
    ("resourcequota-controller", "get", "", "secrets"),
    ("clusterrole-aggregation-controller", "create", "rbac.authorization.k8s.io", "clusterrolebindings"),
    ("servicelb-controller", "update", "", "services"),
    ("local-path-provisioner", "update", "", "persistentvolumeclaims"),
])
def test_role_refuses_what_the_controller_does_not_do(sa, verb, group, resource):
    assert not _allows(_role(sa)["rules"], verb, group, resource)


def test_the_controller_manager_still_holds_every_controller_role():
    """Without --use-service-account-credentials every controller writes as the
    controller-manager: its role must cover each controller's."""
    lacking = {sa: covers(bp.KUBE_CONTROLLER_MANAGER_RULES, rules)[1] for sa, rules in bp.CONTROLLER_RULES.items()}
    assert not {sa: m for sa, m in lacking.items() if m}


@pytest.mark.parametrize("now,expires,leeway,want", [
    (0.0, 3600.0, 20, 2880.0),     # client-go: refreshed at 80 % of the lifetime
    (100.0, 3700.0, 20, 2880.0),
    (0.0, 60.0, 20, 480.0),        # a lifetime under 10 minutes is taken as 10 minutes (clock skew)
    (0.0, 600.0, 0, 600.0),
    (0.0, 3600.0, 99.9, 3.6),
])
def test_refresh_delay(now, expires, leeway, want):
    assert refresh_delay(now, expires, leeway) == pytest.approx(want)


@pytest.mark.parametrize("prev,want", [(0.0, 0.5), (0.5, 1.0), (16.0, 30.0), (30.0, 30.0)])
def test_next_backoff(prev, want):
    assert next_backoff(prev) == want


@pytest.mark.parametrize("text,want", [("1970-01-01T01:00:00Z", 3600.0), ("2026-12-08T00:00:00Z", 1796688000.0)])
def test_parse_expiration(text, want):
    assert parse_expiration({"expirationTimestamp": text}) == want


def test_parse_expiration_refuses_garbage():
    with pytest.raises(ValueError):
        parse_expiration({"expirationTimestamp": "soon"})
