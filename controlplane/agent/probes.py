"""Probe and lifecycle-hook actions (exec, httpGet, tcpSocket) run inside the pod's network
namespace, plus the per-probe loop with Kubernetes' timing (initialDelaySeconds, periodSeconds,
timeoutSeconds) and thresholds (``lifecycle.ProbeState``). Caller: ``pod_worker.py``.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Awaitable, Callable
from typing import Any

from controlplane.agent.lifecycle import ProbeState
from controlplane.log import get_logger
from controlplane.runtime.interface import ContainerRuntime, RuntimeError_
from controlplane.runtime.network import socket_in_netns

log = get_logger(__name__)


def _port(port: Any, container: dict) -> int:
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"named port {port!r} not found in the container")


def _http_get(netns: str, host: str, port: int, path: str, headers: dict[str, str], timeout: float) -> tuple[bool, str]:
    sock = socket_in_netns(netns)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        conn.request("GET", path or "/", headers={"User-Agent": "kube-probe/1.32", **headers})
        resp = conn.getresponse()
        resp.read(10240)
        return 200 <= resp.status < 400, f"HTTP probe failed with statuscode: {resp.status}"
    except OSError as e:
        return False, f'Get "http://{host}:{port}{path}": {e}'
    finally:
        sock.close()


def _tcp(netns: str, host: str, port: int, timeout: float) -> tuple[bool, str]:
    sock = socket_in_netns(netns)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        return True, ""
    except OSError as e:
        return False, f"dial tcp {host}:{port}: {e}"
    finally:
        sock.close()


async def run_action(rt: ContainerRuntime, cid: str, netns: str, pod_ip: str | None, container: dict,
                     action: dict, timeout: float) -> tuple[bool, str]:
    """Run one probe/hook handler; (ok, message)."""
    try:
        if "exec" in action:
            code, out, err = await rt.exec_sync(cid, list(action["exec"].get("command") or []), timeout)
            return code == 0, (out + err).decode(errors="replace").strip()[:1024] or f"exit code {code}"
        if "httpGet" in action:
            h = action["httpGet"]
            host = h.get("host") or pod_ip or "127.0.0.1"
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            return await asyncio.to_thread(_http_get, netns, host, _port(h.get("port"), container), h.get("path", "/"),
                                           headers, timeout)
        if "tcpSocket" in action:
            t = action["tcpSocket"]
            return await asyncio.to_thread(_tcp, netns, t.get("host") or pod_ip or "127.0.0.1",
                                           _port(t.get("port"), container), timeout)
        if "sleep" in action:
            await asyncio.sleep(float(action["sleep"].get("seconds", 0)))
            return True, ""
    except (RuntimeError_, ValueError, OSError) as e:
        return False, str(getattr(e, "message", e))
    return False, "unsupported handler"


async def probe_loop(kind: str, probe: dict, check: Callable[[], Awaitable[tuple[bool, str]]],
                     on_result: Callable[[str, bool, str], None], gate: Callable[[], bool] | None = None) -> None:
    """Run a probe forever (cancelled by the owner); ``on_result(kind, ok, message)`` fires
    whenever the thresholds decide a new result."""
    st = ProbeState(success_threshold=int(probe.get("successThreshold") or 1),
                    failure_threshold=int(probe.get("failureThreshold") or 3))
    period = float(probe.get("periodSeconds") or 10)
    timeout = float(probe.get("timeoutSeconds") or 1)
    await asyncio.sleep(float(probe.get("initialDelaySeconds") or 0))
    last: bool | None = None
    while True:
        if gate is None or gate():
            try:
                async with asyncio.timeout(timeout + 1):  # (wait_for could drop a cancellation: 3.11)
                    ok, msg = await check()
            except TimeoutError:
                ok, msg = False, f"probe timed out after {timeout}s"
            except Exception as e:  # an unexpected failure is a failed probe, never a dead probe loop
                log.warning("probe errored", kind=kind, error=repr(e))
                ok, msg = False, f"probe errored: {e}"
            res = st.record(ok)
            if res is not None and (res != last or res is False):
                last = res
                on_result(kind, res, msg)
                if res is False and kind in ("liveness", "startup"):
                    st = ProbeState(st.success_threshold, st.failure_threshold)
                    last = None
        await asyncio.sleep(period)
