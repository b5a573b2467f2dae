"""Layering (conventions.md items 9 and 10). The import rules themselves are import-linter
contracts in pyproject.toml (``[tool.importlinter]``), checked by ``lint-imports``, which
``make test`` runs before pytest. What is checked here: that those contracts keep covering what
they are meant to cover as packages and controllers are added, and that every module opens
with a docstring saying why it exists."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from controlplane.cmd.controller_manager import CONTROLLERS

ROOT = Path(__file__).resolve().parents[2]


def _py_files(*parts: str) -> list[Path]:
    base = ROOT.joinpath(*parts)
    return sorted(base.rglob("*.py")) if base.exists() else []


@pytest.fixture(scope="module")
def contracts() -> dict[str, dict]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert cfg["root_packages"] == ["controlplane", "schedulers"]
    return {c["id"]: c for c in cfg["contracts"]}


def test_base_contracts_are_declared(contracts):
    assert {"layers", "controllers-independent", "storage-interface-only", "agent-not-apiserver",
            "only-cmd-imports-controllers", "only-storage-imports-etcd"} <= set(contracts)
    assert contracts["layers"]["layers"][0] == "controlplane.cmd"
    assert contracts["layers"]["layers"][-1].split(" | ")[0] == "controlplane.machinery"


def test_every_controller_is_independent(contracts):
    """A controller added to the controller-manager must join the independence contract."""
    listed = set(contracts["controllers-independent"]["modules"])
    assert listed == {m.__name__ for m in CONTROLLERS.values()}


def test_only_cmd_imports_controllers_covers_every_package(contracts):
    """Every top-level module of ``controlplane`` (and ``schedulers``) but ``cmd``,
    ``controllers`` and ``__main__`` is a source of the contract, new ones included."""
    tops = {f"controlplane.{p.stem}" for p in (ROOT / "controlplane").iterdir()
            if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    expected = tops - {"controlplane.cmd", "controlplane.controllers", "controlplane.__main__"} | {"schedulers"}
    assert set(contracts["only-cmd-imports-controllers"]["source_modules"]) == expected


def test_every_module_has_a_docstring() -> None:
    missing = []
    for f in _py_files("controlplane") + _py_files("schedulers"):
        if f.name == "__main__.py":
            continue
        tree = ast.parse(f.read_text())
        if f.stat().st_size > 0 and ast.get_docstring(tree) is None:
            missing.append(str(f.relative_to(ROOT)))
    assert not missing, "modules without a docstring:\n" + "\n".join(missing)
