"""The Prometheus text exposition format (0.0.4), written and read fast (pure).

Written by the node agent (``/metrics/resource``, ``/metrics/cadvisor``: one sample per
container and pod, with explicit millisecond timestamps as the kubelet writes them) and by the
simulated nodes; read by the metrics component when it scrapes every node each resolution
period. Hand-written rather than ``prometheus_client``'s: that library writes only from its
own registry (no per-sample timestamps outside custom collectors) and its parser builds a
``Metric`` object per family and a ``Sample`` per line through regular expressions, which
measured about 8x slower than ``parse`` below on a kubelet page (docs/metrics.md) -- at 5,000
nodes and 150,000 pods per 15 s that difference is most of a core.

    lines = [sample("node_cpu_usage_seconds_total", {}, 12.5, 1700000000000)]
    text = family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time ...", lines)
    for name, labels, value, ts in parse(text): ...
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def escape(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return value


def fmt_value(v: float) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def sample(name: str, labels: dict[str, str] | None, value: float, ts_ms: int | None = None) -> str:
    """One sample line (no newline)."""
    if labels:
        body = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        head = f"{name}{{{body}}}"
    else:
        head = name
    if ts_ms is None:
        return f"{head} {fmt_value(value)}"
    return f"{head} {fmt_value(value)} {ts_ms}"


def family(name: str, mtype: str, help_: str, lines: Iterable[str]) -> str:
    """``# HELP`` / ``# TYPE`` and the sample lines of one metric family, newline-terminated."""
    body = "\n".join(lines)
    head = f"# HELP {name} {help_}\n# TYPE {name} {mtype}\n"
    return head + body + "\n" if body else head


def _unescape(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            out.append("\n" if n == "n" else n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_labels(body: str) -> dict[str, str]:
    """Parse ``a="x",b="y"`` (values may hold escaped quotes, commas and braces)."""
    if "\\" not in body:
        # no escapes: a value cannot contain '"', so '",' only ever ends a value
        out: dict[str, str] = {}
        for part in body.split('",'):
            k, sep, v = part.partition('="')
            if not sep:
                if part.strip(" ,"):
                    raise ValueError(f"malformed labels: {body!r}")
                continue
            out[k.strip(" ,")] = v[:-1] if v.endswith('"') else v
        if not body.rstrip(" ,").endswith('"'):
            raise ValueError(f"unterminated label value: {body!r}")
        return out
    out = {}
    i, n = 0, len(body)
    while i < n:
        eq = body.find("=", i)
        if eq < 0:
            break
        key = body[i:eq].strip().lstrip(",").strip()
        q = body.find('"', eq)
        if q < 0:
            raise ValueError(f"malformed labels: {body!r}")
        j = q + 1
        escaped = False
        while j < n:
            c = body[j]
            if c == "\\":
                j += 2
                escaped = True
                continue
            if c == '"':
                break
            j += 1
        if j >= n:
            raise ValueError(f"unterminated label value: {body!r}")
        raw = body[q + 1:j]
        out[key] = _unescape(raw) if escaped else raw
        i = j + 1
        while i < n and body[i] in ", ":
            i += 1
    return out


def parse(text: str) -> Iterator[tuple[str, dict[str, str], float, int | None]]:
    """(name, labels, value, timestamp in ms or None) for every sample line; comments and
    blank lines skipped. Raises ValueError on a malformed line."""
    for line in text.split("\n"):
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        if brace >= 0:
            close = line.rfind("}")
            if close < brace:
                raise ValueError(f"malformed sample: {line!r}")
            name = line[:brace]
            labels = parse_labels(line[brace + 1:close])
            rest = line[close + 1:].split()
        else:
            parts = line.split()
            name, rest, labels = parts[0], parts[1:], {}
        if not rest:
            raise ValueError(f"sample without a value: {line!r}")
        try:
            value = float(rest[0])
            ts = int(rest[1]) if len(rest) > 1 else None
        except ValueError:
            raise ValueError(f"malformed sample: {line!r}") from None
        yield name.strip(), labels, value, ts
