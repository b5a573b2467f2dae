"""Issue 13 item 6, streams and proxies through the apiserver, with the real kubectl, a real
agent running runc pods and busybox ``httpd`` as the server:

- ``kubectl port-forward`` to a pod and to ``svc/web`` (WebSocket-tunnelled SPDY, kubectl's
  default, and its plain SPDY fallback), a request served from the host through it, a
  3 MiB body and concurrent connections; a port nothing listens on gives Kubernetes' error;
- ``kubectl attach -it`` to a shell running on a terminal (kubectl's stdin driven through a
  pty), ``kubectl attach -i`` to a ``stdinOnce`` container without one, and ``kubectl attach``
  to a container's output;
- ``v4.base64.channel.k8s.io`` for exec and port forwarding;
- ``kubectl exec`` and ``attach`` over SPDY (``KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false``):
  output, exit code, stdin and its end, a terminal and its size;
- an HTTP upgrade through pods/proxy and services/proxy (an ``echo`` protocol in the pod)
  and the agent's WebSocket exec through nodes/proxy;
- ``kubectl proxy`` serving ``pods/web:8080/proxy/`` and ``services/web:80/proxy/``,
  ``kubectl get --raw`` of the services, pods and nodes proxies, an HTML page's links
  rewritten under the proxy path;
- bad input: a Service without endpoints (503), an unknown pod (404), a refused pod port
  (503), an unknown Service port (503);
- RBAC: a user with ``view`` gets 403 for port-forward, attach and the proxies; ``get``
  without ``create`` is not enough for a WebSocket upgrade; the streams are in the audit log.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import http.client
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.fixtures.agent import HAVE_RUNC, AgentProcess, _delete_node, leftovers
from tests.fixtures.apiserver import KUBECTL, make_kubectl
from tests.fixtures.controllers import ControllerManagerProcess
from tests.integration.test_agent_pods import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.runc, pytest.mark.timeout(240)]

# an "echo" protocol behind an HTTP upgrade (port 7000): the 101, then every line comes back
UP_SH = ("while read -r l; do [ ${#l} -le 1 ] && break; done\n"
         "printf 'HTTP/1.1 101 Switching Protocols\\r\\nConnection: Upgrade\\r\\nUpgrade: echo\\r\\n\\r\\n'\n"
         "while read -r l; do echo echo:$l; done\n")
WEB_CMD = ("printf %s \"$UP_SH\" > /up.sh && (nc -ll -p 7000 -e sh /up.sh &)"
           " && mkdir -p /www/sub && echo hello-from-$(hostname) > /www/index.html && echo deeper > /www/sub/x.txt"
           " && echo '<a href=\"/sub/x.txt\">x</a> <img src=rel.png>' > /www/links.html"
           " && head -c 3145728 /dev/zero | tr '\\0' a > /www/big.txt && httpd -p 127.0.0.1:9090 -h /www"
           " && exec httpd -f -p 8080 -h /www")


@pytest.fixture(scope="module")
def stream_env(apiserver, local_registry, tmp_path_factory):
    """One agent, a namespace with ``web`` (httpd on 8080, the echo upgrade on 7000, Service
    ``web`` 80 -> 8080 and 7000),
    ``empty`` (a Service that selects nothing), ``shell`` (sh on a terminal, stdin open) and
    ``reader`` (reads stdin, ``stdinOnce``) and ``ticker`` (prints a line every 0.2 s); the
    endpoints controller keeps Endpoints."""
    if not HAVE_RUNC:
        pytest.fail("stream tests need root and runc")
    work = tmp_path_factory.mktemp("streams")
    kubectl = make_kubectl(apiserver.kubeconfig, work / "kc")
    cm = ControllerManagerProcess(work / "cm", apiserver.component_kubeconfig("controller-manager"),
                                  ["--controllers", "endpoints", "--leader-elect=false"]).start()
    node = f"s{uuid.uuid4().hex[:6]}"
    agent = AgentProcess(work / node, apiserver, node, local_registry.url)
    agent.start()
    ns = f"st-{uuid.uuid4().hex[:6]}"
    try:
        kubectl("create", "namespace", ns)
        pods = [
            {"name": "web", "labels": {"app": "web"}, "containers": [{
                "name": "web", "image": "busybox", "command": ["sh", "-c", WEB_CMD],
                "env": [{"name": "UP_SH", "value": UP_SH}],
                "ports": [{"containerPort": 8080, "name": "http"}],
                "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]},
            {"name": "shell", "labels": {"app": "shell"}, "containers": [{
                "name": "sh", "image": "busybox", "command": ["sh"], "stdin": True, "tty": True}]},
            {"name": "reader", "labels": {"app": "reader"}, "containers": [{
                "name": "r", "image": "busybox", "stdin": True, "stdinOnce": True,
                "command": ["sh", "-c", "while read l; do echo got:$l; done; echo bye"]}]},
            {"name": "ticker", "labels": {"app": "ticker"}, "containers": [{
                "name": "t", "image": "busybox", "command": ["sh", "-c", "i=0; while true; do echo tick $i; "
                                                                        "i=$((i+1)); sleep 0.2; done"]}]},
        ]
        docs = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": p["name"], "labels": p["labels"]},
                 "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": p["containers"]}}
                for p in pods]
        docs += [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                  "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "name": "http"},
                                                                     {"port": 7000, "targetPort": 7000, "name": "echo"}]}},
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                  "spec": {"selector": {"app": "nothing"}, "ports": [{"port": 80, "targetPort": 8080}]}}]
        kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
        res = kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/web", "pod/shell", "pod/ticker", "pod/reader",
                      "--timeout=150s", timeout=180, check=False)
        if res.returncode != 0:
            pods = kubectl("get", "pods", "-n", ns, "-o", "wide", check=False).stdout
            pytest.fail(f"pods not ready: {res.stderr}\n{pods}\nagent:\n{agent.log_tail(40)}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ep = json.loads(kubectl("get", "-n", ns, "endpoints", "web", "-o", "json", check=False).stdout or "{}")
            if any(s.get("addresses") for s in ep.get("subsets") or []):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"no endpoints for web:\n{cm.log_tail()}")
        yield {"ns": ns, "node": node, "agent": agent, "kubectl": kubectl, "work": work}
    finally:
        kubectl("delete", "namespace", ns, "--wait=false", check=False)
        agent.stop()
        agent.cleanup()
        _delete_node(apiserver, node)
        cm.stop()
        assert leftovers(agent.root / "runtime", node) == []


class Background:
    """A kubectl that keeps running (port-forward, proxy, attach); output collected."""

    def __init__(self, args: list[str], kubeconfig: Path, cache: Path, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "HOME": str(cache), **(env or {})}, start_new_session=True)
        os.set_blocking(self.proc.stdout.fileno(), False)
        os.set_blocking(self.proc.stderr.fileno(), False)
        self.out = b""
        self.err = b""

    def read(self) -> None:
        for name, f in (("out", self.proc.stdout), ("err", self.proc.stderr)):
            try:
                data = f.read()
            except (BlockingIOError, ValueError):
                data = None
            if data:
                setattr(self, name, getattr(self, name) + data)

    def wait_for(self, pattern: str, timeout: float = 30, stream: str = "out") -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            m = re.search(pattern, getattr(self, stream).decode(errors="replace"))
            if m:
                return m
            if self.proc.poll() is not None:
                self.read()
                break
            time.sleep(0.05)
        raise AssertionError(f"kubectl never printed {pattern!r}; out={self.out!r} err={self.err!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.read()


def http_get(url: str, timeout: float = 20) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def port_forward(env, apiserver, target: str, remote: int, extra_env: dict | None = None) -> tuple[Background, int]:
    pf = Background(["port-forward", "-n", env["ns"], target, f":{remote}"], apiserver.kubeconfig,
                    env["work"] / f"kc-{uuid.uuid4().hex[:4]}", extra_env)
    m = pf.wait_for(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)")
    assert int(m.group(2)) == (8080 if remote in (80, 8080) else remote)
    return pf, int(m.group(1))


@pytest.mark.parametrize("websockets", [True, False], ids=["websocket-tunnel", "spdy-fallback"])
def test_port_forward_pod_and_service(stream_env, apiserver, websockets):
    env = {} if websockets else {"KUBECTL_PORT_FORWARD_WEBSOCKETS": "false"}
    pf, port = port_forward(stream_env, apiserver, "pod/web", 8080, env)
    try:
        status, body = http_get(f"http://127.0.0.1:{port}/")
        assert (status, body) == (200, b"hello-from-web\n")
        status, body = http_get(f"http://127.0.0.1:{port}/big.txt", timeout=60)
        assert status == 200 and len(body) == 3 * 1024 * 1024 and set(body) == {ord("a")}

        async def many() -> list:
            return await asyncio.gather(*[asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/sub/x.txt")
                                          for _ in range(8)])
        assert asyncio.run(many()) == [(200, b"deeper\n")] * 8
        assert pf.proc.poll() is None
    finally:
        pf.stop()
    pf, port = port_forward(stream_env, apiserver, "svc/web", 80, env)
    try:
        assert http_get(f"http://127.0.0.1:{port}/") == (200, b"hello-from-web\n")
    finally:
        pf.stop()
    # the way kubectl came: a WebSocket upgrade is a GET (verb get), the SPDY fallback a POST (create)
    want = "get" if websockets else "create"

    def events() -> list[dict]:
        return [json.loads(line) for line in apiserver.audit_log.read_text().splitlines()
                if f'"namespace":"{stream_env["ns"]}"' in line.replace(" ", "") and '"portforward"' in line]

    deadline = time.monotonic() + 10  # (the audit log is flushed every 100 ms)
    while not [e for e in events() if e["verb"] == want and e["stage"] == "ResponseComplete"
               and e["responseStatus"]["code"] == 101] and time.monotonic() < deadline:
        time.sleep(0.1)
    evs = events()
    assert [e for e in evs if e["verb"] == want and e["responseStatus"]["code"] == 101], evs
    if websockets:  # (this case runs first in the module) no fallback happened
        assert all(e["verb"] == "get" and e["responseStatus"]["code"] == 101 for e in evs), evs


def test_python_client_port_forward(stream_env, apiserver):
    """The ``kubernetes`` client's port forwarding: the kubelet's WebSocket channel protocol
    (``v4.channel.k8s.io``, ``?ports=``), relayed by the apiserver to the agent."""
    from kubernetes import client as k8s, config
    from kubernetes.stream import portforward

    api = k8s.CoreV1Api(config.new_client_from_config(config_file=str(apiserver.kubeconfig)))
    # 9090 is an httpd bound to 127.0.0.1 in the pod: port forwarding reaches localhost.
    # (One port per connection: the channel protocol has no per-port end, the WebSocket's end
    # is the end of every port's stream.)
    for port in (8080, 9090):
        pf = portforward(api.connect_get_namespaced_pod_portforward, "web", stream_env["ns"], ports=str(port))
        try:
            sock = pf.socket(port)
            sock.setblocking(True)
            sock.settimeout(20)
            sock.sendall(b"GET /sub/x.txt HTTP/1.0\r\n\r\n")
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
            assert got.startswith(b"HTTP/1.") and got.endswith(b"\r\n\r\ndeeper\n"), got
            assert pf.error(port) is None
        finally:
            pf.close()


def test_port_forward_refused_port(stream_env, apiserver):
    pf, port = port_forward(stream_env, apiserver, "pod/web", 81)
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read()
        m = pf.wait_for(r"error forwarding port 81 to pod \S+, uid : .*connection refused", stream="err")
        assert "an error occurred forwarding" in pf.err.decode()
        pod_uid = json.loads(stream_env["kubectl"]("get", "-n", stream_env["ns"], "pod", "web", "-o", "json").stdout)[
            "metadata"]["uid"]
        assert f"to pod {pod_uid}, uid :" in m.group(0)
    finally:
        pf.stop()


class PtyKubectl:
    """kubectl with a terminal as its stdin, stdout and stderr (as a person types into it)."""

    def __init__(self, args: list[str], kubeconfig: Path, cache: Path, env: dict | None = None) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))  # kubectl sends this size
        self.proc = subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args],
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                                     env={**os.environ, "HOME": str(cache), "TERM": "xterm", **(env or {})})
        os.close(slave)
        self.seen = b""

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def until(self, pattern: bytes, timeout: float = 30) -> bytes:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.seen):
                return self.seen
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    break
        raise AssertionError(f"never saw {pattern!r}; got {self.seen!r}")

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self.master)


def test_attach_tty_talks_to_a_shell(stream_env, apiserver):
    ns, work = stream_env["ns"], stream_env["work"]
    k = PtyKubectl(["attach", "-it", "-n", ns, "shell"], apiserver.kubeconfig, work / "kc-attach")
    try:
        k.until(rb"If you don't see a command prompt")
        k.type(b"\r")
        k.until(rb"/ # ")
        k.type(b"echo hi-$((6*7)) from $(hostname)\r")
        k.until(rb"hi-42 from shell")
        k.type(b"stty size\r")  # kubectl sent its terminal's size (resize, channel 4)
        k.until(rb"\r\n33 101\r\n")
        k.type(b"exit\r")
        assert k.proc.wait(30) == 0
    finally:
        k.close()
    # kubectl run -it: a pod with stdin and a terminal, attached as soon as it runs
    k = PtyKubectl(["run", "shell2", "-it", "-n", ns, "--image=busybox", "--overrides",
                    json.dumps({"spec": {"nodeName": stream_env["node"], "terminationGracePeriodSeconds": 1}}),
                    "--", "sh"], apiserver.kubeconfig, work / "kc-run")
    try:
        k.until(rb"If you don't see a command prompt", timeout=90)
        k.type(b"\rexpr 6 \\* 7\r")
        k.until(rb"\r\n42\r\n")
        k.type(b"exit\r")
        k.until(rb"Session ended, resume using")
        assert k.proc.wait(30) == 0
    finally:
        k.close()
    # the shell's terminal output also went to the container log (of the attempt that exited)
    deadline = time.monotonic() + 60
    while "hi-42 from shell" not in stream_env["kubectl"]("logs", "-n", ns, "shell", "--previous", check=False).stdout:
        assert time.monotonic() < deadline, "the terminal's output is not in the container log"
        time.sleep(0.3)


def test_attach_stdin_once(stream_env):
    """A container with ``stdin``/``stdinOnce`` and no terminal: kubectl's stdin reaches it,
    its end closes the container's stdin, the container's output comes back, the session ends."""
    res = stream_env["kubectl"]("attach", "-i", "-n", stream_env["ns"], "reader", input="a\nb\n", timeout=60)
    assert res.stdout.endswith("got:a\ngot:b\nbye\n"), (res.stdout, res.stderr)


def test_attach_output(stream_env, apiserver):
    a = Background(["attach", "-n", stream_env["ns"], "ticker"], apiserver.kubeconfig, stream_env["work"] / "kc-att")
    try:
        first = int(a.wait_for(r"tick (\d+)").group(1))
        a.wait_for(rf"tick {first + 2}\b")
    finally:
        a.stop()


SPDY = {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"}


def test_exec_and_attach_over_spdy(stream_env, apiserver):
    """kubectl's SPDY remote command protocol (older kubectls, and 1.32's fallback): output,
    exit codes, stdin and its end, ``kubectl cp``, a terminal with its size, attach to a
    container's output."""
    ns, work = stream_env["ns"], stream_env["work"]
    kubectl = make_kubectl(apiserver.kubeconfig, work / "kc-spdy", env=SPDY)
    assert kubectl("exec", "-n", ns, "web", "--", "cat", "/www/sub/x.txt").stdout == "deeper\n"
    res = kubectl("exec", "-n", ns, "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (3, "out\n", "err\ncommand terminated with exit code 3\n"), res
    res = kubectl("exec", "-i", "-n", ns, "web", "--", "sh", "-c", "cat; echo done", input="x" * 200000 + "\n")
    assert res.stdout == "x" * 200000 + "\ndone\n"
    src = work / "spdy-cp.bin"  # kubectl cp: tar through exec's stdin (its end) and stdout
    src.write_bytes(os.urandom(300000))
    kubectl("cp", str(src), f"{ns}/web:/tmp/spdy-cp.bin")
    kubectl("cp", f"{ns}/web:/tmp/spdy-cp.bin", str(work / "spdy-cp-back.bin"))
    assert (work / "spdy-cp-back.bin").read_bytes() == src.read_bytes()
    k = PtyKubectl(["exec", "-it", "-n", ns, "web", "--", "sh"], apiserver.kubeconfig, work / "kc-spdy-tty", SPDY)
    try:
        k.until(rb"/ # ")
        # the size kubectl sent (its resize stream) reaches the shell's terminal; runc passes a
        # size on to the container's console a moment after the exec starts, so ask until it shows
        # (and runc's first output may have \r\r\n line ends, before it set its terminal raw)
        for attempt in range(10):
            k.type(b"stty size; echo $((6*7))\r")
            try:
                k.until(rb"\r\n33 101\r{1,2}\n42\r{1,2}\n", timeout=2)
                break
            except AssertionError:
                assert attempt < 9, k.seen
        k.type(b"exit 5\r")
        assert k.proc.wait(30) == 5
    finally:
        k.close()
    a = Background(["attach", "-n", ns, "ticker"], apiserver.kubeconfig, work / "kc-spdy-att", SPDY)
    try:
        first = int(a.wait_for(r"tick (\d+)").group(1))
        a.wait_for(rf"tick {first + 2}\b")
    finally:
        a.stop()
    # they came as POSTs upgraded to SPDY (verb create), not as WebSockets (GET: verb get)
    deadline = time.monotonic() + 10
    while True:
        evs = [json.loads(line) for line in apiserver.audit_log.read_text().splitlines()
               if f'"namespace":"{ns}"' in line.replace(" ", "") and ('"exec"' in line or '"attach"' in line)]
        done = {(e["objectRef"]["subresource"], e["verb"]) for e in evs
                if e["stage"] == "ResponseComplete" and e["responseStatus"]["code"] == 101}
        if {("exec", "create"), ("attach", "create")} <= done or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {("exec", "create"), ("attach", "create")} <= done, evs


def test_kubectl_proxy(stream_env, apiserver):
    ns = stream_env["ns"]
    p = Background(["proxy", "--port=0"], apiserver.kubeconfig, stream_env["work"] / "kc-proxy")
    try:
        port = int(p.wait_for(r"Starting to serve on 127\.0\.0\.1:(\d+)").group(1))
        base = f"http://127.0.0.1:{port}/api/v1/namespaces/{ns}"
        assert http_get(f"{base}/pods/web:8080/proxy/") == (200, b"hello-from-web\n")
        assert http_get(f"{base}/services/web:80/proxy/") == (200, b"hello-from-web\n")
        assert http_get(f"{base}/services/web:http/proxy/sub/x.txt") == (200, b"deeper\n")
        assert http_get(f"{base}/pods/web/proxy/sub/x.txt") == (200, b"deeper\n")  # first containerPort
        # a directory without its slash: httpd redirects, the Location stays under the proxy
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", f"/api/v1/namespaces/{ns}/pods/web:8080/proxy/sub")
        r = conn.getresponse()
        assert r.status == 302 and r.getheader("Location") == f"/api/v1/namespaces/{ns}/pods/web:8080/proxy/sub/"
        conn.close()
    finally:
        p.stop()


def test_upgrades_through_the_proxies(stream_env, apiserver):
    """A protocol upgrade goes through the proxies as through kube-apiserver's: an ``echo``
    protocol in the pod via pods/proxy and services/proxy; the agent's WebSocket exec via
    nodes/proxy."""
    ns, node = stream_env["ns"], stream_env["node"]

    async def echo(path: str) -> tuple[bytes, bytes]:
        r, w = await asyncio.open_connection("127.0.0.1", apiserver.port, ssl=apiserver.ssl_context(),
                                             server_hostname="127.0.0.1")
        try:
            w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n".encode())
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 20)
            w.write(b"ping\none more\n")
            lines = [await asyncio.wait_for(r.readline(), 20) for _ in range(2)]
            return head, b"".join(lines)
        finally:
            w.close()

    async def node_exec() -> list[bytes]:
        q = "command=sh&command=-c&command=echo%20via-node-proxy&stdout=1"
        url = f"wss://127.0.0.1:{apiserver.port}/api/v1/nodes/{node}/proxy/exec/{ns}/web/web?{q}"
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(url, ssl=apiserver.ssl_context(), protocols=["v5.channel.k8s.io"]) as ws:
                assert ws.protocol == "v5.channel.k8s.io"
                return [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]

    for path in (f"/api/v1/namespaces/{ns}/pods/web:7000/proxy/", f"/api/v1/namespaces/{ns}/services/web:7000/proxy/"):
        head, lines = asyncio.run(echo(path))
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and b"Upgrade: echo" in head, head
        assert lines == b"echo:ping\necho:one more\n"
    msgs = asyncio.run(node_exec())
    assert b"\x01via-node-proxy\n" in msgs and json.loads(msgs[-1][1:])["status"] == "Success", msgs


