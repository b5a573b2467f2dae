"""``controlplane bench services``: the cluster network's figures, printed as JSON.

Starts a whole instance in a temp dir the way ``controlplane up`` does (etcd, apiserver,
controller-manager, cluster DNS, local registry, one node agent with its service proxy), on
free CIDRs inside 10.64.0.0/10 (never the defaults), then:

(a) programming: ``--services`` selector-less Services with manual EndpointSlices of
    ``--endpoints`` simulated endpoints each (addresses in the instance's own cluster CIDR, never
    used); ``--changes`` slice updates at ``--rate``/s, each timed from just before its PUT to
    the moment ``nft monitor`` in the node's namespace shows the rule with the new address
    (p50/p99), and a full resync forced with SIGHUP (the proxy's
    ``kubeproxy_sync_full_proxy_rules_duration_seconds``);
(b) ``wrk`` from a pod's network namespace to a busybox ``httpd`` pod, through its ClusterIP and
    straight to the pod IP, alternated ``--wrk-rounds`` times (medians, ratio), once from a pod
    on the server's node and once from a pod on a second node (agent) of this machine;
(c) ``dnsperf`` (one client) for the Services' names against the cluster DNS, and against
    ``dnsmasq`` serving the same names from a hosts file, in the same run: unthrottled (qps;
    100 queries in flight) and at 10,000 queries/s (latency).

Targets (issue 13): programming p99 <= 1 s, wrk ratio >= 0.9, DNS >= 10,000 qps with p99 <= 5 ms.
Run it only under ``flock /work/locks/heavy.lock`` on the shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from controlplane.bench.startup import percentile
from controlplane.client import resources as R
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger

log = get_logger(__name__)
NS = "bench"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("services", help="Service programming latency, ClusterIP vs pod IP throughput, DNS qps")
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--endpoints", type=int, default=10)
    p.add_argument("--changes", type=int, default=200)
    p.add_argument("--rate", type=float, default=10.0, help="slice changes per second")
    p.add_argument("--wrk-seconds", type=int, default=5)
    p.add_argument("--wrk-rounds", type=int, default=5)
    p.add_argument("--dns-seconds", type=int, default=10)
    p.add_argument("--workdir", default=None, help="keep state here (default: a temp dir, removed)")
    p.set_defaults(func=run)


# -- the instance ----------------------------------------------------------------------------

class Instance:
    """The components of ``controlplane up`` (its ``COMPONENTS`` factories, same PKI and
    identities), started in order without the supervisor, plus a second agent."""

    def __init__(self, work: Path) -> None:
        from controlplane.cmd import up as UP
        from controlplane.etcd_process import free_port
        from controlplane.network.routes import pick_free

        self.UP = UP
        cluster, service = pick_free(2)
        self.node = UP.default_node_name()
        self.ctx = UP.UpContext(data_dir=work, port=free_port(), host="127.0.0.1",
                                extra={"apiserver_workers": "1", "cluster_cidr": cluster, "service_cidr": service,
                                       "dns_upstreams": "", "gitops_webhook_port": "0"},
                                node_name=self.node)
        self.ctx.extra["pki_dir"] = str(self.ctx.pki.dir)
        self.started: list = []

    async def start(self) -> None:
        from controlplane.pki.kubeconfigs import node_kubeconfig, write_component_kubeconfigs

        ctx = self.ctx
        self.ctx.data_dir.mkdir(parents=True, exist_ok=True)
        # as `up` prepares a lone server: the PKI (SANs for the kubernetes Service IP and the
        # host address), the server token and the embedded etcd member
        await self.UP.prepare_server(ctx, argparse.Namespace(token_file=None, token="", server="",
                                                             cluster_init=False))
        for factory in self.UP.COMPONENTS:
            r = factory(ctx)
            if r is None or r.name in ("scheduler", "gitops-controller"):
                continue
            self.started.append(r)
            await r.start(ctx)
            if r.name == "apiserver":
                await asyncio.to_thread(write_component_kubeconfigs, ctx.pki, ctx.server, ctx.data_dir,
                                        [self.node] if os.geteuid() == 0 else [])
        if not any(r.name == "agent" for r in self.started):
            raise RuntimeError("bench services needs root (a node agent with runc and nftables)")
        # a second node on this machine, for the cross-node figures of (b)
        node_b = f"{self.node}-b"
        kc = await asyncio.to_thread(node_kubeconfig, ctx.pki, ctx.server, ctx.data_dir, node_b)
        await asyncio.to_thread(ctx.pki.node_serving, node_b, ["127.0.0.1"])
        serving = f"node-{node_b}-serving"
        second = self.UP.ChildProcess("agent-b", lambda c: [
            "agent", "--kubeconfig", str(kc), "--node-name", node_b, "--host-id", f"{c.host_id}-b",
            "--root", str(c.data_dir / "agent-b"), "--registry-mirror", c.extra["registry_mirror"],
            "--tls-cert-file", str(c.pki.crt(serving)), "--tls-private-key-file", str(c.pki.key(serving)),
            "--client-ca-file", str(c.pki.ca_file),
            "--proxy-kubeconfig", str(c.component_kubeconfig("kube-proxy")), *self.UP._net_args(c)])
        self.started.append(second)
        await second.start(ctx)

    async def stop(self) -> None:
        for r in reversed(self.started):
            try:
                await r.stop()
            except Exception as e:  # noqa: BLE001 - stop the rest
                log.warning("stop failed", component=r.name, error=str(e))
        from controlplane import hostcleanup
        from controlplane.cmd import down  # noqa: F401 - registers the process cleanup

        rep = await hostcleanup.run_all(hostcleanup.Instance(self.ctx.data_dir, self.ctx.host_id, self.node))
        left = {k: v for k, v in rep.leftovers.items() if v}
        if left or rep.errors:
            log.warning("bench instance left things behind", leftovers=left, errors=rep.errors)

    def pid(self, name: str) -> int:
        return next(r for r in self.started if r.name == name).proc.pid


def _slice(i: int, addrs: list[str]) -> dict:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"s{i}-manual", "namespace": NS, "labels": {"kubernetes.io/service-name": f"s{i}"}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in addrs]}


def _service(name: str, selector: dict | None = None, target: int = 8080) -> dict:
    spec: dict = {"ports": [{"name": "p", "port": 80, "targetPort": target, "protocol": "TCP"}]}
    if selector:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS}, "spec": spec}


async def _gather_limited(coros, limit: int = 32) -> list:  # type: ignore[no-untyped-def]
    sem = asyncio.Semaphore(limit)

    async def one(c):  # type: ignore[no-untyped-def]
        async with sem:
            return await c
    return await asyncio.gather(*(one(c) for c in coros))


def _nft(netns: str, *args: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *args], capture_output=True, text=True).stdout


async def _metrics(inst: "Instance") -> str:
    """The agent's metrics (its proxy's among them) on its metrics port (``cmd.bootstrap``):
    HTTPS with delegated authn/authz under ``up``, read with the admin's certificate."""
    url = inst.UP.component_url(inst.ctx.data_dir, "agent", "/metrics")
    if url is None:
        raise OSError("the agent wrote no metrics port")
    pki = inst.ctx.pki
    ctx = ssl.create_default_context(cafile=str(pki.ca_file))
    ctx.load_cert_chain(str(pki.crt("admin")), str(pki.key("admin")))
    return await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10, context=ctx).read().decode())


