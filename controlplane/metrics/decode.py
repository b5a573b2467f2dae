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

import re
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


# The kubelet writes its labels sorted (container, namespace, pod) without escapes in names: one
# regular expression over the page reads those lines in C. A page it does not fully cover
# (other label sets, escapes) goes through the general line parser instead.
_FAST = re.compile(r'^(container_cpu_usage_seconds_total|container_memory_working_set_bytes|container_start_time_seconds)'
                   r'\{container="([^"\\]*)",namespace="([^"\\]*)",pod="([^"\\]*)"\} (\S+)(?: (-?\d+))?$', re.M)
_NODE = re.compile(r'^(node_cpu_usage_seconds_total|node_memory_working_set_bytes) (\S+)(?: (-?\d+))?$', re.M)
_KIND = {"container_cpu_usage_seconds_total": 0, "container_memory_working_set_bytes": 1,
         "container_start_time_seconds": 2}


def decode(text: str, scrape_ts: float) -> NodeBatch:
    """Parse one page; ValueError when a needed line is malformed."""
    expected = sum(text.count("\n" + name + "{") + text.startswith(name + "{") for name in _KIND)
    fast = _FAST.findall(text)
    if len(fast) == expected and "node_cpu_usage_seconds_total{" not in text and "node_memory_working_set_bytes{" not in text:
        return _decode_fast(text, fast, scrape_ts)
    return _decode_lines(text, scrape_ts)


def _decode_fast(text: str, rows: list[tuple[str, ...]], scrape_ts: float) -> NodeBatch:
    b = NodeBatch()
    node = Point()
    for name, v, ts in _NODE.findall(text):
        t = int(ts) / 1000.0 if ts else scrape_ts
        if name == "node_cpu_usage_seconds_total":
            node.cpu, node.cpu_ts = float(v), t
        else:
            node.mem = int(float(v))
        node.ts = max(node.ts, t)
    pods = b.pods
    for name, cname, ns, pod, v, ts in rows:
        p = pods.setdefault((ns, pod), {}).get(cname)
        if p is None:
            p = pods[(ns, pod)][cname] = Point()
        kind = _KIND[name]
        if kind == 0:
            p.cpu, p.cpu_ts = float(v), int(ts) / 1000.0 if ts else scrape_ts
            p.ts = max(p.ts, p.cpu_ts)
        elif kind == 1:
            p.mem = int(float(v))
            p.ts = max(p.ts, int(ts) / 1000.0 if ts else scrape_ts)
        else:
            p.start = float(v)
    return _finish(b, node)


def _decode_lines(text: str, scrape_ts: float) -> NodeBatch:
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
    return _finish(b, node)


def _finish(b: NodeBatch, node: Point) -> NodeBatch:
    """Keep complete points only (CPU and memory), timed at their CPU sample."""
    pods = b.pods
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