def test_base64_channel_protocols(stream_env, apiserver):
    """``v4.base64.channel.k8s.io`` (browsers' clients): text frames, the channel as a digit,
    the data in base64; exec (stdin, stdout, stderr, the exit status) and port forwarding."""
    base = f"wss://127.0.0.1:{apiserver.port}/api/v1/namespaces/{stream_env['ns']}/pods/web"
    proto = "v4.base64.channel.k8s.io"

    def frame(ch: int, data: bytes) -> str:
        return str(ch) + base64.b64encode(data).decode()

    async def run() -> tuple[dict[int, bytes], bytes]:
        got: dict[int, bytes] = {}
        out = b""
        async with aiohttp.ClientSession() as s:
            q = "command=sh&command=-c&command=head%20-n1%3B%20echo%20err%20%3E%262%3B%20exit%207&stdin=1&stdout=1&stderr=1"
            async with s.ws_connect(f"{base}/exec?{q}", ssl=apiserver.ssl_context(), protocols=[proto]) as ws:
                assert ws.protocol == proto
                await ws.send_str(frame(0, b"typed in\nnot read\n"))
                async for m in ws:
                    assert m.type == aiohttp.WSMsgType.TEXT, m
                    got[int(m.data[0])] = got.get(int(m.data[0]), b"") + base64.b64decode(m.data[1:])
            async with s.ws_connect(f"{base}/portforward?ports=8080", ssl=apiserver.ssl_context(),
                                    protocols=[proto]) as ws:
                firsts = [await ws.receive_str(timeout=20) for _ in range(2)]  # the port, first on each channel
                assert sorted(firsts) == sorted(frame(ch, (8080).to_bytes(2, "little")) for ch in (0, 1)), firsts
                await ws.send_str(frame(0, b"GET /sub/x.txt HTTP/1.0\r\n\r\n"))
                while not out.endswith(b"deeper\n"):
                    m = await ws.receive(timeout=20)
                    assert m.type == aiohttp.WSMsgType.TEXT, (m, out)
                    if m.data[0] == "0":
                        out += base64.b64decode(m.data[1:])
        return got, out

    got, out = asyncio.run(run())
    assert (got.get(1), got.get(2)) == (b"typed in\n", b"err\n"), got
    status = json.loads(got[3])
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0] == {"reason": "ExitCode", "message": "7"}
    assert out.startswith(b"HTTP/1.") and out.endswith(b"\r\n\r\ndeeper\n"), out


