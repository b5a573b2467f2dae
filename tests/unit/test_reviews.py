"""The review APIs as functions: SubjectAccessReview family, SelfSubjectRulesReview,
TokenReview, SelfSubjectReview, TokenRequest; RBAC escalation/bind checks and validation."""

from __future__ import annotations

import jwt
import pytest

from controlplane.apiserver.authentication import reviews as an
from controlplane.apiserver.authentication.authenticator import Authenticator
from controlplane.apiserver.authentication.serviceaccount import TokenIssuer, TokenValidator
from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.authorization import bootstrap_policy as bp
from controlplane.apiserver.authorization import escalation
from controlplane.apiserver.validation import rbac as rbac_validation
from controlplane.apiserver.authorization import reviews as az
from controlplane.apiserver.authorization.chain import AuthorizerChain
from controlplane.apiserver.authorization.rbac import RBACAuthorizer, RBACStore
from controlplane.pki import certs

ALICE = UserInfo.make("alice")
ADMIN = UserInfo.make("root", ["system:masters"])


@pytest.fixture
def rbac():
    s = RBACStore()
    for kind, obj in bp.policy():
        s.apply(kind, obj)
    s.apply("RoleBinding", {"metadata": {"name": "v", "namespace": "team"}, "subjects": [bp.user("alice")],
                            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}})
    return RBACAuthorizer(s)


def chain(rbac):
    return AuthorizerChain([rbac])


@pytest.mark.parametrize("spec,allowed", [
    ({"user": "alice", "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": "team"}}, True),
    ({"user": "alice", "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "team"}}, False),
    ({"user": "bob", "groups": ["system:masters"], "resourceAttributes": {"verb": "delete", "resource": "nodes"}}, True),
    ({"user": "alice", "groups": ["system:authenticated"], "nonResourceAttributes": {"verb": "get", "path": "/api"}}, True),
])
def test_subject_access_review(rbac, spec, allowed):
    out = az.subject_access_review(chain(rbac), {"spec": spec})
    assert out["kind"] == "SubjectAccessReview" and out["status"]["allowed"] is allowed


@pytest.mark.parametrize("spec,field", [
    ({"resourceAttributes": {"verb": "get"}}, "spec.user"),
    ({"user": "a"}, "spec.resourceAttributes"),
    ({"user": "a", "resourceAttributes": {}, "nonResourceAttributes": {}}, "spec.resourceAttributes"),
])
def test_subject_access_review_invalid(rbac, spec, field):
    with pytest.raises(az.ReviewInvalid) as e:
        az.subject_access_review(chain(rbac), {"spec": spec})
    assert e.value.field == field


def test_local_and_self_reviews(rbac):
    out = az.subject_access_review(chain(rbac), {"spec": {"user": "alice", "resourceAttributes": {"verb": "list", "resource": "pods"}}},
                                   namespace="team")
    assert out["kind"] == "LocalSubjectAccessReview" and out["status"]["allowed"]
    with pytest.raises(az.ReviewInvalid):
        az.subject_access_review(chain(rbac), {"spec": {"user": "alice", "resourceAttributes": {"namespace": "x"}}},
                                 namespace="team")
    me = az.self_subject_access_review(chain(rbac), ALICE, {"spec": {"resourceAttributes": {"verb": "create",
                                                                                            "resource": "pods", "namespace": "team"}}})
    assert me["status"]["allowed"] is False


def test_self_subject_rules_review(rbac):
    out = az.self_subject_rules_review(chain(rbac), rbac, ALICE, {"spec": {"namespace": "team"}})
    rr = out["status"]["resourceRules"]
    assert {"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["namespaces"]} in rr
    assert not any("secrets" in r["resources"] for r in rr)
    assert {"verbs": ["get"], "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"]} in \
        out["status"]["nonResourceRules"]
    other = az.self_subject_rules_review(chain(rbac), rbac, ALICE, {"spec": {"namespace": "other"}})
    assert len(other["status"]["resourceRules"]) < len(rr)
    root = az.self_subject_rules_review(chain(rbac), rbac, ADMIN, {"spec": {"namespace": "x"}})
    assert {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]} in root["status"]["resourceRules"]


