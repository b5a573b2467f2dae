"""Name -> implementation registries with a lazy lookup, one implementation for both kinds
the schedulers have: framework plugins (``schedulers.framework.registry.PLUGINS``: plugin
name -> Plugin class) and GPU placement policies (``schedulers.gpu.policy.POLICIES``: policy
name -> factory).

Why one module below everything else: the framework owns the plugin registry but must not
import a plugin, and the GPU policies sit below the framework; so neither registry may name
the modules that fill it. Instead a package that provides implementations declares itself
(:meth:`Registry.provide`: the package and its built-in modules), and the first lookup
imports those modules. Rules, for both kinds:

- registering a name twice (with a different object) is a ``ValueError``;
- :meth:`Registry.get` imports the declared built-in modules once, then, for a name still
  unknown, tries ``<package>.<name.lower()>`` in every declared package, so a new module there
  is found without editing any list;
- an unknown name is a ``KeyError`` naming the kind.
"""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """``kind`` names the entries in errors; ``fold_case``: names are case-insensitive."""

    def __init__(self, kind: str, *, fold_case: bool = False) -> None:
        self.kind = kind
        self.fold_case = fold_case
        self._entries: dict[str, T] = {}
        self._packages: list[str] = []
        self._pending: list[str] = []  # built-in modules declared but not imported yet

    def _key(self, name: str) -> str:
        return name.lower() if self.fold_case else name

    def provide(self, package: str, modules: tuple[str, ...] = ()) -> None:
        """``package`` holds implementations: its ``modules`` (names relative to it) are
        imported on the first lookup, and unknown names are looked up in it by module name."""
        if package not in self._packages:
            self._packages.append(package)
        self._pending.extend(f"{package}.{m}" for m in modules)

    def register(self, name: str, obj: T) -> T:
        if not name:
            raise ValueError(f"{self.kind} {obj!r} has no name")
        key = self._key(name)
        old = self._entries.get(key)
        if old is not None and old is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = obj
        return obj

    def load(self) -> None:
        """Import the declared built-in modules (they register themselves)."""
        while self._pending:
            importlib.import_module(self._pending.pop(0))

    def get(self, name: str) -> T:
        self.load()
        key = self._key(name)
        if key not in self._entries:
            for package in self._packages:
                modname = f"{package}.{name.lower()}"
                try:
                    importlib.import_module(modname)
                except ModuleNotFoundError as e:
                    if e.name != modname:
                        raise
                if key in self._entries:
                    break
        if key not in self._entries:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[key]

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)
