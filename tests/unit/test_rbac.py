"""RBAC: rule matching, the compiled index (checked against the plain rule scan), Covers
(escalation), the subject-indexed authorizer and its cache, aggregation, the bootstrap
policy, request attributes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controlplane.machinery.userinfo import ANONYMOUS_USER, UserInfo
from controlplane.apiserver.authorization import bootstrap_policy as bp
from controlplane.apiserver.authorization.aggregation import aggregate_all
from controlplane.apiserver.authorization.attributes import Attributes, Decision, request_attributes
from controlplane.apiserver.authorization.chain import AuthorizerChain, forbidden_message
from controlplane.apiserver.authorization.rbac import RBACAuthorizer, RBACStore
from controlplane.apiserver.authorization.rules import CompiledRules, covers, rule_allows

ALICE = UserInfo.make("alice", ["devs"])


def res(verb, resource, *, group="", ns="", name="", sub="", user=ALICE):
    return Attributes(user, verb, ns, group, "v1", resource, sub, name)


def url(verb, path, user=ALICE):
    return Attributes(user, verb, resource_request=False, path=path)


R = bp.r
NR = bp.nr


@pytest.mark.parametrize("rule,attrs,want", [
    (R(["get"], [""], ["pods"]), res("get", "pods"), True),
    (R(["get"], [""], ["pods"]), res("list", "pods"), False),
    (R(["*"], [""], ["pods"]), res("delete", "pods"), True),
    (R(["get"], ["apps"], ["pods"]), res("get", "pods"), False),
    (R(["get"], ["*"], ["deployments"]), res("get", "deployments", group="apps"), True),
    (R(["get"], [""], ["pods"]), res("get", "pods", sub="log"), False),
    (R(["get"], [""], ["pods/log"]), res("get", "pods", sub="log"), True),
    (R(["get"], [""], ["*/log"]), res("get", "pods", sub="log"), True),
    (R(["get"], [""], ["pods/*"]), res("get", "pods", sub="exec"), True),
    (R(["get"], [""], ["*"]), res("get", "pods", sub="exec"), True),
    (R(["get"], [""], ["pods"], ["a"]), res("get", "pods", name="a"), True),
    (R(["get"], [""], ["pods"], ["a"]), res("get", "pods", name="b"), False),
    (R(["list"], [""], ["pods"], ["a"]), res("list", "pods"), False),
    (NR(["get"], ["/healthz"]), url("get", "/healthz"), True),
    (NR(["get"], ["/healthz"]), url("get", "/healthz/etcd"), False),
    (NR(["get"], ["/apis/*"]), url("get", "/apis/apps/v1"), True),
    (NR(["*"], ["*"]), url("post", "/anything"), True),
    (NR(["get"], ["/api"]), res("get", "pods"), False),
    (R(["get"], [""], ["pods"]), url("get", "/api"), False),
])
def test_rule_allows(rule, attrs, want):
    assert rule_allows(rule, attrs) is want
    assert CompiledRules.compile([rule]).allows(attrs) is want


_words = st.sampled_from(["", "apps", "*", "pods", "pods/log", "*/log", "pods/*", "secrets", "get", "list", "a", "b"])
_rule = st.builds(lambda v, g, r, n: {"verbs": v, "apiGroups": g, "resources": r, **({"resourceNames": n} if n else {})},
                  st.lists(st.sampled_from(["get", "list", "*", "create"]), min_size=1, max_size=2),
                  st.lists(st.sampled_from(["", "apps", "*"]), min_size=1, max_size=2),
                  st.lists(st.sampled_from(["pods", "pods/log", "*/log", "pods/*", "*", "secrets"]), min_size=1, max_size=3),
                  st.lists(st.sampled_from(["a", "b"]), max_size=1))
_attrs = st.builds(lambda v, g, r, s, n: res(v, r, group=g, sub=s, name=n),
                   st.sampled_from(["get", "list", "create", "delete"]), st.sampled_from(["", "apps"]),
                   st.sampled_from(["pods", "secrets", "deployments"]), st.sampled_from(["", "log", "exec"]),
                   st.sampled_from(["", "a", "b"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(_rule, max_size=4), _attrs)
def test_compiled_index_equals_rule_scan(rules, attrs):
    assert CompiledRules.compile(rules).allows(attrs) == any(rule_allows(r, attrs) for r in rules)


@pytest.mark.parametrize("owner,servant,ok", [
    ([R(["*"], ["*"], ["*"])], [R(["get", "delete"], ["apps"], ["deployments"])], True),
    ([R(["get"], [""], ["pods"])], [R(["get"], [""], ["pods"])], True),
    ([R(["get"], [""], ["pods"])], [R(["get", "list"], [""], ["pods"])], False),
    ([R(["get"], [""], ["pods"])], [R(["get"], [""], ["pods"], ["x"])], True),
    ([R(["get"], [""], ["pods"], ["x"])], [R(["get"], [""], ["pods"])], False),
    ([R(["get"], [""], ["*/log"])], [R(["get"], [""], ["pods/log"])], True),
    ([R(["get"], [""], ["pods/*"])], [R(["get"], [""], ["pods/exec"])], True),
    ([R(["get"], [""], ["pods"])], [R(["get"], [""], ["pods/log"])], False),
    ([NR(["get"], ["/apis/*"])], [NR(["get"], ["/apis/apps"])], True),
    ([NR(["get"], ["/api"])], [NR(["get"], ["/apis"])], False),
    ([R(["get"], [""], ["secrets"])], [R(["get"], [""], ["pods"]), R(["get"], [""], ["secrets"])], False),
])
def test_covers(owner, servant, ok):
    assert covers(owner, servant)[0] is ok


def _binding(kind, name, role_kind, role, subjects, ns=""):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"kind": kind, "metadata": meta, "roleRef": {"kind": role_kind, "name": role,
                                                         "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": subjects}


@pytest.fixture
def store():
    s = RBACStore()
    for kind, obj in bp.policy():
        s.apply(kind, obj)
    return s


def test_view_binding_in_one_namespace(store):
    store.apply("RoleBinding", _binding("RoleBinding", "alice-view", "ClusterRole", "view",
                                        [bp.user("alice")], ns="team"))
    z = AuthorizerChain([RBACAuthorizer(store)])
    allowed = z.authorize(res("list", "pods", ns="team"))
    assert allowed.allowed and allowed.reason == \
        'RBAC: allowed by RoleBinding "alice-view/team" of ClusterRole "view" to User "alice"'
    for a in (res("list", "secrets", ns="team"), res("list", "pods", ns="other"), res("list", "pods"),
              res("create", "pods", ns="team", name="p", sub="exec"), res("create", "pods", ns="team")):
        assert z.authorize(a).decision is Decision.NO_OPINION, a
    assert z.authorize(url("get", "/api")).allowed  # system:discovery for system:authenticated
    assert z.authorize(res("create", "selfsubjectaccessreviews", group="authorization.k8s.io")).allowed


def test_anonymous_only_public_info(store):
    z = AuthorizerChain([RBACAuthorizer(store)])
    for path in ("/healthz", "/livez", "/readyz", "/version"):
        assert z.authorize(url("get", path, ANONYMOUS_USER)).allowed, path
    for a in (url("get", "/api", ANONYMOUS_USER), res("list", "secrets", user=ANONYMOUS_USER)):
        assert not z.authorize(a).allowed
    assert forbidden_message(res("list", "secrets", user=ANONYMOUS_USER)) == \
        'secrets is forbidden: User "system:anonymous" cannot list resource "secrets" in API group "" at the cluster scope'


def test_masters_and_components(store):
    z = AuthorizerChain([RBACAuthorizer(store)])
    admin = UserInfo.make("kubernetes-admin", ["system:masters"])
    assert z.authorize(res("delete", "nodes", name="x", user=admin)).allowed
    sched = UserInfo.make("system:kube-scheduler")
    assert z.authorize(res("create", "pods", ns="a", name="p", sub="binding", user=sched)).allowed
    assert not z.authorize(res("get", "secrets", ns="a", name="s", user=sched)).allowed
    cm = UserInfo.make("system:kube-controller-manager")
    assert z.authorize(res("create", "replicasets", group="apps", ns="a", user=cm)).allowed


def test_metrics_identities(store):
    """metrics-server's manifests' roles and Prometheus' scrape role, from the bootstrap policy."""
    z = AuthorizerChain([RBACAuthorizer(store)])
    ms = UserInfo.make("system:metrics-server")
    assert z.authorize(res("get", "nodes", name="n1", sub="metrics", user=ms)).allowed
    assert z.authorize(res("list", "pods", user=ms)).allowed
    assert z.authorize(res("create", "subjectaccessreviews", group="authorization.k8s.io", user=ms)).allowed
    assert not z.authorize(res("get", "nodes", name="n1", sub="proxy", user=ms)).allowed
    assert not z.authorize(res("list", "secrets", user=ms)).allowed
    prom = UserInfo.make("system:prometheus", ["system:monitoring"])
    assert z.authorize(url("get", "/metrics", prom)).allowed
    assert z.authorize(res("get", "nodes", name="n1", sub="metrics", user=prom)).allowed
    assert not z.authorize(res("get", "nodes", name="n1", sub="log", user=prom)).allowed
    assert not z.authorize(url("get", "/metrics")).allowed  # an ordinary user
    store.apply("RoleBinding", _binding("RoleBinding", "alice-view", "ClusterRole", "view", [bp.user("alice")],
                                        ns="team"))
    assert z.authorize(res("list", "pods", group="metrics.k8s.io", ns="team")).allowed  # aggregated into view
    assert not z.authorize(res("list", "nodes", group="metrics.k8s.io")).allowed
