"""The few host tools the network code drives, as asyncio subprocesses (never blocking the
loop): ``ip`` (iproute2, JSON output for reads), ``nft -f -`` (one atomic transaction per
call), ``sysctl`` writes, all optionally inside a network namespace (``ip netns exec``).

iproute2 rather than pyroute2 for links, addresses and routes: it is already a dependency
(the runtime used it before), behaves the same inside and outside namespaces, and
``ip -j`` gives structured reads (docs/networking.md, "What is hand-written").
Neighbours: ``node.py``, ``routes.py``, ``cni.py``, ``controlplane.proxy.programmer``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

NETNS_DIR = Path("/run/netns")


class CommandError(OSError):
    def __init__(self, argv: list[str], code: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv[:6])}{' …' if len(argv) > 6 else ''}: {stderr.strip() or f'exit {code}'}")
        self.argv = argv
        self.code = code
        self.stderr = stderr


async def run(*argv: str, netns: str | None = None, input: bytes | None = None, check: bool = True,
              env: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[int, bytes, bytes]:
    full = (["ip", "netns", "exec", netns] if netns else []) + list(argv)
    proc = await asyncio.create_subprocess_exec(
        *full, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    code = proc.returncode or 0
    if check and code != 0:
        raise CommandError(full, code, err.decode(errors="replace"))
    return code, out, err


async def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    pre = ["-n", netns] if netns else []
    _, out, _ = await run("ip", *pre, *args, check=check)
    return out.decode()


async def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    pre = ["-n", netns] if netns else []
    code, out, _ = await run("ip", *pre, "-j", *args, check=False)
    if code != 0 or not out.strip():
        return []
    return json.loads(out)


async def nft(script: str, netns: str | None = None, check_only: bool = False) -> None:
    """Apply ``script`` as one transaction (all or nothing)."""
    await run("nft", *(["-c"] if check_only else []), "-f", "-", netns=netns, input=script.encode())


async def nft_json(*args: str, netns: str | None = None) -> dict[str, Any]:
    code, out, _ = await run("nft", "-j", *args, netns=netns, check=False)
    return json.loads(out) if code == 0 and out.strip() else {}


async def table_exists(family: str, name: str, netns: str | None = None) -> bool:
    code, _, _ = await run("nft", "list", "table", family, name, netns=netns, check=False)
    return code == 0


async def delete_table(family: str, name: str, netns: str | None = None) -> None:
    if await table_exists(family, name, netns):
        await run("nft", "delete", "table", family, name, netns=netns, check=False)


def netns_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


async def sysctl(key: str, value: str, netns: str | None = None, check: bool = True) -> None:
    """Write one sysctl (``net.ipv4.conf.cni0.proxy_arp``-style key) inside ``netns``."""
    await run("sysctl", "-q", "-w", f"{key}={value}", netns=netns, check=check)
