"""kube-proxy's service health check: which Services get one and how many local endpoints they
count (``model.health_check``, a table), and the server itself on a real loopback socket
(``healthcheck.ServiceHealthServer`` outside any namespace): kube-proxy's JSON and headers, 200
with local endpoints, 503 without or when the proxy is unhealthy, closed when no longer wanted,
a port that cannot be opened reported once and opened on a later sync."""

from __future__ import annotations

import socket

import aiohttp
import pytest

from controlplane.etcd_process import free_port
from controlplane.proxy import model as M
from controlplane.proxy.healthcheck import ServiceHealthServer, health_body


def lb(local: bool = True, hc: int | None = 30100, **spec) -> dict:  # type: ignore[no-untyped-def]
    s = {"type": "LoadBalancer", "clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}],
         "externalTrafficPolicy": "Local" if local else "Cluster", **spec}
    if hc is not None:
        s["healthCheckNodePort"] = hc
    return {"metadata": {"name": "web", "namespace": "shop"}, "spec": s}


def slice_(*eps: tuple[str, str, dict], port: str = "http") -> dict:
    return {"metadata": {"name": "web-x", "namespace": "shop", "labels": {M.SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4", "ports": [{"name": port, "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": node, "conditions": cond} for ip, node, cond in eps]}


READY: dict = {"ready": True}


@pytest.mark.parametrize("svc,slices,want", [
    (lb(), [slice_(("10.42.1.2", "n1", READY), ("10.42.1.3", "n1", {}), ("10.42.2.2", "n2", READY))], (30100, 2)),
    (lb(), [slice_(("10.42.1.2", "n1", READY)), slice_(("10.42.1.2", "n1", READY), port="metrics")], (30100, 1)),
    (lb(), [slice_(("10.42.1.2", "n1", {"ready": False}),
                   ("10.42.1.3", "n1", {"ready": False, "serving": True, "terminating": True}))], (30100, 0)),
    (lb(), [slice_(("10.42.2.2", "n2", READY))], (30100, 0)),
    (lb(), [], (30100, 0)),
    (lb(local=False, hc=None), [slice_(("10.42.1.2", "n1", READY))], None),
    (lb(hc=None), [], None),
    (lb(type="NodePort"), [], None),
    ({**lb(), "metadata": {"name": "web", "namespace": "shop",
                           "labels": {M.PROXY_NAME_LABEL: "other"}}}, [], None),
], ids=["two-local-ready", "one-address-counted-once", "not-ready-and-terminating", "other-node", "no-slices",
        "cluster-policy", "no-port-yet", "nodeport", "other-proxy"])
def test_which_services_and_local_endpoints(svc, slices, want):
    assert M.health_check(svc, slices, "n1") == want


def test_body_is_kube_proxys_dedented_template():
    assert health_body("shop", "web", 2, True) == (
        '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "web"\n\t},\n'
        '\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}')


async def _get(port: int, path: str = "/healthz") -> tuple[int, dict, str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, dict(r.headers), await r.text()


async def test_server_answers_closes_and_reports_a_busy_port():
    healthy = {"ok": True}
    failures: list[tuple[str, str]] = []
    srv = ServiceHealthServer("n1", netns=None, address="127.0.0.1", proxy_healthy=lambda: healthy["ok"],
                              on_failure=lambda key, msg: failures.append((key, msg)))
    port = free_port()
    try:
        await srv.sync({"shop/web": (port, 2)})
        status, headers, body = await _get(port)
        assert status == 200 and body == health_body("shop", "web", 2, True)
        assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Load-Balancing-Endpoint-Weight"] == "2"
        assert (await _get(port, "/any/path"))[0] == 200  # every path, as kube-proxy's handler on "/"
        await srv.sync({"shop/web": (port, 0)})
        status, headers, body = await _get(port)
        assert status == 503 and '"localEndpoints": 0' in body and headers["X-Load-Balancing-Endpoint-Weight"] == "0"
        await srv.sync({"shop/web": (port, 1)})
        healthy["ok"] = False
        status, _, body = await _get(port)
        assert status == 503 and body.endswith('"serviceProxyHealthy": false\n}')
        await srv.sync({})
        assert srv.ports() == {}
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(port)
        # a port another socket holds: reported once (kube-proxy's Event text), retried later
        other = free_port()
        holder = socket.socket()
        holder.bind(("127.0.0.1", other))
        holder.listen(1)
        try:
            await srv.sync({"shop/db": (other, 1)})
            await srv.sync({"shop/db": (other, 1)})
            assert failures == [("shop/db", f'node n1 failed to start healthcheck "shop/db" on port {other}: '
                                            f"listen tcp 127.0.0.1:{other}: bind: address already in use")]
        finally:
            holder.close()
        healthy["ok"] = True
        await srv.sync({"shop/db": (other, 1)})
        assert srv.ports() == {"shop/db": other} and (await _get(other))[0] == 200
    finally:
        await srv.close()
