"""The kubelet's ``/metrics/resource`` text to one node's batch of points, as metrics-server's
decoder reads it: ``node_cpu_usage_seconds_total`` / ``node_memory_working_set_bytes`` for the
node, ``container_cpu_usage_seconds_total`` / ``container_memory_working_set_bytes`` /
``container_start_time_seconds`` per container (the ``pod_*`` series are not used). Samples
carry their own timestamps (milliseconds); one without uses the scrape time. A container
missing CPU or memory is dropped (an incomplete point), as metrics-server does.

Only the needed lines are parsed (checked by name first): the other families of the page cost
one ``startswith`` each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.machinery.promtext import parse_labels

NODE_CPU = "node_cpu_usage_seconds_total"
NODE_MEM = "node_memory_working_set_bytes"
CTR_CPU = "container_cpu_usage_seconds_total{"
CTR_MEM = "container_memory_working_set_bytes{"
CTR_START = "container_start_time_seconds{"


@dataclass(slots=True)
class Point:
    """One reading: cumulative CPU (core-seconds), memory working set (bytes), at ``ts``."""

    ts: float = 0.0
    cpu: float | None = None
    cpu_ts: float = 0.0
    mem: int | None = None
    start: float = 0.0


@dataclass
class NodeBatch:
    node: Point | None = None
    pods: dict[tuple[str, str], dict[str, Point]] = field(default_factory=dict)


def _value_ts(rest: str, default_ts: float) -> tuple[float, float]:
    parts = rest.split()
    v = float(parts[0])
    ts = int(parts[1]) / 1000.0 if len(parts) > 1 else default_ts
    return v, ts


def decode(text: str, scrape_ts: float) -> NodeBatch:
    """Parse one page; ValueError when a needed line is malformed."""
    b = NodeBatch()
    node = Point()
    pods = b.pods
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        c0 = line[0]
        if c0 == "n":
            if line.startswith(NODE_CPU) and line[len(NODE_CPU)] in " {":
                v, ts = _value_ts(line[line.index(" ", len(NODE_CPU) - 1):], scrape_ts)
                node.cpu, node.cpu_ts = v, ts
                node.ts = max(node.ts, ts)
            elif line.startswith(NODE_MEM) and line[len(NODE_MEM)] in " {":
                v, ts = _value_ts(line[line.index(" ", len(NODE_MEM) - 1):], scrape_ts)
                node.mem = int(v)
                node.ts = max(node.ts, ts)
            continue
        if c0 != "c":
            continue
        if line.startswith(CTR_CPU):
            kind = 0
        elif line.startswith(CTR_MEM):
            kind = 1
        elif line.startswith(CTR_START):
            kind = 2
        else:
            continue
        close = line.rindex("}")
        lab = parse_labels(line[line.index("{") + 1:close])
        v, ts = _value_ts(line[close + 1:], scrape_ts)
        key = (lab.get("namespace", ""), lab.get("pod", ""))
        cname = lab.get("container", "")
        p = pods.setdefault(key, {}).setdefault(cname, Point())
        if kind == 0:
            p.cpu, p.cpu_ts = v, ts
            p.ts = max(p.ts, ts)
        elif kind == 1:
            p.mem = int(v)
            p.ts = max(p.ts, ts)
        else:
            p.start = v
    if node.cpu is not None and node.mem is not None:
        node.ts = node.cpu_ts or node.ts
        b.node = node
    for key in list(pods):
        cs = pods[key]
        for name in [n for n, p in cs.items() if p.cpu is None or p.mem is None]:
            del cs[name]
        for p in cs.values():
            p.ts = p.cpu_ts or p.ts
        if not cs:
            del pods[key]
    return b