PROXY = UserInfo.make("system:kube-proxy")
COREDNS = UserInfo.make("system:coredns")
NODE = UserInfo.make("system:node:n1", ["system:nodes"])


@pytest.mark.parametrize("attrs,want", [
    # the service proxy: Services and slices (system:node-proxier), policies and their peers
    (res("list", "endpointslices", group="discovery.k8s.io", user=PROXY), True),
    (res("watch", "networkpolicies", group="networking.k8s.io", user=PROXY), True),
    (res("list", "pods", user=PROXY), True),
    (res("list", "namespaces", user=PROXY), True),
    (res("create", "events", ns="a", user=PROXY), True),
    (res("create", "services", ns="a", user=PROXY), False),
    (res("list", "secrets", user=PROXY), False),
    # a proxy running as its node reads policies too
    (res("list", "networkpolicies", group="networking.k8s.io", user=NODE), True),
    # the cluster DNS: CoreDNS's reads, its own registration, nothing else
    (res("watch", "services", user=COREDNS), True),
    (res("list", "endpointslices", group="discovery.k8s.io", user=COREDNS), True),
    (res("create", "services", ns="kube-system", user=COREDNS), True),
    (res("create", "services", ns="default", user=COREDNS), False),  # its Role is kube-system's only
    (res("create", "endpointslices", group="discovery.k8s.io", ns="kube-system", user=COREDNS), True),
    (res("create", "endpointslices", group="discovery.k8s.io", ns="team", user=COREDNS), False),
    (res("get", "services", ns="kube-system", name="kube-dns", user=COREDNS), True),
    (res("update", "endpointslices", group="discovery.k8s.io", ns="kube-system", name="kube-dns-host",
         user=COREDNS), True),
    (res("update", "endpointslices", group="discovery.k8s.io", ns="kube-system", name="other", user=COREDNS), False),
    (res("delete", "services", ns="kube-system", name="kube-dns", user=COREDNS), False),
    (res("list", "secrets", user=COREDNS), False),
])
def test_network_components(store, attrs, want):
    assert AuthorizerChain([RBACAuthorizer(store)]).authorize(attrs).allowed is want


