"""Which node port each port of a NodePort/LoadBalancer Service gets: kube-apiserver's
``initNodePorts`` (create), ``updateNodePorts`` and the node-port half of
``patchAllocatedValues`` (update), from ``pkg/registry/core/service/storage/alloc.go`` and
``storage.go`` (1.32), rule for rule. Where the ports are kept is not decided here:
``serviceips.ServiceIPAllocator`` passes ``claim`` (``PortAllocationOperation.Allocate``: None,
or the allocator's message) and ``next_port`` (``AllocateNext``) backed by etcd.

- Create: ports sharing a port number share one node port — the one a port of that number
  asks for, else one allocated for the first of them — so DNS's 53/TCP and 53/UDP get the
  same node port, allocated once. A port that asks for another node port gets that one.
- Update: allocated values the update omits are put back by port name (not for a node port
  the update gives to another port); a node port the Service did not hold is taken once even
  when two protocols ask for it; a port with none gets a new one (``updateNodePorts`` does not
  share a number's node port with a port added later: ask for it to share it).
- ``allocateLoadBalancerNodePorts: false``: nothing allocated, requested node ports honoured.
Neighbours: ``serviceips`` (storage of allocations, health check port), ``service`` (the
strategy's hooks), ``validation/core`` (duplicate ``(protocol, nodePort)`` pairs).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

Claim = Callable[[int], Awaitable[str | None]]
Next = Callable[[], Awaitable[int]]
NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


class NodePortInvalid(Exception):
    """``field.Invalid(spec.ports[i].nodePort, value, err)``: the 422 kube-apiserver answers."""

    def __init__(self, index: int, value: Any, message: str) -> None:
        super().__init__(message)
        self.field = f"spec.ports[{index}].nodePort"
        self.value = value
        self.message = message


class DuplicateNodePort(Exception):
    """``updateNodePorts``' ``duplicate nodePort: {TCP 30053}`` (a plain error: a 500)."""

    def __init__(self, protocol: str, node_port: int) -> None:
        super().__init__(f"duplicate nodePort: {{{protocol} {node_port}}}")


def needs_node_port(spec: dict[str, Any]) -> bool:
    """``needsNodePort``: the type has node ports (allocated or only requested)."""
    return (spec.get("type") or "ClusterIP") in NODE_PORT_TYPES


def should_allocate(spec: dict[str, Any]) -> bool:
    """``shouldAllocateNodePorts``: NodePort, or LoadBalancer unless
    ``allocateLoadBalancerNodePorts: false``."""
    t = spec.get("type") or "ClusterIP"
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False)


def _ports(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in spec.get("ports") or [] if isinstance(p, dict)]


def port_node_ports(spec: dict[str, Any]) -> list[int]:
    """``collectServiceNodePorts`` of the ports (each port's, repeats kept)."""
    return [p["nodePort"] for p in _ports(spec) if p.get("nodePort")]


def _requested(number: Any, ports: list[dict[str, Any]]) -> Any:
    """``findRequestedNodePort``: the node port the first port numbered ``number`` asks for."""
    for p in ports:
        if p.get("port") == number and p.get("nodePort"):
            return p["nodePort"]
    return 0


async def init_node_ports(spec: dict[str, Any], claim: Claim, next_port: Next) -> None:
    """``initNodePorts``: a create's node ports, in place on ``spec``."""
    allocate = should_allocate(spec)
    ports = _ports(spec)
    by_number: dict[Any, Any] = {}  # svcPortToNodePort
    for i, p in enumerate(spec.get("ports") or []):
        if not isinstance(p, dict):
            continue
        want = p.get("nodePort") or 0
        if not want and not allocate:
            continue  # nothing allocated, a request honoured
        shared = by_number.get(p.get("port"), 0)
        if not shared:
            requested = _requested(p.get("port"), ports)
            if requested:
                err = await claim(requested)
                if err is not None:
                    raise NodePortInvalid(i, requested, err)
                p["nodePort"] = requested
            else:
                p["nodePort"] = await next_port()
            by_number[p.get("port")] = p["nodePort"]
        elif want != shared:
            if not want:
                p["nodePort"] = shared  # the same number's node port: one port for both protocols
            else:
                err = await claim(want)
                if err is not None:
                    raise NodePortInvalid(i, want, err)


def patch_allocated_node_ports(old_spec: dict[str, Any], new_spec: dict[str, Any]) -> None:
    """The node-port part of ``patchAllocatedValues``: a port of the update without a node
    port gets the one the old port of its name had, unless the update gives that one to
    another port. Only when both the old and the new type have node ports."""
    if not (needs_node_port(old_spec) and needs_node_port(new_spec)):
        return
    used = set(port_node_ports(old_spec)) & set(port_node_ports(new_spec))
    by_name = {p.get("name") or "": p.get("nodePort") or 0 for p in _ports(old_spec)}
    for p in _ports(new_spec):
        if not p.get("nodePort"):
            old = by_name.get(p.get("name") or "", 0)
            if old and old not in used:
                p["nodePort"] = old


async def update_node_ports(old_spec: dict[str, Any], new_spec: dict[str, Any], claim: Claim,
                            next_port: Next) -> None:
    """``updateNodePorts``, in place on ``new_spec`` (after ``patch_allocated_node_ports``):
    node ports the old Service held are kept without being taken again, new ones are taken
    once each, ports without one get a new one (unless the LoadBalancer allocates none)."""
    held = set(port_node_ports(old_spec))
    allocate = should_allocate(new_spec)
    taken: set[Any] = set()  # portAllocated
    seen: set[tuple[str, Any]] = set()  # newNodePorts
    for i, p in enumerate(new_spec.get("ports") or []):
        if not isinstance(p, dict):
            continue
        want = p.get("nodePort") or 0
        if not want and not allocate:
            continue
        if want:
            if want not in held and want not in taken:
                err = await claim(want)
                if err is not None:
                    raise NodePortInvalid(i, want, err)
                taken.add(want)
        else:
            want = p["nodePort"] = await next_port()
        pair = (p.get("protocol") or "TCP", want)
        if pair in seen:
            raise DuplicateNodePort(*pair)
        seen.add(pair)
