"""The GitOps controller (issue 18) end to end: real Git servers on loopback (git daemon,
git http-backend with basic auth, an SSH server), a private cluster with controllers, a
scheduler and a simulated node, and ``controlplane gitops-controller``.

Shows: dependency order and push-to-live within an interval and through the webhook (bad
signature 401, nothing triggered); prune with opt-out (and the CLI's diff preview and tree);
``kubectl edit`` reverted while an HPA-style ``/scale`` writer and a mutating-style manager
are not fought; dependsOn on a Sync and a Deployment; a bad manifest stalls with nothing
applied; unreachable repository, wrong credentials and a missing path reported and retried
with nothing deleted; SSH and HTTPS sources; kustomize, substitution, targetNamespace and
CEL health; the manifests folder.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Callable

import pytest
import yaml

from tests.fixtures.apiserver import KUBECTL
from tests.fixtures.poll import wait_for

pytestmark = pytest.mark.integration

G = "gitops.controlplane.io/v1"


def new_ns(c, prefix: str) -> str:
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    c.kubectl("create", "namespace", ns)
    return ns


def gitrepo(name: str, ns: str, url: str, interval: str = "2s", **spec: Any) -> dict:
    return {"apiVersion": G, "kind": "GitRepository", "metadata": {"name": name, "namespace": ns},
            "spec": {"url": url, "interval": interval, "ref": {"branch": "main"}, **spec}}


def sync(name: str, ns: str, source: str, path: str = "./", interval: str = "2s", **spec: Any) -> dict:
    return {"apiVersion": G, "kind": "Sync", "metadata": {"name": name, "namespace": ns},
            "spec": {"sourceRef": {"name": source}, "path": path, "interval": interval, "retryInterval": "1s", **spec}}


def cond(obj: dict | None, ctype: str = "Ready") -> dict:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == ctype:
            return c
    return {}


def ready(c, kind: str, name: str, ns: str, revision: str | None = None) -> Callable[[], dict | None]:
    def check() -> dict | None:
        obj = c.get(kind, name, ns)
        if cond(obj).get("status") != "True":
            return None
        if revision and revision not in ((obj["status"].get("lastAppliedRevision") or "")
                                         + ((obj["status"].get("artifact") or {}).get("revision") or "")):
            return None
        return obj
    return check


def docs(*objs: dict) -> str:
    return "---\n".join(yaml.safe_dump(o) for o in objs)


def cm(name: str, ns: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def deployment(name: str, ns: str, image: str = "busybox:1.36", replicas: int = 1, **pod: Any) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "main", "image": image}], **pod}}}}


def rv(obj: dict) -> int:
    return int(obj["metadata"]["resourceVersion"])


class CreationWatch:
    """Live watches recording the resourceVersion of each object's ADDED event (its creation:
    later status writes change the object's own resourceVersion)."""

    def __init__(self, c, paths: list[str]) -> None:
        import threading
        self.created: dict[tuple[str, str], int] = {}
        since = json.loads(c.kubectl("get", "namespaces", "-o", "json").stdout)["metadata"]["resourceVersion"]
        self.ctx = c.api.ssl_context()
        self.threads = [threading.Thread(target=self._run, args=(c.api.url, p, since), daemon=True) for p in paths]
        for t in self.threads:
            t.start()

    def _run(self, base: str, path: str, since: str) -> None:
        with urllib.request.urlopen(f"{base}{path}?watch=true&resourceVersion={since}&timeoutSeconds=60", timeout=70,
                                    context=self.ctx) as r:
            for line in r:
                ev = json.loads(line)
                if ev["type"] == "ADDED":
                    self.created.setdefault((path, ev["object"]["metadata"]["name"]), int(ev["object"]["metadata"]["resourceVersion"]))