def test_aggregation_fills_admin_edit_view():
    roles = {r["metadata"]["name"]: r for r in aggregate_all(bp.cluster_roles())}
    view, edit, admin = roles["view"]["rules"], roles["edit"]["rules"], roles["admin"]["rules"]
    assert view and all(r in edit for r in view) and all(r in admin for r in edit)
    assert not any("secrets" in r.get("resources", []) for r in view)
    assert any("pods/exec" in r.get("resources", []) and "create" in r["verbs"] for r in edit)
    assert any("rolebindings" in r.get("resources", []) for r in admin)


def test_bootstrap_reconcile_keeps_customisations():
    wanted = bp.cluster_roles()[0]
    assert bp.reconcile(None, wanted) is wanted
    assert bp.reconcile(wanted, wanted) is None
    custom = {**wanted, "rules": wanted["rules"][:1] + [bp.r(["get"], ["x"], ["y"])]}
    out = bp.reconcile(custom, wanted)
    assert bp.r(["get"], ["x"], ["y"]) in out["rules"] and all(r in out["rules"] for r in wanted["rules"])
    frozen = {**custom, "metadata": {**custom["metadata"], "annotations": {bp.AUTOUPDATE: "false"}}}
    assert bp.reconcile(frozen, wanted) is None


def test_subject_index_and_cache_invalidation(store):
    rbac = RBACAuthorizer(store)
    a = res("get", "configmaps", ns="ns7", name="c")
    assert not rbac.authorize(a).allowed
    role = {"kind": "Role", "metadata": {"name": "cm", "namespace": "ns7"}, "rules": [bp.r(["get"], [""], ["configmaps"])]}
    store.apply("Role", role)
    rb = _binding("RoleBinding", "devs-cm", "Role", "cm", [bp.group("devs")], ns="ns7")
    store.apply("RoleBinding", rb)
    assert rbac.authorize(a).allowed  # the cache was dropped when the store changed
    store.apply("RoleBinding", {**rb, "subjects": [bp.user("bob")]})  # re-applied: old subjects unindexed
    assert not rbac.authorize(a).allowed
    store.apply("RoleBinding", rb)
    store.remove("Role", role)
    assert not rbac.authorize(a).allowed
    sa = _binding("RoleBinding", "sa", "ClusterRole", "view", [{"kind": "ServiceAccount", "name": "bot"}], ns="ns7")
    store.apply("RoleBinding", sa)
    bot = UserInfo.make("system:serviceaccount:ns7:bot", ["system:serviceaccounts"])
    assert rbac.authorize(res("list", "pods", ns="ns7", user=bot)).allowed


