"""Sockets inside a pod's network namespace (probes, port checks): ``socket_in_netns``, which
lives in ``controlplane.network.sockets`` (the service proxy uses it too).

The pod network itself (node namespace, bridge, CNI plugins, routes) is
``controlplane.network``; ``runc.py`` asks it for a pod's namespace and address.
Neighbours: the agent's prober and port forwarding.
"""

from __future__ import annotations

from controlplane.network.hostcmd import NETNS_DIR  # noqa: F401 - re-exported
from controlplane.network.sockets import socket_in_netns  # noqa: F401 - re-exported
