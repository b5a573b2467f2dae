"""Which ports a process on the host already listens on (``/proc/net/{tcp,udp}{,6}``), so the
proxy never redirects 127.0.0.1 traffic meant for someone else (NodePorts, LoadBalancer ports
and hostPorts are opened on 127.0.0.1 only when free). Caller: ``proxier.Proxier``.
"""

from __future__ import annotations

LISTEN = "0A"
LOOPBACK_OR_ANY = {"00000000", "0100007F", "00000000000000000000000000000000",
                   "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def listening_ports(proc: str = "/proc/net") -> set[tuple[str, int]]:
    out: set[tuple[str, int]] = set()
    for proto, files in (("tcp", ("tcp", "tcp6")), ("udp", ("udp", "udp6"))):
        for f in files:
            try:
                lines = open(f"{proc}/{f}").read().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                parts = line.split()
                if len(parts) < 4:
                    continue
                addr, _, port = parts[1].partition(":")
                if proto == "tcp" and parts[3] != LISTEN:
                    continue
                if proto == "udp" and parts[2] != "00000000:0000" and not parts[2].endswith(":0000"):
                    continue  # a connected UDP socket is not a listener
                if addr in LOOPBACK_OR_ANY:
                    out.add((proto, int(port, 16)))
    return out
