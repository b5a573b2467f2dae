"""What an instance leaves on the host, and how to remove it: a registry each subsystem adds its
own cleanup to (``controlplane down``'s checklist).

Every kind of host object an instance creates (processes, containers, mounts, cgroups,
network namespaces, links, routes, nftables tables) is owned by the module that creates it;
that module registers a ``Cleanup`` here at import time: ``remove(instance)`` deletes what the
instance made, ``leftovers(instance)`` lists what is still there (an empty list means clean).
``controlplane down`` (``cmd/down.py``) imports the owners, runs every ``remove`` in
registration order, then every ``leftovers`` and reports them. A new subsystem that creates
something on the host adds one ``register`` call next to the code that creates it.

Neutral ground: this module imports nothing of the layers, so the runtime, the network code
and the command layer can all register.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instance:
    """One ``controlplane up`` instance, as ``DATA_DIR/instance.json`` describes it."""

    data_dir: Path
    host_id: str  # the key of its host-level names (cgroups, namespaces)
    node_name: str = ""

    @property
    def agent_root(self) -> Path:
        return self.data_dir / "agent"

    @property
    def runtime_root(self) -> Path:
        return self.agent_root / "runtime"


@dataclass(frozen=True)
class Cleanup:
    name: str
    remove: Callable[[Instance], Awaitable[None]]
    leftovers: Callable[[Instance], list[str]]
    order: int = 50  # lower runs first: processes, then containers, mounts, network, cgroups


_REGISTRY: dict[str, Cleanup] = {}


def register(name: str, remove: Callable[[Instance], Awaitable[None]],
             leftovers: Callable[[Instance], list[str]], order: int = 50) -> None:
    if name in _REGISTRY and _REGISTRY[name].remove is not remove:
        raise ValueError(f"host cleanup {name!r} registered twice")
    _REGISTRY[name] = Cleanup(name, remove, leftovers, order)


def cleanups() -> list[Cleanup]:
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))


@dataclass
class Report:
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    leftovers: dict[str, list[str]] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return not any(self.leftovers.values())


async def run_all(inst: Instance) -> Report:
    """Every registered cleanup, then every check."""
    rep = Report()
    for c in cleanups():
        try:
            await c.remove(inst)
            rep.removed.append(c.name)
        except Exception as e:  # noqa: BLE001 - one failing cleanup must not stop the others
            rep.errors[c.name] = f"{type(e).__name__}: {e}"
    for c in cleanups():
        rep.leftovers[c.name] = c.leftovers(inst)
    return rep


OWN_PROGRAMS = ("conmon", "etcd", "docker-registry", "python", "runc")  # what an instance runs


def processes_mentioning(path: Path, exclude: set[int] | None = None) -> dict[int, str]:
    """pid -> command line of every process of ours (``OWN_PROGRAMS``) whose arguments name
    ``path``: conmon, the components, etcd and the registry all carry the data dir."""
    needle = str(path).encode()
    skip = exclude or set()
    out: dict[int, str] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) in skip:
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if needle not in cmd:
            continue
        prog = os.path.basename(cmd.split(b"\0", 1)[0].decode(errors="replace"))
        if any(prog.startswith(p) for p in OWN_PROGRAMS):
            out[int(d.name)] = cmd.replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    return out


def own_pids() -> set[int]:
    """This process and its ancestors (``down`` itself mentions the data dir)."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids
