"""Matching rules shared by several plugins: tolerations against taints and node selector
terms (re-exported from ``controlplane.machinery.scheduling``, shared with the DaemonSet and
node lifecycle controllers), and label selectors of pod affinity terms
(``controlplane.machinery.selectors``)."""

from __future__ import annotations

from typing import Any

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


def affinity_term_matches(term: dict[str, Any], owner_ns: str, pod_ns: str, pod_labels: dict[str, str]) -> bool:
    """Does a pod (namespace, labels) match a PodAffinityTerm declared by a pod in ``owner_ns``?"""
    namespaces = term.get("namespaces") or []
    if namespaces:
        if pod_ns not in namespaces:
            return False
    elif term.get("namespaceSelector") is None and pod_ns != owner_ns:
        return False
    return label_selector(term.get("labelSelector")).matches(pod_labels)
