"""The Node authorizer's graph and NodeRestriction: a node reads only what its pods reference
and writes only its own Node, Lease, CSINode and its pods' status."""

from __future__ import annotations

import pytest

from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.admission import noderestriction
from controlplane.apiserver.authorization.attributes import Attributes, Decision
from controlplane.apiserver.authorization.node import NodeAuthorizer, NodeGraph, pod_references

N1 = UserInfo.make("system:node:n1", ["system:nodes"])


def pod(name, node, ns="ns", **spec):
    return {"metadata": {"name": name, "namespace": ns, "uid": f"u-{name}"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec}}


def test_pod_references():
    p = pod("p", "n1", serviceAccountName="sa", imagePullSecrets=[{"name": "pull"}],
            volumes=[{"name": "a", "secret": {"secretName": "s1"}}, {"name": "b", "configMap": {"name": "c1"}},
                     {"name": "c", "persistentVolumeClaim": {"claimName": "claim"}},
                     {"name": "d", "projected": {"sources": [{"secret": {"name": "s2"}}, {"configMap": {"name": "c2"}},
                                                             {"serviceAccountToken": {"path": "token"}}]}}],
            containers=[{"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s3", "key": "k"}}},
                                               {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "c3", "key": "k"}}}],
                         "envFrom": [{"secretRef": {"name": "s4"}}, {"configMapRef": {"name": "c4"}}]}])
    assert pod_references(p) == {("ServiceAccount", "sa"), ("Secret", "pull"), ("Secret", "s1"), ("Secret", "s2"),
                                 ("Secret", "s3"), ("Secret", "s4"), ("ConfigMap", "c1"), ("ConfigMap", "c2"),
                                 ("ConfigMap", "c3"), ("ConfigMap", "c4"), ("PersistentVolumeClaim", "claim")}


def a(verb, resource, *, ns="ns", name="", group="", sub="", user=N1):
    return Attributes(user, verb, ns, group, "v1", resource, sub, name)


@pytest.fixture
def graph():
    g = NodeGraph()
    g.apply_pod(pod("p1", "n1", serviceAccountName="sa1", volumes=[{"name": "v", "secret": {"secretName": "mine"}}]))
    g.apply_pod(pod("p2", "n2", volumes=[{"name": "v", "secret": {"secretName": "theirs"}}]))
    return g


@pytest.mark.parametrize("attrs,allowed", [
    (a("get", "secrets", name="mine"), True),
    (a("get", "secrets", name="theirs"), False),
    (a("list", "secrets"), False),
    (a("update", "secrets", name="mine"), False),
    (a("get", "serviceaccounts", name="sa1"), True),
    (a("create", "serviceaccounts", name="sa1", sub="token"), True),
    (a("create", "serviceaccounts", name="default", sub="token"), False),
    (a("get", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="n1"), True),
    (a("update", "leases", group="coordination.k8s.io", ns="kube-node-lease", name="n2"), False),
    (a("update", "nodes", ns="", name="n1", sub="status"), True),
    (a("list", "pods", ns=""), True),
    (a("update", "pods", name="p1", sub="status"), True),
    (a("create", "events"), True),
    (a("create", "deployments", group="apps"), False),
    (a("create", "csinodes", group="storage.k8s.io", ns=""), True),  # the name: NodeRestriction's
    (a("get", "csinodes", group="storage.k8s.io", ns="", name="n1"), True),
    (a("patch", "csinodes", group="storage.k8s.io", ns="", name="n1"), True),
    (a("delete", "csinodes", group="storage.k8s.io", ns="", name="n1"), True),
    (a("update", "csinodes", group="storage.k8s.io", ns="", name="n2"), False),
    (a("list", "csinodes", group="storage.k8s.io", ns=""), False),
    (a("update", "csinodes", group="storage.k8s.io", ns="", name="n1", sub="status"), False),
    (a("get", "secrets", name="mine", user=UserInfo.make("system:node:n1")), False),  # not in system:nodes
], ids=lambda v: f"{v.verb}-{v.resource}{'/' + v.subresource if v.subresource else ''}-{v.name}" if isinstance(v, Attributes) else None)
def test_node_authorizer(graph, attrs, allowed):
    assert NodeAuthorizer(graph).authorize(attrs).allowed is allowed


