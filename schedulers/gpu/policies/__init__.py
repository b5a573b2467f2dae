"""The six openb GPU-sharing policies (``docs/openb-protocol.md`` section 6), one module
each, named after the policy: ``random``, ``dotprod``, ``gpuclustering``, ``gpupacking``,
``bestfit``, ``fgd``, and the two search baselines built on FGD, ``fgdlookahead`` and
``fgdsearch`` (``docs/placement.md`` 3). Each registers its factory in ``schedulers.gpu.policy.POLICIES`` on
import; this package declares them as the registry's built-ins and is where policies are
looked up (:func:`get_policy_factory`). Vectorised over nodes on
:class:`schedulers.gpu.state.GpuNodeState`; used by the offline simulator and, wrapped as
score plugins, by the live scheduler."""

from __future__ import annotations

from schedulers.gpu.policy import POLICIES, PolicyFactory

BUILTIN = ("random", "dotprod", "gpuclustering", "gpupacking", "bestfit", "fgd", "fgdlookahead", "fgdsearch")

POLICIES.provide(__name__, BUILTIN)


def get_policy_factory(name: str) -> PolicyFactory:
    """The factory of policy ``name`` (case-insensitive); ``KeyError`` if unknown."""
    return POLICIES.get(name)


def policy_names() -> list[str]:
    return POLICIES.names()