def post_webhook(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def github_sig(token: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(token, body, hashlib.sha256).hexdigest()


CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
       "metadata": {"name": "gadgets.demo.example.com"},
       "spec": {"group": "demo.example.com", "scope": "Namespaced",
                "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                "versions": [{"name": "v1", "served": True, "storage": True,
                              "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                  "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}}


def test_sync_in_dependency_order_push_and_webhook(gitops_cluster, git_server):
    c = gitops_cluster
    ns = f"demo-{uuid.uuid4().hex[:6]}"
    home = new_ns(c, "gh")
    repo = git_server.repo("ordered")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    gadget = {"apiVersion": "demo.example.com/v1", "kind": "Gadget", "metadata": {"name": "g1", "namespace": ns},
              "spec": {"size": 3}}
    # one file, in an order that would fail if applied as written
    repo.write("deploy/all.yaml", docs(gadget, deployment("web", ns), svc, cm("cfg", ns, greeting="hello"),
                                       {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, CRD))
    rev1 = repo.push("first")
    paths = ["/api/v1/namespaces", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
             f"/api/v1/namespaces/{ns}/configmaps", f"/api/v1/namespaces/{ns}/services",
             f"/apis/apps/v1/namespaces/{ns}/deployments"]
    watch = CreationWatch(c, paths)
    c.apply([gitrepo("ordered", home, git_server.git_url("ordered"), interval="3s"),
             sync("ordered", home, "ordered", "./deploy", prune=True, wait=True, timeout="60s")])
    s = wait_for("sync ready", ready(c, "sync", "ordered", home, rev1), timeout=90)
    assert s["status"]["lastAppliedRevision"] == f"main@sha1:{rev1}"
    names = [ns, "gadgets.demo.example.com", "cfg", "web", "web"]
    created = {p.rsplit("/", 1)[1]: watch.created[(p, n)] for p, n in zip(paths, names)}
    created["gadgets"] = rv(c.get("gadget", "g1", ns))  # nothing else writes it
    # CRDs and Namespaces first, then config, Services, workloads, custom resources last
    assert max(created["namespaces"], created["customresourcedefinitions"]) < created["configmaps"] \
        < created["services"] < created["deployments"] < created["gadgets"], created
    assert c.get("deployment", "web", ns)["status"].get("availableReplicas") == 1  # wait: the rollout finished
    assert c.get("configmap", "cfg", ns)["metadata"]["labels"]["gitops.controlplane.io/name"] == "ordered"
    inv = {e["id"] for e in s["status"]["inventory"]["entries"]}
    assert f"{ns}_g1_demo.example.com_Gadget" in inv and f"_{ns}__Namespace" in inv and len(inv) == 6

    # a push is live within one interval (3 s) of the source, plus the apply
    repo.write("deploy/all.yaml", (repo.work / "deploy/all.yaml").read_text().replace("greeting: hello", "greeting: hi"))
    t0 = time.monotonic()
    repo.push("second")
    wait_for("pushed change live", lambda: (c.get("configmap", "cfg", ns) or {}).get("data", {}).get("greeting") == "hi",
             timeout=3 + 5)
    took = time.monotonic() - t0
    assert took < 3 + 5, took

    # through the webhook: the source's interval is now an hour
    c.kubectl("patch", "gitrepository", "ordered", "-n", home, "--type=merge", "-p", '{"spec":{"interval":"1h"}}')
    token = b"hook-token-1"
    c.kubectl("create", "secret", "generic", "hook", "-n", home, f"--from-literal=token={token.decode()}")
    c.apply({"apiVersion": G, "kind": "Receiver", "metadata": {"name": "github", "namespace": home},
             "spec": {"type": "github", "secretRef": {"name": "hook"}, "resources": [{"name": "*"}]}})
    recv = wait_for("receiver ready", ready(c, "receiver", "github", home))
    assert recv["status"]["webhookPath"] == f"/hook/{home}/github"
    url = c.webhook_url + recv["status"]["webhookPath"]
    repo.write("deploy/all.yaml", (repo.work / "deploy/all.yaml").read_text().replace("greeting: hi", "greeting: hooked"))
    rev3 = repo.push("third")
    body = json.dumps({"ref": "refs/heads/main", "after": rev3,
                       "repository": {"full_name": "x/ordered", "clone_url": git_server.http_url("ordered")}}).encode()
    code, _ = post_webhook(url, body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": github_sig(b"wrong", body)})
    assert code == 401
    code, _ = post_webhook(url, body, {"X-GitHub-Event": "push"})
    assert code == 401
    time.sleep(1.5)  # nothing may happen now: check it did not
    src = c.get("gitrepository", "ordered", home)
    assert "gitops.controlplane.io/requestedAt" not in (src["metadata"].get("annotations") or {})
    assert c.get("configmap", "cfg", ns)["data"]["greeting"] == "hi"
    assert c.events(home, "github", "InvalidSignature")
    t0 = time.monotonic()
    code, out = post_webhook(url, body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": github_sig(token, body)})
    assert code == 200 and out["triggered"] == [f"GitRepository/{home}/ordered"], out
    wait_for("webhook push live", lambda: (c.get("configmap", "cfg", ns) or {}).get("data", {}).get("greeting") == "hooked",
             timeout=15, every=0.05)
    took = time.monotonic() - t0
    assert took < 10, took
    assert 'gitops_webhook_requests_total{code="401",type="github"} 2.0' in c.metrics()

    # GitLab: a token header instead of an HMAC
    c.apply({"apiVersion": G, "kind": "Receiver", "metadata": {"name": "gitlab", "namespace": home},
             "spec": {"type": "gitlab", "secretRef": {"name": "hook"}}})
    gl = wait_for("gitlab receiver ready", ready(c, "receiver", "gitlab", home))
    repo.write("deploy/all.yaml", (repo.work / "deploy/all.yaml").read_text().replace("greeting: hooked", "greeting: gitlab"))
    repo.push("fourth")
    body = json.dumps({"object_kind": "push", "ref": "refs/heads/main",
                       "project": {"path_with_namespace": "team/ordered", "git_http_url": git_server.http_url("ordered")}}).encode()
    url = c.webhook_url + gl["status"]["webhookPath"]
    assert post_webhook(url, body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "nope"})[0] == 401
    code, out = post_webhook(url, body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token.decode()})
    assert code == 200 and out["triggered"] == [f"GitRepository/{home}/ordered"], out
    wait_for("gitlab push live", lambda: (c.get("configmap", "cfg", ns) or {}).get("data", {}).get("greeting") == "gitlab",
             timeout=15, every=0.05)


def test_prune_with_opt_out_diff_and_tree(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "prune")
    repo = git_server.repo("prune")
    keep = cm("keep", ns, a="1")
    keep["metadata"]["annotations"] = {"gitops.controlplane.io/prune": "disabled"}
    repo.write("a.yaml", yaml.safe_dump(cm("a", ns, a="1"))).write("keep.yaml", yaml.safe_dump(keep))
    repo.write("stay.yaml", yaml.safe_dump(cm("stay", ns, a="1")))
    rev1 = repo.push("first")
    c.apply([gitrepo("prune", ns, git_server.git_url("prune"), interval="1h"),
             sync("prune", ns, "prune", interval="1h", prune=True)])
    wait_for("synced", ready(c, "sync", "prune", ns, rev1))
    assert all(c.get("configmap", n, ns) for n in ("a", "keep", "stay"))

    r = c.cli("-n", ns, "suspend", "sync", "prune")
    assert r.returncode == 0 and c.get("sync", "prune", ns)["spec"]["suspend"] is True
    repo.remove("a.yaml").remove("keep.yaml")
    repo.write("stay.yaml", yaml.safe_dump(cm("stay", ns, a="2")))
    repo.write("new.yaml", yaml.safe_dump(cm("new", ns, a="1")))
    rev2 = repo.push("remove a and keep")
    r = c.cli("-n", ns, "reconcile", "source", "prune")
    assert r.returncode == 0 and rev2 in r.stdout, r.stdout + r.stderr
    # the dry-run preview: nothing has changed yet (the sync is suspended)
    d = c.cli("-n", ns, "diff", "sync", "prune", "--data-dir", str(c.data_dir))
    assert d.returncode == 1, d.stdout + d.stderr
    assert f"ConfigMap/{ns}/new created" in d.stdout and f"ConfigMap/{ns}/stay drifted" in d.stdout
    assert "+  a: '2'" in d.stdout or "+  a: \"2\"" in d.stdout, d.stdout
    assert f"ConfigMap/{ns}/a deleted (pruned)" in d.stdout
    assert f"ConfigMap/{ns}/keep kept: gitops.controlplane.io/prune: disabled" in d.stdout
    assert c.get("configmap", "a", ns) is not None and c.get("configmap", "new", ns) is None

    assert c.cli("-n", ns, "resume", "sync", "prune").returncode == 0
    r = c.cli("-n", ns, "reconcile", "sync", "prune")
    assert r.returncode == 0 and rev2 in r.stdout, r.stdout + r.stderr
    assert c.get("configmap", "a", ns) is None
    assert c.get("configmap", "keep", ns) is not None  # opted out
    assert c.get("configmap", "stay", ns)["data"] == {"a": "2"} and c.get("configmap", "new", ns)
    s = c.get("sync", "prune", ns)
    assert sorted(e["id"] for e in s["status"]["inventory"]["entries"]) == [f"{ns}_new__ConfigMap", f"{ns}_stay__ConfigMap"]
    table = c.kubectl("get", "syncs", "-n", ns).stdout.splitlines()
    assert table[0].split() == ["NAME", "SOURCE", "REVISION", "SUSPENDED", "READY", "AGE"]
    assert table[1].split()[:5] == ["prune", "prune", f"main@sha1:{rev2}", "false", "True"], table
    t = c.cli("-n", ns, "tree", "sync", "prune")
    assert t.stdout.splitlines() == [f"Sync/{ns}/prune", f"├── ConfigMap/{ns}/new", f"└── ConfigMap/{ns}/stay"], t.stdout
    d = c.cli("-n", ns, "diff", "sync", "prune", "--data-dir", str(c.data_dir))
    assert d.returncode == 0 and "no changes" in d.stdout, d.stdout + d.stderr
    ev = c.events(ns, "prune", "ReconciliationSucceeded")
    assert any(f"ConfigMap/{ns}/a deleted" in e["message"] for e in ev), ev


def test_drift_reverted_other_managers_left_alone(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "drift")
    repo = git_server.repo("drift")
    repo.write("web.yaml", yaml.safe_dump(deployment("web", ns, image="busybox:1.36", replicas=2)))
    rev = repo.push("first")
    c.apply([gitrepo("drift", ns, git_server.git_url("drift"), interval="1h"),
             sync("drift", ns, "drift", interval="1h")])
    wait_for("synced", ready(c, "sync", "drift", ns, rev))

    # a person edits the image; an HPA scales through /scale with its own field manager;
    # a mutating-style controller adds an env var and an annotation with its own manager
    res = subprocess.run([KUBECTL, "--kubeconfig", str(c.api.kubeconfig), "--cache-dir", str(c.data_dir / "kc"),
                          "edit", "deployment", "web", "-n", ns], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "HOME": str(c.data_dir / "kc"), "KUBE_EDITOR": "sed -i s/busybox:1.36/busybox:9.9/"})
    assert res.returncode == 0, res.stderr
    assert c.get("deployment", "web", ns)["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:9.9"
    scale = urllib.request.Request(
        f"{c.api.url}/apis/apps/v1/namespaces/{ns}/deployments/web/scale?fieldManager=horizontal-pod-autoscaler",
        data=b'{"spec":{"replicas":3}}', method="PATCH", headers={"Content-Type": "application/merge-patch+json"})
    urllib.request.urlopen(scale, timeout=10, context=c.api.ssl_context()).read()
    inject = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns,
                                                                         "annotations": {"injector/seen": "yes"}},
              "spec": {"template": {"spec": {"containers": [{"name": "main", "env": [{"name": "INJECTED", "value": "1"}]}]}}}}
    ssa = urllib.request.Request(
        f"{c.api.url}/apis/apps/v1/namespaces/{ns}/deployments/web?fieldManager=sidecar-injector&force=true",
        data=json.dumps(inject).encode(), method="PATCH", headers={"Content-Type": "application/apply-patch+yaml"})
    urllib.request.urlopen(ssa, timeout=10, context=c.api.ssl_context()).read()
    r = c.cli("-n", ns, "reconcile", "sync", "drift")
    assert r.returncode == 0, r.stdout + r.stderr
    d = c.get("deployment", "web", ns)
    main = d["spec"]["template"]["spec"]["containers"][0]
    assert main["image"] == "busybox:1.36"  # kubectl edit reverted
    assert d["spec"]["replicas"] == 3  # the HPA's replicas stay
    assert main["env"] == [{"name": "INJECTED", "value": "1"}]  # the injector's addition stays
    assert d["metadata"]["annotations"]["injector/seen"] == "yes"
    ev = c.events(ns, "drift", "ReconciliationSucceeded")
    assert any(f"Deployment/{ns}/web configured" in e["message"] for e in ev), ev
    # the next sync finds nothing to do: no write at all (the resourceVersion stays)
    before = rv(c.get("deployment", "web", ns))
    r = c.cli("-n", ns, "reconcile", "sync", "drift")
    assert r.returncode == 0
    assert rv(c.get("deployment", "web", ns)) == before
    assert c.get("deployment", "web", ns)["spec"]["replicas"] == 3


