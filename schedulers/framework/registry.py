"""The framework's plugin registry: plugin name -> Plugin class (``schedulers.registry``'s
lazy lookup; registering a name twice is an error). Plugin modules register themselves with
``@register``; the framework never names them: the in-tree plugins package
(``schedulers.plugins``) declares its modules with ``PLUGINS.provide`` and is imported by
whoever builds profiles from names (``schedulers.profiles.loader``). Neighbours:
``profile.build_profile`` (names -> instances), ``interface.Plugin``.
"""

from __future__ import annotations

from schedulers.framework.interface import Plugin
from schedulers.registry import Registry

PLUGINS: Registry[type[Plugin]] = Registry("scheduler plugin")


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: ``@register`` on a Plugin subclass with a unique ``name``."""
    if not cls.name:
        raise ValueError(f"{cls!r} has no name")
    return PLUGINS.register(cls.name, cls)


def get(name: str) -> type[Plugin]:
    """The plugin class; ``KeyError`` for an unknown name."""
    return PLUGINS.get(name)


def names() -> list[str]:
    return PLUGINS.names()
