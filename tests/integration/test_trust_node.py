"""Issue 14's "Must show" items that need a node (a real runc agent under its own identity):

- a pod's ServiceAccount token, read inside the pod from the projected volume at
  /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace), authenticates to the
  API with that ServiceAccount's RBAC (copied out to the host); an expired or forged token is
  401, and so is the pod's token once the pod is gone;
- the exec that read it is in the audit log (ResponseStarted and ResponseComplete);
- joining with a bootstrap token: the agent's TLS bootstrap gets a node client certificate
  through a CertificateSigningRequest the controller-manager approves and signs.
The pod declares no volume: the ServiceAccount admission plugin (on in this module's
apiserver, as in ``controlplane up``) gives it the default ServiceAccount and the
``kube-api-access-*`` projected volume.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid

import jwt
import pytest

from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.pki import certs
from tests.fixtures.apiserver import _start, make_kubectl
from tests.fixtures.controllers import ControllerManagerProcess
from tests.integration.test_agent_pods import ns, pod, ready_node, wait_for  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.asyncio(loop_scope="session")]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory):
    """This module's apiserver: every admission plugin on (the session one turns the
    ServiceAccount plugin off for tests that run no ServiceAccount controller)."""
    api = _start(tmp_path_factory.mktemp("apiserver-sa"), ["--compaction-interval", "0"])
    yield api
    api.stop()
    api.etcd.stop()


@pytest.fixture(scope="module")
def trust_controllers(apiserver, tmp_path_factory):
    """The controller-manager's trust controllers (root CA publisher, CSR approve/sign, default
    ServiceAccounts) under its own identity, with the cluster CA to sign with."""
    pki = apiserver.pki
    cm = ControllerManagerProcess(tmp_path_factory.mktemp("trust-cm"), apiserver.component_kubeconfig("controller-manager"),
                                  ["--controllers", "root-ca-cert-publisher,csrapproving,csrsigning,serviceaccount",
                                   "--root-ca-file", str(pki.ca_file), "--cluster-signing-cert-file", str(pki.ca_file),
                                   "--cluster-signing-key-file", str(pki.key("ca")), "--leader-elect=false"]).start()
    if not cm.wait_log("caches synced", timeout=60):
        cm.stop()
        pytest.fail(f"controller-manager did not start:\n{cm.log_tail()}")
    yield cm
    cm.stop()


async def test_pod_token_and_exec_audit(apiserver, client, ns, start_agent, trust_controllers, tmp_path):
    agent = start_agent()
    await ready_node(client, agent.node, agent)
    await wait_for(lambda: client.get(R.CONFIGMAPS, "kube-root-ca.crt", ns), what="kube-root-ca.crt")
    await wait_for(lambda: client.get(R.SERVICEACCOUNTS, "default", ns), what="the default ServiceAccount")
    created = await client.create(R.PODS, pod("tok", agent.node, [
        {"name": "c", "image": "busybox", "command": ["sleep", "600"]}]), ns)
    spec = created["spec"]
    assert spec["serviceAccountName"] == "default"
    [vol] = [v for v in spec["volumes"] if v["name"].startswith("kube-api-access-")]
    assert {"name": vol["name"], "mountPath": SA_DIR, "readOnly": True} in spec["containers"][0]["volumeMounts"]
    await wait_for(lambda: _running(client, ns, "tok"), what="pod tok Running")
    kubectl = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    ls = await asyncio.to_thread(kubectl, "exec", "tok", "-n", ns, "--", "ls", SA_DIR)
    assert ls.stdout.split() == ["ca.crt", "namespace", "token"]
    assert (await asyncio.to_thread(kubectl, "exec", "tok", "-n", ns, "--", "cat", f"{SA_DIR}/namespace")).stdout == ns
    ca = (await asyncio.to_thread(kubectl, "exec", "tok", "-n", ns, "--", "cat", f"{SA_DIR}/ca.crt")).stdout
    assert ca.encode() == apiserver.pki.ca_pem
    token = (await asyncio.to_thread(kubectl, "exec", "tok", "-n", ns, "--", "cat", f"{SA_DIR}/token")).stdout
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == f"system:serviceaccount:{ns}:default" and claims["kubernetes.io"]["pod"]["name"] == "tok"

    # the token copied out to the host authenticates with the ServiceAccount's RBAC
    with apiserver.http(user="", headers={"Authorization": f"Bearer {token}"}) as sa:
        r = sa.get(f"/api/v1/namespaces/{ns}/pods")
        assert r.status_code == 403 and f"system:serviceaccount:{ns}:default" in r.json()["message"]
        await asyncio.to_thread(kubectl, "create", "rolebinding", "sa-view", "--clusterrole=view",
                                f"--serviceaccount={ns}:default", "-n", ns)
        await wait_for(lambda: _ok(sa.get(f"/api/v1/namespaces/{ns}/pods")), what="the SA's binding")
        assert sa.get(f"/api/v1/namespaces/{ns}/secrets").status_code == 403
        assert sa.get("/api/v1/namespaces/default/pods").status_code == 403

    # expired and forged tokens are 401
    key = certs.load_key(apiserver.pki.sa_key_file.read_bytes())
    now = int(time.time())
    expired = jwt.encode({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}, key, algorithm="RS256",
                         headers=jwt.get_unverified_header(token))
    forged = jwt.encode({**claims}, certs.new_rsa_key(), algorithm="RS256", headers=jwt.get_unverified_header(token))
    for bad in (expired, forged, token[:-6] + "AAAAAA"):
        with apiserver.http(user="", headers={"Authorization": f"Bearer {bad}"}) as c:
            r = c.get(f"/api/v1/namespaces/{ns}/pods")
            assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"

    # the exec is in the audit log, started and completed
    def exec_events():
        evs = [json.loads(line) for line in apiserver.audit_log.read_text().splitlines()]
        return [e for e in evs if e.get("objectRef", {}).get("subresource") == "exec"
                and e["objectRef"].get("namespace") == ns]
    evs = await wait_for(lambda: _async(exec_events()), what="exec audit events")
    assert {"ResponseStarted", "ResponseComplete"} <= {e["stage"] for e in evs}
    assert all(e["user"]["username"] == "kubernetes-admin" and e["objectRef"]["name"] == "tok" for e in evs)

    # the pod's token dies with the pod (bound token)
    await client.delete(R.PODS, "tok", ns, grace_period_seconds=0)
    await wait_for(lambda: _gone(client, ns, "tok"), what="pod tok gone")

    def rejected():
        with apiserver.http(user="", headers={"Authorization": f"Bearer {token}"}) as c:
            return c.get(f"/api/v1/namespaces/{ns}/pods").status_code == 401
    await wait_for(lambda: _async(rejected()), timeout=20, what="the bound token to stop working (10 s cache)")


async def test_join_with_a_bootstrap_token(apiserver, trust_controllers, tmp_path):
    from controlplane.agent.bootstrap import ca_hash, node_kubeconfig
    from controlplane.apiserver.authentication.bootstrap import new_token, new_token_secret

    token = new_token()
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as admin:
        await admin.create(R.SECRETS, new_token_secret(token), "kube-system")
    node = f"joined-{uuid.uuid4().hex[:6]}"
    with pytest.raises(Exception, match="does not match"):
        await node_kubeconfig(tmp_path / "bad", apiserver.url, node, token, "sha256:" + "0" * 64)
    path = await node_kubeconfig(tmp_path / "root", apiserver.url, node, token, ca_hash(apiserver.pki.ca_pem))
    async with RestClient.from_kubeconfig(path) as me:
        who = await me.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                               body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert who["status"]["userInfo"]["username"] == f"system:node:{node}"
        assert "system:nodes" in who["status"]["userInfo"]["groups"]
        await me.create(R.NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": node}})
        with pytest.raises(ApiStatusError) as e:  # a node is not an admin
            await me.list(R.SECRETS, "kube-system")
        assert e.value.code == 403
    async with RestClient.from_kubeconfig(apiserver.kubeconfig) as admin:
        await admin.delete(R.NODES, node)
        csrs = (await admin.list(R.CERTIFICATESIGNINGREQUESTS))["items"]
        mine = [c for c in csrs if c["metadata"]["name"].startswith(f"node-csr-{node}")]
        assert mine and mine[0]["spec"]["username"] == f"system:bootstrap:{token.split('.')[0]}"
        assert mine[0]["status"]["conditions"][0]["reason"] == "AutoApproved"
    # a token that is not a bootstrap token gets nowhere
    with pytest.raises(Exception):
        await node_kubeconfig(tmp_path / "other", apiserver.url, "x", "abcdef.0123456789abcdef", None)


async def _running(client, ns, name):
    p = await client.get(R.PODS, name, ns)
    return p if p.get("status", {}).get("phase") == "Running" else None


async def _gone(client, ns, name):
    try:
        await client.get(R.PODS, name, ns)
        return False
    except ApiStatusError as e:
        return e.not_found


async def _ok(resp):
    return resp.status_code == 200


async def _async(value):
    return value


async def test_user_certificate_through_kubectl_certificate_approve(apiserver, trust_controllers, tmp_path):
    """A user's client certificate the way the Kubernetes docs make one: a CSR with ``usages``
    and ``expirationSeconds`` applied with kubectl, ``kubectl get csr`` shows it Pending,
    ``kubectl certificate approve`` (a protobuf PUT to ``/approval``) approves it, the signer
    issues it, and the certificate authenticates as its subject."""
    import base64

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    kubectl = make_kubectl(apiserver.kubeconfig, tmp_path / "kc")
    name = f"jane-{uuid.uuid4().hex[:6]}"
    key = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, name), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devs")])
    ).sign(key, hashes.SHA256())
    csr = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": name},
           "spec": {"request": base64.b64encode(req.public_bytes(serialization.Encoding.PEM)).decode(),
                    "signerName": "kubernetes.io/kube-apiserver-client", "expirationSeconds": 86400,
                    "usages": ["client auth"]}}
    await asyncio.to_thread(kubectl, "apply", "-f", "-", input=json.dumps(csr))
    out = (await asyncio.to_thread(kubectl, "get", "csr", name)).stdout.split("\n")
    assert out[0].split() == ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], out
    assert out[1].split()[2:] == ["kubernetes.io/kube-apiserver-client", "kubernetes-admin", "24h", "Pending"], out
    await asyncio.to_thread(kubectl, "certificate", "approve", name)

    def issued():
        got = json.loads(kubectl("get", "csr", name, "-o", "json").stdout)
        return got if got.get("status", {}).get("certificate") else None
    got = await wait_for(lambda: asyncio.to_thread(issued), timeout=20, what="the certificate to be issued")
    assert got["spec"]["usages"] == ["client auth"] and got["spec"]["expirationSeconds"] == 86400
    assert (await asyncio.to_thread(kubectl, "get", "csr", name)).stdout.split("\n")[1].split()[-1] == "Approved,Issued"
    (tmp_path / "jane.crt").write_bytes(base64.b64decode(got["status"]["certificate"]))
    (tmp_path / "jane.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    kc = tmp_path / "jane.kubeconfig"
    kc.write_text(apiserver.kubeconfig.read_text())
    jane = make_kubectl(kc, tmp_path / "kc-jane")
    await asyncio.to_thread(jane, "config", "set-credentials", "jane", f"--client-certificate={tmp_path / 'jane.crt'}",
                            f"--client-key={tmp_path / 'jane.key'}", "--embed-certs")
    await asyncio.to_thread(jane, "config", "set-context", "--current", "--user=jane")
    who = await asyncio.to_thread(jane, "auth", "whoami", "-o", "json")
    info = json.loads(who.stdout)["status"]["userInfo"]
    assert info["username"] == name and "devs" in info["groups"], info
    await asyncio.to_thread(kubectl, "delete", "csr", name)
