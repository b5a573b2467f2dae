"""A small Kubernetes JSONPath subset for CRD ``additionalPrinterColumns``: ``.a.b``,
``['a.b']``, ``[N]`` (negative too), ``[*]``, ``..`` is not supported, filters
``[?(@.type=="Ready")]`` (``==``/``!=``, string or number literals, nested ``@.a.b``).
Used by ``tables.py``; pure.
"""

from __future__ import annotations

import re
from typing import Any

_FILTER = re.compile(r"""^\?\(@((?:\.[\w\-]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(-?\d+(?:\.\d+)?))\s*\)$""")


class JsonPathError(ValueError):
    pass


def _tokens(path: str) -> list[tuple[str, str]]:
    p = path.strip()
    if p.startswith("{") and p.endswith("}"):
        p = p[1:-1]
    if p.startswith("$"):
        p = p[1:]
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(p):
        ch = p[i]
        if ch == ".":
            if p[i + 1:i + 2] == ".":
                raise JsonPathError("recursive descent is not supported")
            j = i + 1
            while j < len(p) and p[j] not in ".[":
                j += 1
            if j > i + 1:
                out.append(("field", p[i + 1:j]))
            i = j
        elif ch == "[":
            j = _match_bracket(p, i)
            inner = p[i + 1:j].strip()
            if inner.startswith(("'", '"')):
                out.append(("field", inner[1:-1]))
            elif inner == "*":
                out.append(("all", ""))
            elif inner.startswith("?"):
                out.append(("filter", inner))
            elif re.fullmatch(r"-?\d+", inner):
                out.append(("index", inner))
            else:
                raise JsonPathError(f"unsupported subscript [{inner}]")
            i = j + 1
        else:
            j = i
            while j < len(p) and p[j] not in ".[":
                j += 1
            out.append(("field", p[i:j]))
            i = j
    return out


def _match_bracket(p: str, i: int) -> int:
    depth = 0
    quote = ""
    for j in range(i, len(p)):
        c = p[j]
        if quote:
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                return j
    raise JsonPathError(f"unterminated [ in {p!r}")


def _get_path(obj: Any, dotted: str) -> Any:
    for part in dotted.strip(".").split("."):
        if not isinstance(obj, dict) or part not in obj:
            return _MISSING
        obj = obj[part]
    return obj


_MISSING = object()


def find(obj: Any, path: str) -> list[Any]:
    """Every value ``path`` selects in ``obj`` (missing fields select nothing)."""
    current = [obj]
    for kind, arg in _tokens(path):
        nxt: list[Any] = []
        for v in current:
            if kind == "field":
                if isinstance(v, dict) and arg in v:
                    nxt.append(v[arg])
            elif kind == "index":
                if isinstance(v, list):
                    idx = int(arg)
                    if -len(v) <= idx < len(v):
                        nxt.append(v[idx])
            elif kind == "all":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            elif kind == "filter":
                m = _FILTER.match(arg)
                if not m:
                    raise JsonPathError(f"unsupported filter {arg}")
                field, op, s1, s2, num = m.groups()
                want: Any = s1 if s1 is not None else s2 if s2 is not None else float(num)
                for item in v if isinstance(v, list) else []:
                    got = _get_path(item, field)
                    if got is _MISSING:
                        continue
                    if isinstance(want, float) and isinstance(got, (int, float)):
                        eq = float(got) == want
                    else:
                        eq = got == want
                    if eq == (op == "=="):
                        nxt.append(item)
        current = nxt
    return current