def test_escalation_and_bind(rbac):
    z = chain(rbac)
    secret_reader = {"metadata": {"name": "sr", "namespace": "team"}, "rules": [bp.r(["get"], [""], ["secrets"])]}
    pod_reader = {"metadata": {"name": "pr", "namespace": "team"}, "rules": [bp.r(["get"], [""], ["pods"])]}
    msg = escalation.check_role(z, rbac, ALICE, "Role", secret_reader)
    assert msg.startswith('roles.rbac.authorization.k8s.io "sr" is forbidden: user "alice" (groups=["system:authenticated"]) '
                          'is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}')
    assert escalation.check_role(z, rbac, ALICE, "Role", pod_reader) is None
    assert escalation.check_role(z, rbac, ADMIN, "Role", secret_reader) is None
    rbac.store.apply("Role", secret_reader)
    binding = {"metadata": {"name": "b", "namespace": "team"}, "subjects": [bp.user("alice")],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sr"}}
    assert "attempting to grant" in escalation.check_binding(z, rbac, ALICE, "RoleBinding", binding)
    rbac.store.apply("Role", {"metadata": {"name": "binder", "namespace": "team"},
                              "rules": [bp.r(["bind"], ["rbac.authorization.k8s.io"], ["roles"], ["sr"])]})
    rbac.store.apply("RoleBinding", {"metadata": {"name": "binder", "namespace": "team"}, "subjects": [bp.user("alice")],
                                     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "binder"}})
    assert escalation.check_binding(z, rbac, ALICE, "RoleBinding", binding) is None  # may bind "sr" by name


