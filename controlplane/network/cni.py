"""A small CNI invoker (the part of containerd/CRI-O that runs plugins): executes the real
plugin binaries from ``/usr/lib/cni`` (apt ``containernetworking-plugins``) per the CNI 1.0
spec — ``CNI_COMMAND``/``CNI_CONTAINERID``/``CNI_NETNS``/``CNI_IFNAME``/``CNI_PATH`` in the
environment, the network configuration on stdin, the result (or an error object) on stdout.

A network configuration *list* is run in order for ADD, each plugin getting the previous
plugin's result as ``prevResult`` and the ``runtimeConfig`` keys it declared in
``capabilities`` (``portMappings`` for ``portmap``); DEL runs in reverse with the cached ADD
result. Plugins are executed inside the node's network namespace, so the bridge, its veth
ends and portmap's rules live there and never on the host. Written here because the CNI
libraries are Go (libcni); the protocol is a few environment variables and two JSON objects.
Neighbours: ``node.NodeNetwork`` builds the configuration and calls ``add``/``delete``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from controlplane.network.hostcmd import run

CNI_PATH = os.environ.get("CONTROLPLANE_CNI_PATH", "/usr/lib/cni")
CNI_VERSION = "1.0.0"


class CNIError(OSError):
    def __init__(self, plugin: str, command: str, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"CNI {plugin} {command} failed ({code}): {msg}{': ' + details if details else ''}")
        self.plugin = plugin
        self.code = code
        self.msg = msg


@dataclass
class Invocation:
    container_id: str
    netns_path: str
    ifname: str = "eth0"
    runtime_config: dict[str, Any] | None = None
    exec_netns: str | None = None  # run the plugin binary inside this named namespace


def _plugin_config(conflist: dict[str, Any], plugin: dict[str, Any], prev: dict | None,
                   runtime_config: dict[str, Any] | None) -> dict[str, Any]:
    conf = {"cniVersion": conflist.get("cniVersion", CNI_VERSION), "name": conflist["name"], **plugin}
    if prev is not None:
        conf["prevResult"] = prev
    caps = {k for k, v in (plugin.get("capabilities") or {}).items() if v}
    rc = {k: v for k, v in (runtime_config or {}).items() if k in caps}
    if rc:
        conf["runtimeConfig"] = rc
    return conf


async def _exec(command: str, plugin: dict[str, Any], conf: dict[str, Any], inv: Invocation) -> dict[str, Any] | None:
    binary = os.path.join(CNI_PATH, plugin["type"])
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_COMMAND": command,
           "CNI_CONTAINERID": inv.container_id, "CNI_NETNS": inv.netns_path, "CNI_IFNAME": inv.ifname,
           "CNI_PATH": CNI_PATH}
    argv = ["ip", "netns", "exec", inv.exec_netns, binary] if inv.exec_netns else [binary]
    code, out, err = await run(*argv, input=json.dumps(conf).encode(), env=env, check=False)
    if code != 0:
        try:
            e = json.loads(out)
            raise CNIError(plugin["type"], command, int(e.get("code", code)), e.get("msg", ""), e.get("details", ""))
        except ValueError:
            raise CNIError(plugin["type"], command, code, (err or out).decode(errors="replace").strip()) from None
    if command != "ADD" or not out.strip():
        return None
    return json.loads(out)


async def add(conflist: dict[str, Any], inv: Invocation) -> dict[str, Any]:
    """Run ADD through the list; returns the final result (``ips``, ``interfaces``, ...)."""
    prev: dict[str, Any] | None = None
    for plugin in conflist["plugins"]:
        res = await _exec("ADD", plugin, _plugin_config(conflist, plugin, prev, inv.runtime_config), inv)
        if res is not None:
            prev = res
    return prev or {}


async def delete(conflist: dict[str, Any], inv: Invocation, prev: dict[str, Any] | None) -> list[str]:
    """Run DEL through the list in reverse; every plugin is tried, errors are returned."""
    errors = []
    for plugin in reversed(conflist["plugins"]):
        try:
            await _exec("DEL", plugin, _plugin_config(conflist, plugin, prev, inv.runtime_config), inv)
        except (CNIError, OSError) as e:
            errors.append(str(e))
    return errors


def first_ipv4(result: dict[str, Any]) -> str | None:
    for ipc in result.get("ips") or []:
        addr = ipc.get("address", "")
        if "." in addr:
            return addr.split("/")[0]
    return None


def pod_conflist(name: str, pod_cidr: str, gateway: str, range_start: str, range_end: str,
                 ipam_dir: str, bridge: str, mtu: int = 1500) -> dict[str, Any]:
    """bridge (+ host-local IPAM) then portmap: the node's pod network."""
    return {
        "cniVersion": CNI_VERSION, "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": False, "hairpinMode": True,
             "mtu": mtu,
             "ipam": {"type": "host-local", "dataDir": ipam_dir,
                      "ranges": [[{"subnet": pod_cidr, "rangeStart": range_start, "rangeEnd": range_end,
                                   "gateway": gateway}]],
                      "routes": [{"dst": "0.0.0.0/0"}]}},
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


LOOPBACK = {"cniVersion": CNI_VERSION, "name": "loopback", "plugins": [{"type": "loopback"}]}
