"""Matching rules shared by several plugins: tolerations against taints and node selector
terms (re-exported from ``controlplane.machinery.scheduling``, shared with the DaemonSet and
node lifecycle controllers), and label selectors of pod affinity terms
(``controlplane.machinery.selectors``)."""

from __future__ import annotations

from typing import Any, Callable

from controlplane.machinery.scheduling import node_selector_matches, term_matches, tolerates  # noqa: F401
from controlplane.machinery.selectors import LabelSelector


_sel_cache: dict[str, LabelSelector] = {}


def label_selector(d: dict | None) -> LabelSelector:
    key = repr(d)
    sel = _sel_cache.get(key)
    if sel is None:
        sel = LabelSelector.from_dict(d)
        if len(_sel_cache) > 10000:
            _sel_cache.clear()
        _sel_cache[key] = sel
    return sel


def affinity_term_matches(term: dict[str, Any], owner_ns: str, pod_ns: str, pod_labels: dict[str, str],
                          ns_labels: Callable[[str], dict[str, str] | None] | None = None) -> bool:
    """Does a pod (namespace, labels) match a PodAffinityTerm declared by a pod in ``owner_ns``?

    As Kubernetes' ``AffinityTerm.Matches``: the term's namespaces are ``namespaces`` plus
    those whose labels ``namespaceSelector`` matches (``{}``: every namespace); with neither,
    the owner's namespace. ``ns_labels(name)`` gives a namespace's labels (the scheduler's
    Namespace informer); without it, or for an unknown namespace, only an empty selector
    matches."""
    namespaces = term.get("namespaces") or []
    ns_sel = term.get("namespaceSelector")
    if not namespaces and ns_sel is None:
        in_ns = pod_ns == owner_ns
    else:
        in_ns = pod_ns in namespaces
        if not in_ns and ns_sel is not None:
            sel = label_selector(ns_sel)
            if not sel.requirements:
                in_ns = True  # {} selects every namespace
            else:
                labels = ns_labels(pod_ns) if ns_labels is not None else None
                in_ns = labels is not None and sel.matches(labels)
    return in_ns and label_selector(term.get("labelSelector")).matches(pod_labels)
