"""Which pods may run on which nodes: tolerations against taints, and node selectors / node
affinity terms against a node's labels and name. One copy of Kubernetes'
``k8s.io/component-helpers/scheduling/corev1`` (``helpers.go``, ``nodeaffinity``) for every
caller: the scheduler's plugins (``schedulers/plugins/helpers.py``), the DaemonSet controller
(which nodes get a daemon pod) and the node lifecycle controller (which pods a NoExecute taint
evicts, and when).

Objects are the API's plain dicts. Pure; no imports of other layers.
"""

from __future__ import annotations

from typing import Any

# -- tolerations ---------------------------------------------------------------------------


def toleration_tolerates(tol: dict[str, Any], taint: dict[str, Any]) -> bool:
    """``Toleration.ToleratesTaint``: an empty effect matches every effect, an empty key with
    ``Exists`` matches every taint; ``Equal`` (the default operator) compares values."""
    effect = tol.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = tol.get("key") or ""
    op = tol.get("operator") or "Equal"
    if not key:
        return op == "Exists"  # validation allows an empty key only with Exists
    if key != taint.get("key"):
        return False
    if op == "Exists":
        return True
    return op == "Equal" and (tol.get("value") or "") == (taint.get("value") or "")


def tolerates(tolerations: list[dict[str, Any]] | None, taint: dict[str, Any]) -> bool:
    """Whether any of ``tolerations`` tolerates ``taint`` (``TolerationsTolerateTaint``)."""
    return any(toleration_tolerates(t, taint) for t in tolerations or ())


def find_untolerated_taint(taints: list[dict[str, Any]] | None, tolerations: list[dict[str, Any]] | None,
                           effects: tuple[str, ...] = ("NoSchedule", "NoExecute")) -> dict[str, Any] | None:
    """The first taint with one of ``effects`` that no toleration tolerates
    (``FindMatchingUntoleratedTaint`` with its usual effect filter), or None."""
    for taint in taints or ():
        if taint.get("effect") in effects and not tolerates(tolerations, taint):
            return taint
    return None


def matching_tolerations(taints: list[dict[str, Any]], tolerations: list[dict[str, Any]] | None
                         ) -> tuple[bool, list[dict[str, Any]]]:
    """``GetMatchingTolerations``: (every taint tolerated, the first toleration used for each)."""
    used: list[dict[str, Any]] = []
    for taint in taints:
        tol = next((t for t in tolerations or () if toleration_tolerates(t, taint)), None)
        if tol is None:
            return False, []
        used.append(tol)
    return True, used


def min_toleration_seconds(tolerations: list[dict[str, Any]]) -> float | None:
    """The taint manager's ``getMinTolerationTime``: the shortest ``tolerationSeconds`` of the
    tolerations used (0 for a non-positive one); None means forever (none sets a limit)."""
    shortest: float | None = None
    for t in tolerations:
        secs = t.get("tolerationSeconds")
        if secs is None:
            continue
        if float(secs) <= 0:
            return 0.0
        shortest = float(secs) if shortest is None else min(shortest, float(secs))
    return shortest


# -- node selectors and node affinity ------------------------------------------------------


def requirement_matches(expr: dict[str, Any], values: dict[str, str]) -> bool:
    """One ``NodeSelectorRequirement`` (In, NotIn, Exists, DoesNotExist, Gt, Lt) against a
    node's labels (``matchExpressions``) or fields (``matchFields``)."""
    key, op = expr.get("key", ""), expr.get("operator", "")
    has = key in values
    if op == "In":
        return has and values[key] in [str(v) for v in expr.get("values") or ()]
    if op == "NotIn":
        return not has or values[key] not in [str(v) for v in expr.get("values") or ()]
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has:
        vals = expr.get("values") or ()
        if len(vals) != 1:
            return False
        try:
            v, ref = int(values[key]), int(vals[0])
        except (TypeError, ValueError):
            return False
        return v > ref if op == "Gt" else v < ref
    return False


def term_matches(term: dict[str, Any], labels: dict[str, str], name: str) -> bool:
    """One ``NodeSelectorTerm``: the AND of its expressions and fields (only ``metadata.name``
    is a node field); an empty term matches nothing."""
    exprs = term.get("matchExpressions") or ()
    fields = term.get("matchFields") or ()
    if not exprs and not fields:
        return False
    return all(requirement_matches(e, labels) for e in exprs) and \
        all(requirement_matches(f, {"metadata.name": name}) for f in fields)


def node_selector_matches(selector: dict[str, Any] | None, labels: dict[str, str], name: str) -> bool:
    """A ``NodeSelector``: the OR of its terms; no selector matches every node."""
    if not selector:
        return True
    return any(term_matches(t, labels, name) for t in selector.get("nodeSelectorTerms") or ())


def required_node_affinity_matches(pod_spec: dict[str, Any], labels: dict[str, str], name: str) -> bool:
    """``nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)``: the pod's ``nodeSelector``
    map and its required node affinity both match the node."""
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    required = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required and (required.get("nodeSelectorTerms") or []):
        return node_selector_matches(required, labels, name)
    return True