def test_graph_follows_pods(graph):
    z = NodeAuthorizer(graph)
    graph.apply_pod(pod("p1", "n1"))  # volume removed
    assert not z.authorize(a("get", "secrets", name="mine")).allowed
    graph.apply_pod(pod("p3", "n1", volumes=[{"name": "v", "secret": {"secretName": "theirs"}}]))
    assert z.authorize(a("get", "secrets", name="theirs")).allowed
    graph.remove_pod(pod("p3", "n1"))
    assert not z.authorize(a("get", "secrets", name="theirs")).allowed
    assert graph.has("n2", "Secret", "ns", "theirs")
    assert z.authorize(a("get", "secrets", name="x", user=UserInfo.make("bob"))).decision is Decision.NO_OPINION


def node(name, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}}}


@pytest.mark.parametrize("args,forbidden", [
    (("update", "", "nodes", "status", "", "n1", node("n1"), node("n1")), None),
    (("update", "", "nodes", "status", "", "n2", node("n2"), node("n2")), 'not allowed to modify node "n2"'),
    (("patch", "", "nodes", "", "", "n1", node("n1", {"node-restriction.kubernetes.io/x": "y"}), node("n1")),
     "not allowed to modify labels"),
    (("patch", "", "nodes", "", "", "n1", node("n1", {"kubernetes.io/hostname": "n1", "team": "a"}), node("n1")), None),
    (("delete", "", "nodes", "", "", "n2", None, node("n2")), 'not allowed to modify node "n2"'),
    (("update", "", "pods", "status", "ns", "p", pod("p", "n1"), pod("p", "n1")), None),
    (("update", "", "pods", "status", "ns", "p", pod("p", "n2"), pod("p", "n2")), "only update pods"),
    (("delete", "", "pods", "", "ns", "p", None, pod("p", "n2")), "only delete pods"),
    (("delete", "", "pods", "", "ns", "p", None, pod("p", "n1")), None),
    (("update", "", "pods", "", "ns", "p", pod("p", "n1"), pod("p", "n1")), "can only update pod status"),
    (("create", "", "pods", "", "ns", "p", pod("p", "n1"), None), "can only create mirror pods"),
    (("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n2", None, None), "same name"),
    (("update", "coordination.k8s.io", "leases", "", "kube-node-lease", "n1", None, None), None),
    (("create", "storage.k8s.io", "csinodes", "", "", "", node("n1"), None), None),
    (("create", "storage.k8s.io", "csinodes", "", "", "", node("n2"), None), "CSINode with the same name"),
    (("update", "storage.k8s.io", "csinodes", "", "", "n1", node("n1"), node("n1")), None),
    (("delete", "storage.k8s.io", "csinodes", "", "", "n2", None, node("n2")), "CSINode with the same name"),
])
def test_node_restriction(args, forbidden):
    msg = noderestriction.check(N1, *args)
    assert (msg is None) if forbidden is None else (forbidden in (msg or "")), msg


def test_node_restriction_token_pod():
    assert noderestriction.check_token_pod(N1, pod("p", "n1", serviceAccountName="sa"), "sa") is None
    assert "different node" in noderestriction.check_token_pod(N1, pod("p", "n2", serviceAccountName="sa"), "sa")
    assert "does not run as" in noderestriction.check_token_pod(N1, pod("p", "n1", serviceAccountName="x"), "sa")
    assert noderestriction.check(UserInfo.make("bob"), "update", "", "nodes", "", "", "n2", None, None) is None


def test_rbac_feed_follows_resets_and_events():
    from controlplane.apiserver.authorization.feed import RBACFeed
    from controlplane.apiserver.authorization.rbac import RBACAuthorizer, RBACStore

    store = RBACStore()
    rf = RBACFeed(store, "ClusterRoleBinding")
    crb = {"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "r"},
           "subjects": [{"kind": "User", "name": "u"}]}
    rf.reset(iter([crb]))
    store.apply("ClusterRole", {"metadata": {"name": "r"}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]})
    u = UserInfo.make("u")
    assert RBACAuthorizer(store).authorize(a("get", "pods", user=u)).allowed
    rf.reset([])
    assert not RBACAuthorizer(store).authorize(a("get", "pods", user=u)).allowed
    rf.apply("ADDED", crb)
    assert RBACAuthorizer(store).authorize(a("get", "pods", user=u)).allowed
    rf.apply("DELETED", crb)
    assert not RBACAuthorizer(store).authorize(a("get", "pods", user=u)).allowed
