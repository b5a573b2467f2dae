"""Matching rules shared by several plugins: tolerations against taints, node selector
terms (requirements with In/NotIn/Exists/DoesNotExist/Gt/Lt and matchFields), and label
selectors of pod affinity terms (``controlplane.machinery.selectors``)."""

from __future__ import annotations

from typing import Any

from controlplane.machinery.selectors import LabelSelector


def tolerates(tolerations: list[dict], taint: dict) -> bool:
    for t in tolerations:
        effect = t.get("effect") or ""
        if effect and effect != taint.get("effect"):
            continue
        key = t.get("key") or ""
        op = t.get("operator") or "Equal"
        if not key:
            if op == "Exists":
                return True
            continue
        if key != taint.get("key"):
            continue
        if op == "Exists" or (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def _requirement(expr: dict, labels: dict[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), [str(v) for v in expr.get("values") or []]
    has = key in labels
    if op == "In":
        return has and labels[key] in values
    if op == "NotIn":
        return not has or labels[key] not in values
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and values:
        try:
            v, ref = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return v > ref if op == "Gt" else v < ref
    return False


def term_matches(term: dict, labels: dict[str, str], name: str) -> bool:
    """One NodeSelectorTerm (AND of its expressions); an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    return all(_requirement(e, labels) for e in exprs) and all(_requirement(f, {"metadata.name": name}) for f in fields)


def node_selector_matches(selector: dict | None, labels: dict[str, str], name: str) -> bool:
    """A NodeSelector: OR of its terms."""
    if not selector:
        return True
    return any(term_matches(t, labels, name) for t in selector.get("nodeSelectorTerms") or [])


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
