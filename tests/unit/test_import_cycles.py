"""No import cycle anywhere in ``controlplane/`` or ``schedulers/``: the module import graph
(grimp, the library under import-linter) has no strongly connected component of more than one
module. Every import counts, including those inside functions and under ``TYPE_CHECKING``:
a cycle hidden that way is still a cycle.

By hand: ``python -m pytest tests/unit/test_import_cycles.py -q`` (the failure lists each cycle).
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("controlplane", "schedulers")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components in no particular order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(nodes):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    out.append(sorted(comp))
    return out


@pytest.mark.parametrize("edges,cycles", [
    ({"a": {"b"}, "b": {"c"}}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"a"}}, []),  # a module importing itself is no cycle between modules
    ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
], ids=["chain", "pair", "triangle-with-tail", "self", "two"])
def test_strongly_connected(edges, cycles):
    nodes = set(edges) | {w for ws in edges.values() for w in ws}
    assert sorted(c for c in strongly_connected(nodes, edges) if len(c) > 1) == cycles


def test_every_module_is_in_the_graph(graph):
    """grimp sees only regular packages: a folder of modules without ``__init__.py`` would
    silently drop out of this test and out of every import contract."""
    on_disk = set()
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            on_disk.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    missing = sorted(on_disk - graph.modules)
    assert not missing, "modules grimp cannot see (a folder without __init__.py?):\n" + "\n".join(missing)


def test_no_import_cycles(graph):
    nodes = set(graph.modules)
    edges = {m: graph.find_modules_directly_imported_by(m) & nodes for m in nodes}
    cycles = [c for c in strongly_connected(nodes, edges) if len(c) > 1]
    assert not cycles, "import cycles (each line: the modules of one strongly connected component):\n" + \
        "\n".join(f"{len(c)}: {', '.join(c)}" for c in sorted(cycles))