def _metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


# -- (a) programming latency -----------------------------------------------------------------

async def programming(inst: Instance, client: RestClient, node: str, args: argparse.Namespace) -> dict:
    from controlplane.network import addressing as A

    cluster = ipaddress.ip_network(inst.ctx.extra["cluster_cidr"])
    sim = list(ipaddress.ip_network(f"{cluster.network_address + 200 * 256}/21").hosts())  # never a node's /24
    iid = A.instance_id(inst.ctx.data_dir / "agent", node)
    netns, table = A.netns_name(iid), A.proxy_table_name(iid)
    n, k = args.services, args.endpoints
    t0 = time.monotonic()
    await _gather_limited(client.create(R.SERVICES, _service(f"s{i}"), NS) for i in range(n))
    slices = await _gather_limited(client.create(R.ENDPOINTSLICES, _slice(i, [str(sim[(i * k + j) % len(sim)])
                                                                              for j in range(k)]), NS)
                                   for i in range(n))
    created_s = time.monotonic() - t0
    deadline = time.monotonic() + 300
    while True:  # every Service programmed: n of our cluster IPs in the service-ips map
        out = await asyncio.to_thread(_nft, netns, "-j", "list", "map", "ip", table, "service-ips")
        elems = out.count('"concat"')
        if elems >= n:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {elems} of {n} Services programmed")
        await asyncio.sleep(0.5)
    programmed_all_s = time.monotonic() - t0
    before = await _metrics(inst)
    os.kill(inst.pid("agent"), signal.SIGHUP)
    name = "kubeproxy_sync_full_proxy_rules_duration_seconds"
    deadline = time.monotonic() + 120
    while True:
        after = await _metrics(inst)
        if _metric(after, f"{name}_count") > _metric(before, f"{name}_count"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("no full resync after SIGHUP")
        await asyncio.sleep(0.2)
    full_s = _metric(after, f"{name}_sum") - _metric(before, f"{name}_sum")

    mon_err = open(inst.ctx.data_dir / "nft-monitor.err", "wb")
    mon = await asyncio.create_subprocess_exec("ip", "netns", "exec", netns, "stdbuf", "-oL", "nft", "monitor", "rules",
                                               stdout=asyncio.subprocess.PIPE, stderr=mon_err)
    seen: dict[str, float] = {}
    sent: dict[str, float] = {}
    pat = re.compile(r"dnat to ([0-9.]+):")

    async def read() -> None:
        assert mon.stdout is not None
        buf = b""
        while True:
            chunk = await mon.stdout.read(65536)
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for line in lines:
                m = pat.search(line.decode(errors="replace"))
                if m and m.group(1) in sent and m.group(1) not in seen:
                    seen[m.group(1)] = now

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.5)
    m0 = await _metrics(inst)
    fresh = list(ipaddress.ip_network(f"{cluster.network_address + 240 * 256}/21").hosts())
    try:
        t_start = time.monotonic()
        for j in range(args.changes):
            await asyncio.sleep(max(0.0, t_start + j / args.rate - time.monotonic()))
            i = (j * 7919) % n
            s = slices[i]
            addr = str(fresh[j % len(fresh)])
            s["endpoints"][0] = {"addresses": [addr], "conditions": {"ready": True}}
            sent[addr] = time.monotonic()
            try:
                slices[i] = await client.update(R.ENDPOINTSLICES, s)
            except ApiStatusError as e:
                raise RuntimeError(f"slice update failed: {e}") from e
        deadline = time.monotonic() + 30
        while len(seen) < len(sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        reader.cancel()
        monitor_exit = mon.returncode
        if mon.returncode is None:
            mon.terminate()
        await mon.wait()
        mon_err.close()
    lat = [(seen[a] - t) * 1000 for a, t in sent.items() if a in seen]
    m1 = await _metrics(inst)
    listing = await asyncio.to_thread(_nft, netns, "list", "table", "ip", table)
    in_table = sum(1 for a in sent if f"dnat to {a}:" in listing)
    syncs = {k: int(_metric(m1, f"kubeproxy_sync_{k}_proxy_rules_duration_seconds_count")
                    - _metric(m0, f"kubeproxy_sync_{k}_proxy_rules_duration_seconds_count")) for k in ("partial", "full")}
    if reader.done() and not reader.cancelled() and reader.exception() is not None:
        log.warning("nft monitor reader failed", error=repr(reader.exception()))
    if monitor_exit is not None:
        log.warning("nft monitor ended early", code=monitor_exit,
                    stderr=(inst.ctx.data_dir / "nft-monitor.err").read_text()[-500:])
    return {"services": n, "endpoints_per_service": k, "create_s": round(created_s, 1),
            "all_programmed_s": round(programmed_all_s, 1), "changes": len(sent), "programmed": len(lat),
            "in_table_after": in_table, "syncs_during_changes": syncs,
            "rate_per_s": args.rate, "latency_p50_ms": round(percentile(lat, 0.5), 1),
            "latency_p99_ms": round(percentile(lat, 0.99), 1), "latency_max_ms": round(max(lat or [0]), 1),
            "full_resync_s": round(full_s, 3), "target_p99_ms": 1000}


# -- (b) ClusterIP vs pod IP -----------------------------------------------------------------

async def throughput(client: RestClient, node: str, args: argparse.Namespace) -> dict:
    """ClusterIP vs pod IP, from a client on the server's node and from one on the other node."""
    from controlplane.network import addressing as A

    page = "x" * 512
    web = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": NS, "labels": {"app": "web"}},
           "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "containers": [{
               "name": "httpd", "image": "busybox", "imagePullPolicy": "IfNotPresent",
               "command": ["sh", "-c", f"mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 8080 -h /www"]}]}}
    # one client pod per (node, path): a pod-IP run and a ClusterIP run from the same client to
    # the same server would reuse source ports whose conntrack entries (TIME_WAIT, 120 s) hold
    # the same reply tuple, and the DNATed SYNs would clash with them
    clients: dict[tuple[str, str], dict] = {}
    for where, on in (("same_node", node), ("cross_node", f"{node}-b")):
        for path in ("pod_ip", "cluster_ip"):
            cli = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"client-{where}-{path}".replace("_", "-"), "namespace": NS},
                   "spec": {"nodeName": on, "terminationGracePeriodSeconds": 0, "containers": [{
                       "name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                       "command": ["sleep", "3600"]}]}}
            clients[(where, path)] = await client.create(R.PODS, cli, NS)
    await client.create(R.PODS, web, NS)
    svc = await client.create(R.SERVICES, _service("web", {"app": "web"}), NS)
    deadline = time.monotonic() + 120
    while True:
        pods = [await client.get(R.PODS, n, NS) for n in ["web", *(c["metadata"]["name"] for c in clients.values())]]
        if all((p.get("status") or {}).get("phase") == "Running" for p in pods):
            break
        if time.monotonic() > deadline:
            raise RuntimeError("bench pods did not start")
        await asyncio.sleep(0.2)
    urls = {"pod_ip": f"http://{pods[0]['status']['podIP']}:8080/", "cluster_ip": f"http://{svc['spec']['clusterIP']}/"}

    def wrk(netns: str, url: str) -> float:
        out = subprocess.run(["ip", "netns", "exec", netns, "wrk", "-t1", "-c16", f"-d{args.wrk_seconds}s", url],
                             capture_output=True, text=True).stdout
        m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
        if not m:
            raise RuntimeError(f"wrk gave no figure: {out[-400:]}")
        return float(m.group(1))

    netns = {k: A.pod_netns_name(c["metadata"]["uid"]) for k, c in clients.items()}
    for (where, path), ns_ in netns.items():
        deadline = time.monotonic() + 60
        while subprocess.run(["ip", "netns", "exec", ns_, "busybox", "wget", "-q", "-O", "/dev/null", urls[path]],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{urls[path]} never answered from {where}")
            await asyncio.sleep(0.2)
    out: dict = {"rounds": args.wrk_rounds, "seconds_each": args.wrk_seconds, "connections": 16,
                 "server": "busybox httpd (a new connection per request: every request is NATed)",
                 "target_ratio": 0.9}
    for where in ("same_node", "cross_node"):
        rps: dict[str, list[float]] = {"pod_ip": [], "cluster_ip": []}
        for _ in range(args.wrk_rounds):  # interleaved, medians: the machine is shared
            for path in ("pod_ip", "cluster_ip"):
                rps[path].append(await asyncio.to_thread(wrk, netns[(where, path)], urls[path]))
        p, s = percentile(rps["pod_ip"], 0.5), percentile(rps["cluster_ip"], 0.5)
        out[where] = {"pod_ip_rps": round(p, 1), "cluster_ip_rps": round(s, 1),
                      "ratio": round(s / p, 3) if p else 0.0}
    return out


# -- (c) DNS ---------------------------------------------------------------------------------

def _dnsperf(port: int, qfile: Path, seconds: int, max_qps: int = 0) -> dict:
    limit = ["-Q", str(max_qps)] if max_qps else []
    proc = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(qfile), "-l", str(seconds),
                             "-c", "1", "-T", "1", "-q", "100", "-v", *limit], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lat, summary = [], []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(">"):
            try:
                lat.append(float(line.split()[-1]) * 1000)
            except ValueError:
                pass
        else:
            summary.append(line)
    proc.wait()
    text = "".join(summary)
    qps = re.search(r"Queries per second:\s+([0-9.]+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    return {"qps": round(float(qps.group(1)), 1) if qps else 0.0, "p50_ms": round(percentile(lat, 0.5), 3),
            "p99_ms": round(percentile(lat, 0.99), 3), "lost": int(lost.group(1)) if lost else -1}


async def dns(inst: Instance, client: RestClient, args: argparse.Namespace, work: Path) -> dict:
    from controlplane.etcd_process import free_port

    port = int((inst.ctx.data_dir / "dns-port").read_text())
    svcs = (await client.list(R.SERVICES, NS))["items"]
    names = {f"{s['metadata']['name']}.{NS}.svc.cluster.local": s["spec"]["clusterIP"] for s in svcs
             if s["metadata"]["name"].startswith("s")}
    qfile = work / "queries.txt"
    qfile.write_text("".join(f"{n} A\n" for n in sorted(names)))
    hosts = work / "dns-hosts"
    hosts.write_text("".join(f"{ip} {n}\n" for n, ip in names.items()))
    mport = free_port()
    dm = subprocess.Popen(["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                           f"--addn-hosts={hosts}", "--bind-interfaces", "--listen-address=127.0.0.1",
                           f"--port={mport}", f"--pid-file={work / 'dnsmasq.pid'}", "--user=root",
                           "--cache-size=10000", "--local-ttl=5"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(_dnsperf, port, qfile, 2)  # warm-up (the server's answer cache)
        ours = await asyncio.to_thread(_dnsperf, port, qfile, args.dns_seconds)
        theirs = await asyncio.to_thread(_dnsperf, mport, qfile, args.dns_seconds)
        # latency at the target rate (the unthrottled runs queue 100 queries in flight)
        ours_at = await asyncio.to_thread(_dnsperf, port, qfile, args.dns_seconds, 10000)
        theirs_at = await asyncio.to_thread(_dnsperf, mport, qfile, args.dns_seconds, 10000)
    finally:
        dm.terminate()
        dm.wait()
    return {"names": len(names), "cluster_dns": ours, "dnsmasq": theirs,
            "ratio_to_dnsmasq": round(ours["qps"] / theirs["qps"], 3) if theirs["qps"] else 0.0,
            "at_10000_qps": {"cluster_dns": ours_at, "dnsmasq": theirs_at},
            "clients": 1, "target_qps": 10000, "target_p99_ms": 5}


async def measure(work: Path, args: argparse.Namespace) -> dict:
    import socket

    inst = Instance(work)
    try:
        await inst.start()
        client = RestClient.from_kubeconfig(inst.ctx.kubeconfig, max_connections=32)
        try:
            node = socket.gethostname().lower()
            try:
                await client.create(R.NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
            except ApiStatusError as e:
                if not e.already_exists:
                    raise
            deadline = time.monotonic() + 120
            for n in (node, f"{node}-b"):
                while True:
                    try:
                        if ((await client.get(R.NODES, n)).get("spec") or {}).get("podCIDR"):
                            break
                    except ApiStatusError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"node {n} got no pod CIDR")
                    await asyncio.sleep(0.3)
            a = await programming(inst, client, node, args)
            b = await throughput(client, node, args)  # with the 1,000 Services programmed
            c = await dns(inst, client, args, work)
        finally:
            await client.close()
    finally:
        await inst.stop()
    return {"programming": a, "wrk": b, "dns": c, "cidrs": {"cluster": inst.ctx.extra["cluster_cidr"],
                                                            "service": inst.ctx.extra["service_cidr"]}}


def run(args: argparse.Namespace) -> int:
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-services-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = asyncio.run(measure(work.resolve(), args))
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0
