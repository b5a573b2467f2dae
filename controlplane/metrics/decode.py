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
# regular expression per family reads those lines in C (each starts with a literal, which the
# engine finds by a fast scan). A page they do not fully cover (other label sets, escapes) goes
# through the general line parser instead.
def _family(name: str) -> re.Pattern[str]:
    return re.compile("\n" + name + r'\{container="([^"\\]*)",namespace="([^"\\]*)",pod="([^"\\]*)"\} (\S+)(?: (-?\d+))?(?=\n|\Z)')


_CPU_ROWS, _MEM_ROWS, _START_ROWS = (_family(n) for n in (CTR_CPU[:-1], CTR_MEM[:-1], CTR_START[:-1]))
_NODE = re.compile(r'\nnode_(cpu_usage_seconds_total|memory_working_set_bytes) (\S+)(?: (-?\d+))?(?=\n|\Z)')


def decode(text: str, scrape_ts: float) -> NodeBatch:
    """Parse one page; ValueError when a needed line is malformed."""
    page = "\n" + text
    rows = []
    for family, pattern in ((CTR_CPU, _CPU_ROWS), (CTR_MEM, _MEM_ROWS), (CTR_START, _START_ROWS)):
        found = pattern.findall(page)
        if len(found) != page.count("\n" + family):
            return _decode_lines(text, scrape_ts)
        rows.append(found)
    if "node_cpu_usage_seconds_total{" in text or "node_memory_working_set_bytes{" in text:
        return _decode_lines(text, scrape_ts)
    return _decode_fast(page, rows[0], rows[1], rows[2], scrape_ts)


def _decode_fast(page: str, cpu_rows: list[tuple[str, ...]], mem_rows: list[tuple[str, ...]],
                 start_rows: list[tuple[str, ...]], scrape_ts: float) -> NodeBatch:
    """The rows of the three container families, as ``_decode_lines`` reads them: a point is
    made by its CPU sample (one without is incomplete, dropped by ``_finish`` anyway), and
    timed at it, so the memory and start rows only fill in those points."""
    b = NodeBatch()
    node = Point()
    for name, v, ts in _NODE.findall(page):
        t = int(ts) / 1000.0 if ts else scrape_ts
        if name == "cpu_usage_seconds_total":
            node.cpu, node.cpu_ts = float(v), t
        else:
            node.mem = int(float(v))
        node.ts = max(node.ts, t)
    pods = b.pods
    for cname, ns, pod, v, ts in cpu_rows:
        t = int(ts) / 1000.0 if ts else scrape_ts
        cs = pods.get((ns, pod))
        if cs is None:
            cs = pods[(ns, pod)] = {}
        cs[cname] = Point(t, float(v), t)
    for cname, ns, pod, v, _ in mem_rows:
        cs = pods.get((ns, pod))
        p = cs.get(cname) if cs is not None else None
        if p is not None:
            p.mem = int(float(v))
    for cname, ns, pod, v, _ in start_rows:
        cs = pods.get((ns, pod))
        p = cs.get(cname) if cs is not None else None
        if p is not None:
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
