"""The dashboard's server side against a real apiserver: sign-in and sessions, the API proxy as
the signed-in user, the stream multiplexer (watches and logs over one WebSocket), the origin
checks, the exec relay's refusal path. The browser tests (test_dashboard_browser.py) drive the
same server through Chromium."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from tests.fixtures.dashboard import DashboardProcess

pytestmark = pytest.mark.integration


def _client(d: DashboardProcess) -> httpx.Client:
    return httpx.Client(base_url=d.url, timeout=10)


def _signed_in(d: DashboardProcess, kubeconfig) -> httpx.Client:
    c = _client(d)
    r = c.post("/auth/login", json={"kubeconfig": kubeconfig.read_text()})
    assert r.status_code == 200, r.text
    return c


def test_no_session_is_401_and_static_answers(dashboard: DashboardProcess) -> None:
    with _client(dashboard) as c:
        r = c.get("/k8s/api/v1/namespaces")
        assert r.status_code == 401 and r.json()["kind"] == "Status"
        assert c.get("/auth/session").status_code == 401
        assert c.get("/healthz").text == "ok"
        page = c.get("/pods")  # a view's URL: index.html (or the not-built note)
        assert page.status_code in (200, 503)
        assert c.get("/assets/missing.js").status_code == 404


@pytest.mark.parametrize("body,message", [
    ({"token": ""}, "a token is required"),
    ({"token": "two words"}, "one line without spaces"),
    ({"kubeconfig": "users: [{name: u, user: {client-certificate: /etc/x, client-key: /etc/y}}]\n"}, "names a file"),
    ({"kubeconfig": "users: [{name: u, user: {exec: {command: id}}}]\n"}, "not run by the dashboard"),
    ({"kubeconfig": "current-context: nope\n"}, 'context "nope" is not in the kubeconfig'),
    ({"kubeconfig": "{"}, "not valid YAML"),
], ids=["empty-token", "spaces", "file-paths", "exec-plugin", "unknown-context", "bad-yaml"])
def test_unusable_credentials_are_400(dashboard: DashboardProcess, body: dict, message: str) -> None:
    with _client(dashboard) as c:
        r = c.post("/auth/login", json=body)
        assert r.status_code == 400 and message in r.json()["message"]
        assert "cp_dashboard_session" not in r.cookies


def test_wrong_token_and_unauthorized_users(dashboard: DashboardProcess, apiserver, tmp_path) -> None:
    with _client(dashboard) as c:
        r = c.post("/auth/login", json={"token": "not-a-valid-token"})
        assert r.status_code == 401 and r.json()["message"] == "Unauthorized"
        assert "cp_dashboard_session" not in r.cookies
        # a kubeconfig user without credentials is anonymous, which the API refuses
        r = c.post("/auth/login", json={"kubeconfig": apiserver.token_kubeconfig("", tmp_path / "anon").read_text()})
        assert r.status_code in (401, 403) and r.json()["kind"] == "Status", r.text
        # a user RBAC grants nothing signs in (who they are is known) and gets the API's 403s
        jane = apiserver.kubeconfig_for("jane-dashboard", ["devs"], tmp_path / "jane").read_text()
        r = c.post("/auth/login", json={"kubeconfig": jane})
        assert r.status_code == 200, r.text
        assert r.json()["username"] == "jane-dashboard" and "devs" in r.json()["groups"]
        assert r.json()["credential"] == "client certificate"
        denied = c.get("/k8s/api/v1/namespaces")
        assert denied.status_code == 403 and "jane-dashboard" in denied.json()["message"]
        review = c.post("/k8s/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", json={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": {"verb": "create", "resource": "pods", "subresource": "exec",
                                            "namespace": "default"}}})
        assert review.status_code == 201 and review.json()["status"]["allowed"] is False


def test_session_proxy_and_logout(dashboard: DashboardProcess, apiserver) -> None:
    with _client(dashboard) as c:
        r = c.post("/auth/login", json={"kubeconfig": apiserver.kubeconfig.read_text()})
        assert r.status_code == 200, r.text
        assert r.json()["credential"] == "client certificate" and "system:masters" in r.json()["groups"]
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert c.get("/auth/session").status_code == 200
        ns = c.get("/k8s/api/v1/namespaces")
        assert ns.status_code == 200 and any(i["metadata"]["name"] == "default" for i in ns.json()["items"])
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dash-proxy"}, "data": {"a": "1"}}
        created = c.post("/k8s/api/v1/namespaces/default/configmaps", json=cm)
        assert created.status_code == 201
        again = c.post("/k8s/api/v1/namespaces/default/configmaps", json=cm)
        assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
        bad = c.post("/k8s/api/v1/namespaces/default/configmaps?dryRun=All",
                     json={**cm, "metadata": {"name": "Not_Valid"}})
        assert bad.status_code == 422 and bad.json()["details"]["causes"]
        foreign = c.delete("/k8s/api/v1/namespaces/default/configmaps/dash-proxy",
                           headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403
        assert c.delete("/k8s/api/v1/namespaces/default/configmaps/dash-proxy").status_code == 200
        assert c.get("/k8s/etc/passwd").status_code == 404
        assert c.post("/auth/logout").status_code == 200
        assert c.get("/k8s/api/v1/namespaces").status_code == 401


async def _ws(d: DashboardProcess, path: str, cookie: str, **kw):
    return await websockets.connect(d.url.replace("http", "ws", 1) + path,
                                    additional_headers={"Cookie": cookie}, **kw)


def test_mux_watches_and_logs(dashboard: DashboardProcess, apiserver) -> None:
    c = _signed_in(dashboard, apiserver.kubeconfig)
    cookie = f"cp_dashboard_session={c.cookies['cp_dashboard_session']}"
    rv = c.get("/k8s/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]

    async def run() -> None:
        ws = await _ws(dashboard, "/ws", cookie)
        try:
            await ws.send(json.dumps({"op": "watch", "id": "w1", "path": "/api/v1/namespaces/default/configmaps",
                                      "query": f"resourceVersion={rv}&allowWatchBookmarks=true"}))
            await ws.send(json.dumps({"op": "log", "id": "l1", "path": "/api/v1/namespaces/default/pods/nope/log"}))
            await ws.send(json.dumps({"op": "watch", "id": "bad", "path": "/etc/passwd"}))
            await asyncio.sleep(0.2)
            await asyncio.to_thread(c.post, "/k8s/api/v1/namespaces/default/configmaps",
                                    json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dash-mux"}})
            seen: dict[str, dict] = {}
            async with asyncio.timeout(10):
                while not ("w1" in seen and "l1" in seen and "bad" in seen):
                    f = json.loads(await ws.recv())
                    if f["id"] == "w1" and "events" in f:
                        names = [e["object"]["metadata"].get("name") for e in f["events"] if e["type"] == "ADDED"]
                        if "dash-mux" in names:
                            seen["w1"] = f
                    elif f["id"] in ("l1", "bad"):
                        seen[f["id"]] = f
            assert seen["l1"]["end"] and seen["l1"]["status"]["code"] == 404
            assert seen["bad"]["end"] and "bad request" in seen["bad"]["error"]
        finally:
            await ws.close()
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            await _ws(dashboard, "/ws", cookie, origin="http://evil.example")
        assert e.value.response.status_code == 403
        with pytest.raises(websockets.exceptions.InvalidStatus) as e:
            await _ws(dashboard, "/ws", "cp_dashboard_session=forged")
        assert e.value.response.status_code == 401

    try:
        asyncio.run(run())
    finally:
        c.delete("/k8s/api/v1/namespaces/default/configmaps/dash-mux")
        c.close()


def test_exec_of_a_missing_pod_ends_with_the_api_status(dashboard: DashboardProcess, apiserver) -> None:
    c = _signed_in(dashboard, apiserver.kubeconfig)
    cookie = f"cp_dashboard_session={c.cookies['cp_dashboard_session']}"

    async def run() -> bytes:
        ws = await _ws(dashboard, "/exec?path=/api/v1/namespaces/default/pods/nope/exec&command=hostname"
                                  "&stdout=true&stderr=true", cookie, subprotocols=["v5.channel.k8s.io"])
        try:
            async with asyncio.timeout(10):
                return await ws.recv()
        finally:
            await ws.close()

    frame = asyncio.run(run())
    c.close()
    assert frame[0] == 3
    status = json.loads(frame[1:])
    assert status["status"] == "Failure" and "nope" in status["message"]