def test_rules_for(store):
    store.apply("RoleBinding", _binding("RoleBinding", "v", "ClusterRole", "view", [bp.user("alice")], ns="team"))
    rules = RBACAuthorizer(store).rules_for(ALICE, "team")
    view = {r["metadata"]["name"]: r for r in aggregate_all(bp.cluster_roles())}["view"]["rules"]
    assert all(r in rules for r in view)
    assert RBACAuthorizer(store).rules_for(ALICE, "other") == [r for r in rules if r not in view]


@pytest.mark.parametrize("method,path,query,want", [
    ("GET", "/api/v1/namespaces/ns/pods", {}, ("list", "ns", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods", {"watch": "true"}, ("watch", "ns", "", "pods", "", "")),
    ("GET", "/api/v1/pods", {}, ("list", "", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/ns/pods/p", {}, ("get", "ns", "", "pods", "", "p")),
    ("POST", "/api/v1/namespaces/ns/pods/p/exec", {}, ("create", "ns", "", "pods", "exec", "p")),
    ("GET", "/api/v1/namespaces/ns/pods/p/log", {}, ("get", "ns", "", "pods", "log", "p")),
    ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/d/scale", {}, ("patch", "ns", "apps", "deployments", "scale", "d")),
    ("DELETE", "/api/v1/namespaces/ns/configmaps", {}, ("deletecollection", "ns", "", "configmaps", "", "")),
    ("GET", "/api/v1/namespaces/ns", {}, ("get", "ns", "", "namespaces", "", "ns")),
    ("PUT", "/api/v1/namespaces/ns/finalize", {}, ("update", "ns", "", "namespaces", "finalize", "ns")),
    ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
    ("GET", "/api/v1/nodes/n1", {}, ("get", "", "", "nodes", "", "n1")),
    ("GET", "/api/v1/namespaces/ns/secrets", {"fieldSelector": "metadata.name=s1"}, ("list", "ns", "", "secrets", "", "s1")),
    ("GET", "/api/v1/watch/namespaces/ns/pods", {}, ("watch", "ns", "", "pods", "", "")),
])
def test_request_attributes(method, path, query, want):
    a = request_attributes(ALICE, method, path, query)
    assert a.resource_request and (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name) == want


@pytest.mark.parametrize("method,path,verb", [
    ("GET", "/healthz", "get"), ("GET", "/api", "get"), ("GET", "/apis/apps/v1", "get"),
    ("GET", "/apis/apps", "get"), ("POST", "/foo", "post"), ("HEAD", "/version", "head"),
])
def test_non_resource_attributes(method, path, verb):
    a = request_attributes(ALICE, method, path)
    assert not a.resource_request and a.verb == verb and a.path == path