def test_get_raw_proxies_and_bad_input(stream_env, apiserver):
    ns, node, kubectl = stream_env["ns"], stream_env["node"], stream_env["kubectl"]
    assert kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/services/web:80/proxy/").stdout == "hello-from-web\n"
    assert kubectl("get", "--raw", f"/api/v1/namespaces/{ns}/pods/web:8080/proxy/index.html").stdout == "hello-from-web\n"
    for prefix in (f"/api/v1/namespaces/{ns}/services/web:80/proxy", f"/api/v1/namespaces/{ns}/pods/web:8080/proxy"):
        page = kubectl("get", "--raw", f"{prefix}/links.html").stdout  # an HTML page's links go through the proxy
        assert page == f'<a href="{prefix}/sub/x.txt">x</a> <img src=rel.png>\n'
    assert kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/healthz").stdout == "ok"
    summary = json.loads(kubectl("get", "--raw", f"/api/v1/nodes/{node}/proxy/stats/summary").stdout)
    assert summary["node"]["nodeName"] == node
    with apiserver.http() as h:
        r = h.get(f"/api/v1/namespaces/{ns}/services/empty:80/proxy/")
        assert r.status_code == 503 and r.json()["message"] == 'no endpoints available for service "empty"'
        r = h.get(f"/api/v1/namespaces/{ns}/services/web:81/proxy/")
        assert r.status_code == 503 and r.json()["message"] == 'no service port 81 found for service "web"'
        r = h.get(f"/api/v1/namespaces/{ns}/services/nope:80/proxy/")
        assert (r.status_code, r.json()["message"]) == (404, 'services "nope" not found')
        r = h.get(f"/api/v1/namespaces/{ns}/pods/nope:8080/proxy/")
        assert (r.status_code, r.json()["message"], r.json()["reason"]) == (404, 'pods "nope" not found', "NotFound")
        ip = json.loads(kubectl("get", "-n", ns, "pod", "web", "-o", "json").stdout)["status"]["podIP"]
        r = h.get(f"/api/v1/namespaces/{ns}/pods/web:81/proxy/")
        assert r.status_code == 503
        assert r.json()["message"] == f"error trying to reach service: dial tcp {ip}:81: connect: connection refused"
        r = h.get(f"/api/v1/namespaces/{ns}/pods/web:9090/proxy/")  # bound to 127.0.0.1: the proxy dials the pod IP
        assert r.json()["message"] == f"error trying to reach service: dial tcp {ip}:9090: connect: connection refused"
        r = h.get(f"/api/v1/namespaces/{ns}/pods/https:web:8080/proxy/")  # TLS to a plain HTTP server
        assert (r.status_code, r.json()["message"]) == (
            503, "error trying to reach service: tls: first record does not look like a TLS handshake")
        r = h.get(f"/api/v1/namespaces/{ns}/pods/web:8080/proxy", follow_redirects=False)
        assert r.status_code == 301 and r.headers["location"] == f"/api/v1/namespaces/{ns}/pods/web:8080/proxy/"
        r = h.get(f"/api/v1/nodes/{node}:22/proxy/")  # another port of a loopback node: not proxied
        assert (r.status_code, r.json()["message"]) == (400, "address not allowed")
        r = h.post(f"/api/v1/namespaces/{ns}/pods/nope/portforward", headers={"Upgrade": "SPDY/3.1",
                   "Connection": "Upgrade", "X-Stream-Protocol-Version": "portforward.k8s.io"})
        assert (r.status_code, r.json()["message"]) == (404, 'pods "nope" not found')
        exec_url = f"/api/v1/namespaces/{ns}/pods/web/exec?command=true&stdout=true"
        r = h.post(exec_url)
        assert (r.status_code, r.json()["message"]) == (400, "Upgrade request required")
        spdy_headers = {"Upgrade": "SPDY/3.1", "Connection": "Upgrade", "X-Stream-Protocol-Version": "channel.k8s.io"}
        r = h.post(exec_url, headers=spdy_headers)
        assert (r.status_code, r.json()["message"]) == (403, (
            "unable to upgrade: unable to negotiate protocol: client supports ['channel.k8s.io'], server supports "
            "['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io']"))
        spdy_headers["X-Stream-Protocol-Version"] = "v4.channel.k8s.io"
        r = h.post(f"/api/v1/namespaces/{ns}/pods/nope/exec?command=true&stdout=true", headers=spdy_headers)
        assert (r.status_code, r.json()["message"]) == (404, 'pods "nope" not found')
        r = h.post(f"/api/v1/namespaces/{ns}/pods/web/attach", headers=spdy_headers)
        assert (r.status_code, r.json()["message"]) == (400, "you must specify at least 1 of stdin, stdout, stderr")
    res = kubectl("port-forward", "-n", ns, "pod/nope", ":80", check=False, timeout=30)
    assert res.returncode != 0 and 'pods "nope" not found' in res.stderr