def test_depends_on_sync_and_deployment(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "deps")
    base, app = git_server.repo("deps-base"), git_server.repo("deps-app")
    base.write("web.yaml", yaml.safe_dump(deployment("base-web", ns)))
    base.push("base")
    app.write("cfg.yaml", yaml.safe_dump(cm("app-cfg", ns, a="1")))
    rev_app = app.push("app")
    # the gate Deployment is not ready: it asks for a node label no node has
    c.apply(deployment("gate", ns, nodeSelector={"gitops-test/missing": "yes"}))
    c.apply(cm("flag", ns, go="no"))  # any object, with a CEL ready-expression
    c.apply([gitrepo("base", ns, git_server.git_url("deps-base")), gitrepo("app", ns, git_server.git_url("deps-app")),
             sync("base", ns, "base", wait=True, suspend=True),
             sync("app", ns, "app", dependsOn=[{"name": "base"},
                                               {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gate"},
                                               {"apiVersion": "v1", "kind": "ConfigMap", "name": "flag",
                                                "readyExpr": "data.go == 'yes'"}])])

    def waiting(*parts: str, absent: str = "\0") -> Callable[[], dict | None]:
        def check() -> dict | None:
            r = cond(c.get("sync", "app", ns))
            msg = r.get("message", "")
            return r if r.get("reason") == "DependencyNotReady" and all(p in msg for p in parts) and absent not in msg else None
        return check
    r = wait_for("app waits for all three", waiting(f"Sync {ns}/base", f"Deployment {ns}/gate",
                                                     f"ConfigMap {ns}/flag (readyExpr is false"))
    assert r["status"] == "False"
    assert c.get("configmap", "app-cfg", ns) is None

    c.kubectl("patch", "sync", "base", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    wait_for("base ready", ready(c, "sync", "base", ns), timeout=60)
    wait_for("app no longer waits for base", waiting(f"Deployment {ns}/gate", absent=f"Sync {ns}/base"))
    assert c.get("configmap", "app-cfg", ns) is None

    c.kubectl("patch", "deployment", "gate", "-n", ns, "--type=json",
              "-p", '[{"op":"remove","path":"/spec/template/spec/nodeSelector"}]')
    wait_for("app waits for the flag only", waiting(f"ConfigMap {ns}/flag", absent="Deployment"))
    c.kubectl("patch", "configmap", "flag", "-n", ns, "--type=merge", "-p", '{"data":{"go":"yes"}}')
    wait_for("app ready", ready(c, "sync", "app", ns, rev_app), timeout=60)
    assert c.get("configmap", "app-cfg", ns)["data"] == {"a": "1"}


def test_bad_manifest_stalls_and_applies_nothing(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "bad")
    repo = git_server.repo("bad")
    repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="1"))).write("web.yaml", yaml.safe_dump(deployment("web", ns)))
    rev1 = repo.push("good")
    c.apply([gitrepo("bad", ns, git_server.git_url("bad")), sync("bad", ns, "bad", prune=True)])
    wait_for("good revision applied", ready(c, "sync", "bad", ns, rev1))
    web_rv = rv(c.get("deployment", "web", ns))

    broken = deployment("web", ns, image="busybox:2")
    broken["spec"]["replicas"] = "three"  # schema error
    repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="2"))).write("web.yaml", yaml.safe_dump(broken))
    repo.write("more.yaml", yaml.safe_dump(cm("more", ns, v="1")))
    rev2 = repo.push("bad")

    def stalled() -> dict | None:
        s = c.get("sync", "bad", ns)
        return s if cond(s, "Stalled").get("status") == "True" and s["status"].get("lastAttemptedRevision", "").endswith(rev2) else None
    s = wait_for("stalled", stalled)
    r = cond(s)
    assert r["status"] == "False" and r["reason"] == "ValidationFailed"
    assert "Deployment" in r["message"] and "replicas" in r["message"], r["message"]
    assert s["status"]["lastAppliedRevision"] == f"main@sha1:{rev1}"
    assert c.get("configmap", "cfg", ns)["data"] == {"v": "1"}  # nothing of the bad revision
    assert c.get("configmap", "more", ns) is None
    assert rv(c.get("deployment", "web", ns)) == web_rv  # the previous revision's objects untouched
    assert c.events(ns, "bad", "ValidationFailed")

    repo.write("web.yaml", yaml.safe_dump(deployment("web", ns)))
    rev3 = repo.push("fixed")
    wait_for("fixed revision applied", ready(c, "sync", "bad", ns, rev3))
    assert c.get("configmap", "cfg", ns)["data"] == {"v": "2"} and c.get("configmap", "more", ns)
    assert cond(c.get("sync", "bad", ns), "Stalled") == {}