@pytest.mark.parametrize("kind,obj,old,fields", [
    ("Role", {"rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}]}, None, ["rules[0].nonResourceURLs"]),
    ("ClusterRole", {"rules": [{"verbs": [], "apiGroups": [""], "resources": ["pods"]}]}, None, ["rules[0].verbs"]),
    ("ClusterRole", {"rules": [{"verbs": ["get"], "apiGroups": [""]}]}, None, ["rules[0].resources"]),
    ("RoleBinding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                     "subjects": [{"kind": "Robot", "name": "x"}]}, None, ["subjects[0].kind"]),
    ("ClusterRoleBinding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}, None,
     ["roleRef.kind"]),
    ("RoleBinding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r2"}},
     {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}}, ["roleRef"]),
    ("ClusterRoleBinding", {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "r"},
                            "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}, None, ["subjects[0].namespace"]),
])
def test_rbac_validation(kind, obj, old, fields):
    causes = rbac_validation.validate_role(kind, obj) if kind.endswith("Role") else rbac_validation.validate_binding(kind, obj, old)
    assert [f for f, _ in causes] == fields


class Store:
    def __init__(self):
        self.objs = {("ServiceAccount", "ns", "sa"): {"metadata": {"uid": "sa-uid"}},
                     ("Pod", "ns", "p"): {"metadata": {"uid": "pod-uid"}, "spec": {"serviceAccountName": "sa", "nodeName": "n1"}},
                     ("Pod", "ns", "other"): {"metadata": {"uid": "o"}, "spec": {"serviceAccountName": "x"}},
                     ("Node", None, "n1"): {"metadata": {"uid": "node-uid"}}}

    async def get(self, kind, ns, name):
        return self.objs.get((kind, ns, name))


@pytest.fixture(scope="module")
def key():
    return certs.key_pem(certs.new_rsa_key())


async def test_token_request_and_review(key):
    st = Store()
    iss = TokenIssuer(key)
    out = await an.token_request(iss, st.get, "ns", "sa", {"spec": {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": "pod-uid"}}},
                                 [iss.issuer])
    tok = out["status"]["token"]
    claims = jwt.decode(tok, options={"verify_signature": False})
    assert claims["kubernetes.io"]["pod"]["uid"] == "pod-uid" and claims["kubernetes.io"]["node"]["name"] == "n1"
    assert claims["exp"] - claims["iat"] == 3600 and out["spec"]["audiences"] == [iss.issuer]
    authn = Authenticator(service_accounts=TokenValidator([certs.public_pem(certs.load_key(key))], get=st.get), get=st.get)
    rev = await an.token_review(authn, {"spec": {"token": tok}})
    assert rev["status"]["authenticated"] and rev["status"]["user"]["username"] == "system:serviceaccount:ns:sa"
    bad = await an.token_review(authn, {"spec": {"token": tok[:-4] + "AAAA"}})
    assert bad["status"]["authenticated"] is False and bad["status"]["error"]
    vault = await an.token_review(authn, {"spec": {"token": tok, "audiences": ["vault"]}})
    assert vault["status"]["authenticated"] is False
    who = an.self_subject_review(ALICE, {})
    assert who["kind"] == "SelfSubjectReview" and who["status"]["userInfo"]["username"] == "alice"


@pytest.mark.parametrize("body,err", [
    ({"spec": {"expirationSeconds": 60}}, "10 minutes"),
    ({"spec": {"boundObjectRef": {"kind": "ConfigMap", "name": "x"}}}, "Unsupported value"),
    ({"spec": {"boundObjectRef": {"kind": "Pod", "name": "other"}}}, "different serviceaccount"),
    ({"spec": {"boundObjectRef": {"kind": "Pod", "name": "p", "uid": "stale"}}}, "does not match"),
])
async def test_token_request_invalid(key, body, err):
    with pytest.raises(an.RequestInvalid, match=err):
        await an.token_request(TokenIssuer(key), Store().get, "ns", "sa", body, ["aud"])


async def test_token_request_missing_objects(key):
    with pytest.raises(an.ObjectMissing):
        await an.token_request(TokenIssuer(key), Store().get, "ns", "nosa", {}, ["aud"])
    with pytest.raises(an.ObjectMissing):
        await an.token_request(TokenIssuer(key), Store().get, "ns", "sa", {"spec": {"boundObjectRef": {"kind": "Pod", "name": "gone"}}}, ["aud"])


async def test_security_start_writes_go_through_the_write_path():
    """The start-up writes of server.security call the endpoints' write path with its real
    signature (a regression: cluster-info's update on a restart with another port)."""
    import inspect

    from controlplane.apiserver.endpoints.write import write_update

    params = inspect.signature(write_update).parameters
    src = inspect.getsource(__import__("controlplane.apiserver.server.security", fromlist=["x"]))
    required = [n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    for call in src.split("await write_update(")[1:]:
        args = call.split(")\n")[0]
        assert all(f"{n}=" in args for n in required), args


@pytest.mark.parametrize("bound, expect_resource, expect_non_resource", [
    # system:masters bound to cluster-admin (the bootstrap policy): cluster-admin's rules, once
    (True, [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}], [{"verbs": ["*"], "nonResourceURLs": ["*"]}]),
    # the privileged-group short cut authorizes but lists nothing (kube-apiserver's rule resolvers)
    (False, [], []),
])
def test_rules_review_of_a_privileged_group_member(bound, expect_resource, expect_non_resource):
    s = RBACStore()
    for kind, obj in bp.policy():
        if bound or obj["metadata"]["name"] != "cluster-admin" or kind != "ClusterRoleBinding":
            s.apply(kind, obj)
    rbac = RBACAuthorizer(s)
    out = az.self_subject_rules_review(chain(rbac), rbac, ADMIN, {"spec": {"namespace": "x"}})["status"]
    stars = [r for r in out["resourceRules"] if r["resources"] == ["*"]]
    assert stars == expect_resource
    assert [r for r in out["nonResourceRules"] if r["nonResourceURLs"] == ["*"]] == expect_non_resource
