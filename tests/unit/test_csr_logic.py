"""Node certificate requests: which CSRs the approver recognizes, what the signer issues;
the agent's mapping of its paths to ``nodes/<subresource>``; cluster role aggregation."""

from __future__ import annotations

import base64

import pytest

from controlplane.agent.auth import caller_from_peercert, node_subresource
from controlplane.machinery.aggregation import aggregated_rules
from controlplane.controllers.csrapproving import recognize
from controlplane.controllers.csrsigning import sign
from controlplane.pki import certs
from controlplane.pki.cluster import ClusterPKI


def csr(cn, orgs, *, signer="kubernetes.io/kube-apiserver-client-kubelet", username="system:bootstrap:abcdef",
        usages=("digital signature", "client auth"), sans=()):
    req = certs.new_csr(certs.new_ec_key(), cn, orgs, sans)
    return {"metadata": {"name": "c"}, "spec": {"request": base64.b64encode(req).decode(), "signerName": signer,
                                                "usages": list(usages), "username": username}}


@pytest.mark.parametrize("obj,want", [
    (csr("system:node:n1", ["system:nodes"]), "nodeclient"),
    (csr("system:node:n1", ["system:nodes"], username="system:node:n1"), "selfnodeclient"),
    (csr("system:node:n1", ["system:nodes"], usages=("digital signature", "key encipherment", "client auth")), "nodeclient"),
    (csr("system:node:n1", ["system:nodes", "system:masters"]), None),
    (csr("alice", ["system:nodes"]), None),
    (csr("system:node:n1", ["system:nodes"], usages=("server auth",)), None),
    (csr("system:node:n1", ["system:nodes"], signer="kubernetes.io/kube-apiserver-client"), None),
    (csr("system:node:n1", ["system:nodes"], signer="kubernetes.io/kubelet-serving", username="system:node:n1",
         usages=("digital signature", "server auth")), "selfnodeserving"),
    (csr("system:node:n1", ["system:nodes"], signer="kubernetes.io/kubelet-serving", username="system:node:n2",
         usages=("digital signature", "server auth")), None),
], ids=["bootstrap", "renewal", "key-encipherment", "extra-org", "not-a-node", "wrong-usage", "other-signer",
        "serving-self", "serving-other"])
def test_recognize(obj, want):
    assert recognize(obj) == want


def test_sign(tmp_path):
    pki = ClusterPKI(tmp_path)
    pki.ensure(hostname="h")
    pem = sign(pki.ca(), csr("system:node:n1", ["system:nodes"]))
    cert = certs.load_cert(pem)
    assert certs.subject_user(cert) == ("system:node:n1", ["system:nodes"]) and certs.signed_by(cert, pki.ca().cert)
    serving = certs.load_cert(sign(pki.ca(), csr("system:node:n1", ["system:nodes"], signer="kubernetes.io/kubelet-serving",
                                                 sans=("10.0.0.5", "n1"))))
    assert certs.sans_of(serving) == {"10.0.0.5", "n1"}
    assert sign(pki.ca(), csr("x", [], signer="example.com/other")) is None


@pytest.mark.parametrize("path,sub", [
    ("/containerLogs/ns/p/c", "proxy"), ("/exec/ns/p/c", "proxy"), ("/stats/summary", "stats"),
    ("/metrics", "metrics"), ("/metrics/cadvisor", "metrics"), ("/logs/", "log"), ("/pods", "pods"),
    ("/healthz", "healthz"), ("/statsx", "proxy"),
])
def test_agent_path_subresource(path, sub):
    assert node_subresource(path) == sub


def test_agent_caller_from_cert():
    c = caller_from_peercert({"subject": ((("commonName", "kube-apiserver-kubelet-client"),),)})
    assert c.name == "kube-apiserver-kubelet-client" and "system:authenticated" in c.groups
    assert caller_from_peercert(None) is None


def test_aggregation_controller_rules():
    lab = "rbac.authorization.k8s.io/aggregate-to-view"
    view = {"metadata": {"name": "view"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {lab: "true"}}]}}
    a = {"metadata": {"name": "a", "labels": {lab: "true"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}
    b = {"metadata": {"name": "b", "labels": {lab: "true"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                                                                        {"verbs": ["list"], "apiGroups": ["x"], "resources": ["y"]}]}
    c = {"metadata": {"name": "c"}, "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]}
    assert aggregated_rules(view, [view, b, c, a]) == a["rules"] + b["rules"][1:]
    assert aggregated_rules(c, [c]) is None