def test_unreachable_wrong_credentials_missing_path(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "fail")
    repo = git_server.repo("fail")
    repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="1")))
    rev = repo.push("first")
    c.kubectl("create", "secret", "generic", "good", "-n", ns, "--from-literal=username=git",
              "--from-literal=password=s3cret-pw")
    c.kubectl("create", "secret", "generic", "bad", "-n", ns, "--from-literal=username=git",
              "--from-literal=password=wrong")
    c.apply([gitrepo("fail", ns, git_server.http_url("fail"), secretRef={"name": "good"}),
             sync("fail", ns, "fail", prune=True)])
    wait_for("synced over https basic auth", ready(c, "sync", "fail", ns, rev))

    def failing(kind: str, name: str, reason: str) -> Callable[[], dict | None]:
        def check() -> dict | None:
            r = cond(c.get(kind, name, ns))
            return r if r.get("status") == "False" and r.get("reason") == reason else None
        return check
    # wrong credentials
    c.kubectl("patch", "gitrepository", "fail", "-n", ns, "--type=merge", "-p", '{"spec":{"secretRef":{"name":"bad"}}}')
    r = wait_for("auth failure", failing("gitrepository", "fail", "AuthenticationFailed"))
    assert "401" in r["message"] or "Authentication failed" in r["message"], r["message"]
    wait_for("auth retried", lambda: [e for e in c.events(ns, "fail", "AuthenticationFailed") if e.get("count", 1) >= 2])
    # unreachable
    from controlplane.etcd_process import free_port
    dead = f"git://127.0.0.1:{free_port()}/fail.git"
    c.kubectl("patch", "gitrepository", "fail", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"url": dead}}))
    r = wait_for("unreachable", failing("gitrepository", "fail", "GitOperationFailed"))
    assert "Connection refused" in r["message"] or "unable to connect" in r["message"], r["message"]
    retried = wait_for("retries counted in the Event", lambda: [e for e in c.events(ns, "fail", "GitOperationFailed")
                                                               if e.get("count", 1) >= 2])
    assert "127.0.0.1" in retried[0]["message"]
    assert c.events(ns, "fail", "AuthenticationFailed")
    # the sync keeps the last artifact: nothing deleted, still ready
    s = c.get("sync", "fail", ns)
    assert cond(s)["status"] == "True" and c.get("configmap", "cfg", ns)
    # a missing path
    c.kubectl("patch", "sync", "fail", "-n", ns, "--type=merge", "-p", '{"spec":{"path":"./missing"}}')
    r = wait_for("missing path", failing("sync", "fail", "BuildFailed"))
    assert "'./missing' not found" in r["message"], r["message"]
    wait_for("retried", lambda: [e for e in c.events(ns, "fail", "BuildFailed") if e.get("count", 1) >= 2])
    assert c.get("configmap", "cfg", ns) is not None  # no object deleted
    assert [e["id"] for e in c.get("sync", "fail", ns)["status"]["inventory"]["entries"]] == [f"{ns}_cfg__ConfigMap"]