@pytest.mark.asyncio(loop_scope="session")
async def test_rbac_and_audit(stream_env, apiserver, tmp_path):
    ns, node = stream_env["ns"], stream_env["node"]
    user = f"viewer-{uuid.uuid4().hex[:4]}"
    admin = stream_env["kubectl"]
    admin("create", "rolebinding", f"{user}-view", "--clusterrole=view", f"--user={user}", "-n", ns)
    kc = make_kubectl(apiserver.kubeconfig_for(user), tmp_path / "kc-user")
    await wait_for(lambda: asyncio.to_thread(lambda: kc("get", "pods", "-n", ns, check=False).returncode == 0),
                   what="the view binding")
    res = kc("port-forward", "-n", ns, "pod/web", ":8080", check=False, timeout=30)
    assert res.returncode != 0
    assert f'User "{user}" cannot create resource "pods/portforward" in API group "" in the namespace "{ns}"' in res.stderr
    res = kc("get", "--raw", f"/api/v1/namespaces/{ns}/services/web:80/proxy/", check=False)
    assert f'cannot get resource "services/proxy" in API group "" in the namespace "{ns}"' in res.stderr
    res = kc("get", "--raw", f"/api/v1/namespaces/{ns}/pods/web:8080/proxy/", check=False)
    assert 'cannot get resource "pods/proxy"' in res.stderr
    res = kc("get", "--raw", f"/api/v1/nodes/{node}/proxy/healthz", check=False)
    assert f'User "{user}" cannot get resource "nodes/proxy" in API group "" at the cluster scope' in res.stderr
    res = kc("attach", "-n", ns, "ticker", check=False, timeout=30)
    assert res.returncode != 0 and 'cannot create resource "pods/attach"' in res.stderr
    res = make_kubectl(apiserver.kubeconfig_for(user), tmp_path / "kc-user-spdy", env=SPDY)(
        "exec", "-n", ns, "web", "--", "true", check=False, timeout=30)
    assert res.returncode != 0 and 'cannot create resource "pods/exec"' in res.stderr
    # get on pods/portforward and pods/attach without create: a WebSocket upgrade still needs create
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": f"{user}-get"},
            "rules": [{"apiGroups": [""], "resources": ["pods/portforward", "pods/attach"], "verbs": ["get"]}]}
    admin("apply", "-n", ns, "-f", "-", input=json.dumps(role))
    admin("create", "rolebinding", f"{user}-get", f"--role={user}-get", f"--user={user}", "-n", ns)
    with apiserver.http(user=user) as h:
        async def upgrade_refused() -> bool:
            r = await asyncio.to_thread(h.get, f"/api/v1/namespaces/{ns}/pods/web/portforward", headers={
                "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "SPDY/3.1+portforward.k8s.io"})
            return r.status_code == 403 and "cannot create resource \"pods/portforward\"" in r.json()["message"]
        assert await wait_for(upgrade_refused, what="403 for a WebSocket upgrade without create")
    # the streams that ran are in the audit log: started and completed
    def events() -> list[dict]:
        out = []
        for line in apiserver.audit_log.read_text().splitlines():
            e = json.loads(line)
            if (e.get("objectRef") or {}).get("namespace") == ns:
                out.append(e)
        return out

    async def audited() -> bool:
        evs = events()
        subs = {((e["objectRef"].get("resource"), e["objectRef"].get("subresource")), e["stage"]) for e in evs}
        want = {(("pods", "portforward"), "ResponseComplete"), (("pods", "portforward"), "ResponseStarted"),
                (("services", "proxy"), "ResponseComplete"), (("pods", "proxy"), "ResponseComplete"),
                (("pods", "attach"), "ResponseComplete")}
        return want <= subs
    assert await wait_for(audited, what="audit events of the streams")
    denied = [e for e in events() if e["objectRef"].get("subresource") == "portforward"
              and e.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid"]
    assert denied and denied[0]["user"]["username"] == user
