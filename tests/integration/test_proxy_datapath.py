"""The service proxy's rules on the real kernel, without an apiserver: a node network (node
namespace, link, CNI bridge) with busybox ``httpd`` processes in pod namespaces, the proxy's
generated nftables programmed into it (full and partial syncs), and real requests from a pod
namespace: random spreads, round-robin rotates strictly, ClientIP affinity sticks, a Service
without endpoints is refused, a NodePort answers on the host's 127.0.0.1 and the host address
reaches only the published loopback port. Every address used is one this test created."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from controlplane.network import addressing as A
from controlplane.network.hostcmd import delete_table, nft
from controlplane.network.node import NodeNetwork, NodeNetworkConfig
from controlplane.proxy import model as M
from controlplane.proxy import rules as R
from tests.fixtures.agent import HAVE_RUNC
from tests.fixtures.network import allocate_test_net, network_leftovers

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(120),
              pytest.mark.asyncio(loop_scope="session")]


def wget(netns: str, url: str, timeout: float = 5) -> tuple[int, str]:
    r = subprocess.run(["ip", "netns", "exec", netns, "busybox", "wget", "-q", "-O", "-", url],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, (r.stdout or r.stderr).strip()


@pytest.fixture
async def datapath(tmp_path: Path):
    if not HAVE_RUNC:
        pytest.fail("needs root, nft and busybox")
    net = allocate_test_net()
    nets = A.ClusterNetworks.parse(net.cluster_cidr, net.service_cidr)
    node = f"d{uuid.uuid4().hex[:6]}"
    nn = NodeNetwork(NodeNetworkConfig(root=tmp_path / "node", node=node, nets=nets, api_url=f"test://{node}"))
    await nn.setup(net.pod_cidr(1))
    pods, procs = [], []
    try:
        for i in range(4):
            att = await nn.add_pod(f"uid-{node}-{i}")
            www = tmp_path / f"www{i}"
            www.mkdir()
            (www / "index.html").write_text(f"backend-{i}\n")
            procs.append(subprocess.Popen(["ip", "netns", "exec", att.netns, "busybox", "httpd", "-f", "-p", "8080",
                                           "-h", str(www)]))
            pods.append(att)
        for att in pods[:3]:  # wait until every server listens
            for _ in range(50):
                if wget(pods[3].netns, f"http://{att.ip}:8080/")[0] == 0:
                    break
                await asyncio.sleep(0.05)
        yield nn, nets, net, pods, node
    finally:
        for p in procs:
            p.kill()
            p.wait()
        for i in range(4):
            await nn.remove_pod(f"uid-{node}-{i}")
        table = A.proxy_table_name(nn.iid)
        await delete_table("ip", table)
        await nn.teardown()
        assert network_leftovers(tmp_path / "node", node, net) == []


def _service(name, ip, eps, **kw):
    ann = kw.pop("ann", {})
    svc = {"metadata": {"name": name, "namespace": "default", "annotations": ann},
           "spec": {"clusterIP": ip, "ports": [{"port": 80, "protocol": "TCP", **kw.pop("port", {})}], **kw}}
    sl = {"metadata": {"name": f"{name}-1", "namespace": "default", "labels": {M.SERVICE_NAME_LABEL: name}},
          "addressType": "IPv4", "ports": [{"port": 8080, "protocol": "TCP"}],
          "endpoints": [{"addresses": [p.ip], "conditions": {"ready": True}, "nodeName": "n"} for p in eps]}
    return svc, sl


def _frags(ctx, *pairs) -> dict[str, R.Fragment]:
    out = {}
    for svc, sl in pairs:
        for sp in M.service_ports(svc, [sl]):
            out[sp.key] = R.service_fragment(sp, ctx)
    return out


async def test_balancing_affinity_reject_nodeport_and_host_address(datapath):
    nn, nets, net, pods, node = datapath
    ctx = R.TableContext(A.proxy_table_name(nn.iid), "n", nets)
    ip = lambda i: str(nets.service_cidr.network_address + i)  # noqa: E731
    rr = _service("rr", ip(20), pods[:3], ann={M.ALGORITHM_ANNOTATION: "round-robin"})
    rnd = _service("rnd", ip(21), pods[:3])
    aff = _service("aff", ip(22), pods[:3], sessionAffinity="ClientIP")
    empty = _service("empty", ip(23), [])
    np_ = _service("np", ip(24), pods[:1], type="NodePort", port={"nodePort": 31999})
    frags = _frags(ctx, rr, rnd, aff, empty, np_)
    await nft(R.full_script(ctx, frags), netns=nn.netns)
    client = pods[3].netns

    seq = [wget(client, f"http://{ip(20)}/")[1] for _ in range(9)]
    assert len(set(seq)) == 3 and all(seq[i] == seq[i % 3] for i in range(9)), seq  # strict rotation
    counts = Counter(wget(client, f"http://{ip(21)}/")[1] for _ in range(60))
    assert set(counts) == {"backend-0", "backend-1", "backend-2"} and min(counts.values()) >= 5, counts
    sticky = {wget(client, f"http://{ip(22)}/")[1] for _ in range(10)}
    assert len(sticky) == 1, sticky
    code, out = wget(client, f"http://{ip(23)}/")
    assert code != 0 and "refused" in out.lower(), out
    code, out = wget(client, f"http://{ip(20)}:81/")  # a port the cluster IP does not serve
    assert code != 0

    # partial sync: round-robin Service loses a backend, the empty one gets one
    rr2 = _service("rr", ip(20), pods[:2], ann={M.ALGORITHM_ANNOTATION: "round-robin"})
    empty2 = _service("empty", ip(23), pods[2:3])
    new = dict(frags, **_frags(ctx, rr2, empty2))
    await nft(R.diff_script(ctx, {k: (frags.get(k), new.get(k)) for k in set(frags) | set(new)}), netns=nn.netns)
    assert {wget(client, f"http://{ip(20)}/")[1] for _ in range(6)} == {"backend-0", "backend-1"}
    assert wget(client, f"http://{ip(23)}/") == (0, "backend-2")

    # the host: NodePort on 127.0.0.1, and the host address only on its published port
    a = nn.addrs
    srv = subprocess.Popen(["busybox", "nc", "-l", "-p", "0", "-s", "127.0.0.1"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # something on loopback that must stay unreachable
    try:
        await nft(R.host_script(ctx.table, nn.host_link, str(a.node_link_address), str(nets.host_address),
                                {("tcp", 31999)}, set()))
        r = subprocess.run(["busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:31999/"], capture_output=True,
                           text=True, timeout=5)
        assert r.stdout.strip() == "backend-0", r.stderr
        assert wget(client, f"http://{a.node_link_address}:31999/") == (0, "backend-0")
        code, _ = wget(client, f"http://{nets.host_address}:22/", timeout=10)
        assert code != 0  # not published: never reaches the host's loopback or its services
    finally:
        srv.kill()
        srv.wait()


UDP_ECHO = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('0.0.0.0',8080))\n"
            "while True:\n d,a=s.recvfrom(512)\n s.sendto(sys.argv[1].encode()+b':'+d,a)\n")
UDP_ASK = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.settimeout(1)\n"
           "for _ in range(5):\n s.sendto(b'q',(sys.argv[1],int(sys.argv[2])))\n"
           " try:\n  print(s.recv(512).decode());break\n except OSError:\n  pass\n")


def udp_ask(netns: str | None, ip: str, port: int) -> str:
    cmd = (["ip", "netns", "exec", netns] if netns else []) + [sys.executable, "-c", UDP_ASK, ip, str(port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=15).stdout.strip()


async def test_one_node_port_for_tcp_and_udp(datapath):
    """DNS-style 53/TCP + 53/UDP on the one node port the apiserver gives both (its
    ``initNodePorts``): each protocol reaches its backend through it, from a pod to the node's
    address and from the host's 127.0.0.1."""
    nn, nets, net, pods, node = datapath
    ctx = R.TableContext(A.proxy_table_name(nn.iid), "n", nets)
    ip = str(nets.service_cidr.network_address + 30)
    echo = subprocess.Popen(["ip", "netns", "exec", pods[0].netns, sys.executable, "-c", UDP_ECHO, "udp-backend-0"])
    try:
        svc = {"metadata": {"name": "dns", "namespace": "default"},
               "spec": {"clusterIP": ip, "type": "NodePort",
                        "ports": [{"name": "dns-tcp", "port": 53, "protocol": "TCP", "nodePort": 31998},
                                  {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 31998}]}}
        sl = {"metadata": {"name": "dns-1", "namespace": "default", "labels": {M.SERVICE_NAME_LABEL: "dns"}},
              "addressType": "IPv4", "ports": [{"name": "dns-tcp", "port": 8080, "protocol": "TCP"},
                                               {"name": "dns", "port": 8080, "protocol": "UDP"}],
              "endpoints": [{"addresses": [pods[0].ip], "conditions": {"ready": True}, "nodeName": "n"}]}
        await nft(R.full_script(ctx, _frags(ctx, (svc, sl))), netns=nn.netns)
        client, link = pods[3].netns, str(nn.addrs.node_link_address)
        assert wget(client, f"http://{ip}:53/") == (0, "backend-0")
        assert udp_ask(client, ip, 53) == "udp-backend-0:q"
        assert wget(client, f"http://{link}:31998/") == (0, "backend-0")
        assert udp_ask(client, link, 31998) == "udp-backend-0:q"
        await nft(R.host_script(ctx.table, nn.host_link, link, str(nets.host_address),
                                {("tcp", 31998), ("udp", 31998)}, set()))
        r = subprocess.run(["busybox", "wget", "-q", "-O", "-", "http://127.0.0.1:31998/"], capture_output=True,
                           text=True, timeout=5)
        assert r.stdout.strip() == "backend-0", r.stderr
        assert udp_ask(None, "127.0.0.1", 31998) == "udp-backend-0:q"
    finally:
        echo.kill()
        echo.wait()