def test_ssh_source_with_semver(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "ssh")
    repo = git_server.repo("sshrepo")
    repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="1.0.0"))).push("v1", tag="v1.0.0")
    rev11 = repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="1.1.0"))).push("v1.1", tag="v1.1.0")
    repo.write("cfg.yaml", yaml.safe_dump(cm("cfg", ns, v="2.0.0"))).push("v2", tag="v2.0.0")
    c.kubectl("create", "secret", "generic", "ssh", "-n", ns, f"--from-literal=identity={git_server.ssh.identity}",
              f"--from-literal=known_hosts={git_server.ssh.known_hosts}")
    c.apply([gitrepo("sshrepo", ns, git_server.ssh_url("sshrepo"), secretRef={"name": "ssh"},
                     ref={"semver": ">=1.0.0 <2.0.0"}), sync("sshrepo", ns, "sshrepo")])
    src = wait_for("ssh source ready", ready(c, "gitrepository", "sshrepo", ns))
    assert src["status"]["artifact"]["revision"] == f"v1.1.0@sha1:{rev11}"
    assert src["status"]["artifact"]["digest"].startswith("sha256:")
    wait_for("applied", lambda: (c.get("configmap", "cfg", ns) or {}).get("data") == {"v": "1.1.0"})
    # a wrong host key is an authentication failure
    c.kubectl("create", "secret", "generic", "ssh-bad", "-n", ns, f"--from-literal=identity={git_server.ssh.identity}",
              "--from-literal=known_hosts=[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
    c.kubectl("patch", "gitrepository", "sshrepo", "-n", ns, "--type=merge", "-p", '{"spec":{"secretRef":{"name":"ssh-bad"}}}')
    wait_for("host key rejected", lambda: cond(c.get("gitrepository", "sshrepo", ns)).get("reason") == "AuthenticationFailed")


def test_kustomize_substitution_target_namespace_and_cel_health(gitops_cluster, git_server):
    c = gitops_cluster
    ns = new_ns(c, "kust")
    repo = git_server.repo("kust")
    repo.write("app/kustomization.yaml", yaml.safe_dump({
        "resources": ["cfg.yaml", "web.yaml"], "namePrefix": "k-", "commonLabels": {"team": "blue"},
        "images": [{"name": "busybox", "newTag": "1.37"}]}))
    repo.write("app/cfg.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
                               "data: {env: '${ENVIRONMENT}', region: '${REGION:=eu}', literal: '$${KEEP}'}\n")
    repo.write("app/web.yaml", yaml.safe_dump(deployment("web", "ignored", image="busybox")).replace(
        "replicas: 1", "replicas: ${REPLICAS}"))
    rev = repo.push("kustomize")
    c.kubectl("create", "configmap", "vars", "-n", ns, "--from-literal=ENVIRONMENT=prod", "--from-literal=REPLICAS=2")
    # the sync acts as its ServiceAccount (impersonated): it may write in its namespace, read around
    c.kubectl("create", "rolebinding", "deployer-edit", "--clusterrole=edit", f"--serviceaccount={ns}:deployer", "-n", ns)
    c.kubectl("create", "clusterrolebinding", f"deployer-view-{ns}", "--clusterrole=view",
              f"--serviceaccount={ns}:deployer")
    c.apply([gitrepo("kust", ns, git_server.git_url("kust")),
             sync("kust", ns, "kust", "./app", targetNamespace=ns, wait=True, timeout="60s",
                  serviceAccountName="deployer",
                  postBuild={"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]},
                  healthCheckExprs=[{"apiVersion": "v1", "kind": "ConfigMap", "current": "data.env == 'prod'",
                                     "failed": "data.env == 'broken'"}])])
    wait_for("synced", ready(c, "sync", "kust", ns, rev), timeout=90)
    cfg = c.get("configmap", "k-cfg", ns)
    assert cfg["data"] == {"env": "prod", "region": "eu", "literal": "${KEEP}"}
    assert cfg["metadata"]["labels"]["team"] == "blue"
    web = c.get("deployment", "k-web", ns)
    assert web["spec"]["replicas"] == 2 and web["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
    assert web["status"].get("availableReplicas") == 2
    # a CEL rule that says failed
    c.kubectl("patch", "configmap", "vars", "-n", ns, "--type=merge", "-p", '{"data":{"ENVIRONMENT":"broken"}}')
    r = c.cli("-n", ns, "reconcile", "sync", "kust")
    assert r.returncode == 1
    s = c.get("sync", "kust", ns)
    assert cond(s)["reason"] == "HealthCheckFailed" and "data.env == 'broken'" in cond(s)["message"], cond(s)


def test_manifests_folder(gitops_cluster):
    c = gitops_cluster
    ns = new_ns(c, "mf")
    folder = c.data_dir / "manifests"
    keep = cm("kept", ns, a="1")
    keep["metadata"]["annotations"] = {"gitops.controlplane.io/prune": "disabled"}
    (folder / f"{ns}.yaml").write_text(docs(cm("one", ns, a="1"), keep))
    mf = wait_for("manifest file applied", ready(c, "manifestfile", ns, None))
    assert mf["spec"]["path"].endswith(f"/manifests/{ns}.yaml")
    assert c.get("configmap", "one", ns)["data"] == {"a": "1"} and c.get("configmap", "kept", ns)

    (folder / f"{ns}.yaml").write_text(docs(cm("one", ns, a="2"), keep))
    wait_for("change applied", lambda: (c.get("configmap", "one", ns) or {}).get("data") == {"a": "2"})
    # drift corrected at the folder's interval (5 s in this cluster)
    c.kubectl("patch", "configmap", "one", "-n", ns, "--type=merge", "-p", '{"data":{"a":"edited"}}')
    wait_for("drift reverted", lambda: (c.get("configmap", "one", ns) or {}).get("data") == {"a": "2"}, timeout=20)

    (folder / f"{ns}.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: one, namespace: " + ns
                                       + "}\ndata: {a: [1]}\n")
    r = wait_for("error visible", lambda: (x := cond(c.get("manifestfile", ns))).get("status") == "False" and x)
    assert "ConfigMap" in r["message"], r
    assert c.get("configmap", "one", ns)["data"] == {"a": "2"}

    (folder / f"{ns}.yaml").unlink()
    wait_for("objects removed", lambda: c.get("configmap", "one", ns) is None and c.get("manifestfile", ns) is None)
    assert c.get("configmap", "kept", ns) is not None
