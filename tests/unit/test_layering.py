"""Layering rules (conventions.md item 9), checked on the source: the apiserver is the only
path to storage; controllers, the node agent and the schedulers reach the cluster only through
``controlplane.client``; nothing imports ``controlplane.controllers`` but the manager/CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _py_files(*parts: str) -> list[Path]:
    base = ROOT.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.exists() else []


FORBIDDEN = [
    # (package whose files are checked, forbidden import prefixes)
    (("controlplane", "controllers"), ("controlplane.storage", "controlplane.apiserver", "etcd3aio")),
    (("controlplane", "agent"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "etcd3aio")),
    (("controlplane", "client"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "etcd3aio")),
    (("controlplane", "machinery"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "controlplane.client")),
    (("schedulers",), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "etcd3aio")),
    (("controlplane", "storage"), ("controlplane.apiserver", "controlplane.client", "controlplane.controllers")),
    # the host network layer knows nothing of the API; the proxy and the DNS reach it through the client
    (("controlplane", "network"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers",
                                   "controlplane.client", "etcd3aio")),
    (("controlplane", "proxy"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "etcd3aio")),
    (("controlplane", "dns"), ("controlplane.storage", "controlplane.apiserver", "controlplane.controllers", "etcd3aio")),
]


@pytest.mark.parametrize("package,forbidden", FORBIDDEN, ids=lambda v: ".".join(v) if isinstance(v[0], str) and "." not in v[0] else None)
def test_layer_imports(package: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    bad = []
    for f in _py_files(*package):
        for name in _imports(f):
            if any(name == p or name.startswith(p + ".") for p in forbidden):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_every_module_has_a_docstring() -> None:
    missing = []
    for f in _py_files("controlplane") + _py_files("schedulers"):
        if f.name == "__main__.py":
            continue
        tree = ast.parse(f.read_text())
        if f.stat().st_size > 0 and ast.get_docstring(tree) is None:
            missing.append(str(f.relative_to(ROOT)))
    assert not missing, "modules without a docstring:\n" + "\n".join(missing)
