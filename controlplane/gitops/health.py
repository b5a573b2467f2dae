"""Health of an object, by kstatus' rules (sigs.k8s.io/cli-utils/pkg/kstatus) or by a CEL
expression a user wrote for its kind (PyPI ``cel-python``).

Statuses: ``Current`` (healthy), ``InProgress``, ``Failed``, ``NotFound``. Built-in rules:
Deployments rolled out (observedGeneration caught up, updated = available = ready = desired,
no ProgressDeadlineExceeded), StatefulSets and DaemonSets updated and ready, ReplicaSets
available, Jobs complete (Failed condition: failed), Pods ready or succeeded, Services with at
least one ready endpoint when they select pods, CRDs established, PVCs bound, Namespaces
active; any other object with ``status.conditions``: ``Ready=True`` is current, ``Stalled=True``
or ``Ready=False`` with ``observedGeneration`` caught up is failed/in progress; an object
without conditions is current once it exists (kstatus' default). ``observedGeneration``
behind ``generation`` is always InProgress.

CEL: ``current``/``inProgress``/``failed`` expressions evaluated with the object's top-level
fields bound as variables (``status``, ``spec``, ``metadata``; ``self`` is the whole object),
as Flux's ``healthCheckExprs``. Neighbours: ``sync.py`` (wait/healthChecks), ``depends.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import celpy

CURRENT, IN_PROGRESS, FAILED, NOT_FOUND = "Current", "InProgress", "Failed", "NotFound"


@dataclass
class Health:
    status: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == CURRENT


class CelError(ValueError):
    pass


_ENV = celpy.Environment()
_COMPILED: dict[str, Any] = {}


def compile_expr(expr: str) -> Any:
    prog = _COMPILED.get(expr)
    if prog is None:
        try:
            prog = _ENV.program(_ENV.compile(expr))
        except Exception as e:  # celpy raises its own parse errors
            raise CelError(f"invalid CEL expression {expr!r}: {e}") from e
        if len(_COMPILED) > 1024:
            _COMPILED.clear()
        _COMPILED[expr] = prog
    return prog


def eval_bool(expr: str, obj: dict) -> bool:
    """Evaluate ``expr`` against ``obj``; raises CelError on evaluation errors or a non-bool."""
    prog = compile_expr(expr)
    activation = {k: celpy.json_to_cel(v) for k, v in obj.items() if isinstance(k, str) and k.isidentifier()}
    activation["self"] = celpy.json_to_cel(obj)
    for k in ("status", "spec", "metadata"):
        activation.setdefault(k, celpy.json_to_cel({}))
    try:
        out = prog.evaluate(activation)
    except Exception as e:  # CELEvalError and friends
        raise CelError(f"CEL {expr!r}: {e}") from e
    if isinstance(out, Exception):
        raise CelError(f"CEL {expr!r}: {out}")
    if not isinstance(out, (bool, celpy.celtypes.BoolType)):
        raise CelError(f"CEL {expr!r} returned {type(out).__name__}, not a bool")
    return bool(out)


def cel_health(obj: dict, rule: dict) -> Health:
    """Flux's healthCheckExprs order: failed, then current, then inProgress (else in progress)."""
    try:
        if rule.get("failed") and eval_bool(rule["failed"], obj):
            return Health(FAILED, f"failed: {rule['failed']}")
        if eval_bool(rule["current"], obj):
            return Health(CURRENT, "")
        if rule.get("inProgress") and eval_bool(rule["inProgress"], obj):
            return Health(IN_PROGRESS, f"in progress: {rule['inProgress']}")
    except CelError as e:
        return Health(FAILED, str(e))
    return Health(IN_PROGRESS, f"not yet: {rule['current']}")


def _cond(obj: dict, ctype: str) -> dict | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def _generation_behind(obj: dict) -> bool:
    gen = (obj.get("metadata") or {}).get("generation")
    og = (obj.get("status") or {}).get("observedGeneration")
    return gen is not None and og is not None and og < gen


def _i(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _deployment(obj: dict) -> Health:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    want = _i(spec.get("replicas", 1))
    prog = _cond(obj, "Progressing")
    if prog and prog.get("reason") == "ProgressDeadlineExceeded":
        return Health(FAILED, f"progress deadline exceeded: {prog.get('message', '')}")
    if "observedGeneration" not in st:
        return Health(IN_PROGRESS, "Deployment not yet observed by its controller")
    upd, avail, ready, total = (_i(st.get(k)) for k in ("updatedReplicas", "availableReplicas", "readyReplicas", "replicas"))
    if upd < want:
        return Health(IN_PROGRESS, f"{upd} of {want} updated replicas")
    if total > upd:
        return Health(IN_PROGRESS, f"{total - upd} old replicas pending termination")
    if avail < want or ready < want:
        return Health(IN_PROGRESS, f"{min(avail, ready)} of {want} replicas available")
    return Health(CURRENT, f"Deployment rolled out: {want} replicas available")


def _statefulset(obj: dict) -> Health:
    spec, st = obj.get("spec") or {}, obj.get("status") or {}
    want = _i(spec.get("replicas", 1))
    if "observedGeneration" not in st:
        return Health(IN_PROGRESS, "StatefulSet not yet observed by its controller")
    ready, upd = _i(st.get("readyReplicas")), _i(st.get("updatedReplicas"))
    strategy = spec.get("updateStrategy") or {}
    partition = _i((strategy.get("rollingUpdate") or {}).get("partition"))
    if ready < want:
        return Health(IN_PROGRESS, f"{ready} of {want} replicas ready")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and upd < want - partition:
        return Health(IN_PROGRESS, f"{upd} of {want - partition} replicas updated")
    if st.get("updateRevision") and st.get("currentRevision") != st.get("updateRevision") and partition == 0 \
            and _i(st.get("currentReplicas")) < want and upd < want:
        return Health(IN_PROGRESS, "rollout in progress")
    return Health(CURRENT, f"StatefulSet updated: {want} replicas ready")


def _daemonset(obj: dict) -> Health:
    st = obj.get("status") or {}
    if "observedGeneration" not in st:
        return Health(IN_PROGRESS, "DaemonSet not yet observed by its controller")
    want = _i(st.get("desiredNumberScheduled"))
    upd, avail, ready = _i(st.get("updatedNumberScheduled")), _i(st.get("numberAvailable")), _i(st.get("numberReady"))
    if upd < want:
        return Health(IN_PROGRESS, f"{upd} of {want} pods updated")
    if min(avail, ready) < want:
        return Health(IN_PROGRESS, f"{min(avail, ready)} of {want} pods ready")
    return Health(CURRENT, f"DaemonSet updated: {want} pods ready")


def _replicaset(obj: dict) -> Health:
    want = _i((obj.get("spec") or {}).get("replicas", 1))
    avail = _i((obj.get("status") or {}).get("availableReplicas"))
    if avail < want:
        return Health(IN_PROGRESS, f"{avail} of {want} replicas available")
    return Health(CURRENT, "")


def _job(obj: dict) -> Health:
    failed = _cond(obj, "Failed")
    if failed and failed.get("status") == "True":
        return Health(FAILED, f"Job failed: {failed.get('reason', '')} {failed.get('message', '')}".strip())
    done = _cond(obj, "Complete")
    if done and done.get("status") == "True":
        return Health(CURRENT, "Job complete")
    st = obj.get("status") or {}
    return Health(IN_PROGRESS, f"Job running: {_i(st.get('succeeded'))} succeeded, {_i(st.get('active'))} active")


def _pod(obj: dict) -> Health:
    st = obj.get("status") or {}
    if st.get("phase") == "Succeeded":
        return Health(CURRENT, "Pod succeeded")
    if st.get("phase") == "Failed":
        return Health(FAILED, f"Pod failed: {st.get('reason', '')}")
    ready = _cond(obj, "Ready")
    if ready and ready.get("status") == "True":
        return Health(CURRENT, "Pod ready")
    return Health(IN_PROGRESS, f"Pod {st.get('phase', 'Pending')}, not ready")


def _crd(obj: dict) -> Health:
    c = _cond(obj, "Established")
    if c and c.get("status") == "True":
        return Health(CURRENT, "CRD established")
    nac = _cond(obj, "NamesAccepted")
    if nac and nac.get("status") == "False":
        return Health(FAILED, f"CRD names not accepted: {nac.get('message', '')}")
    return Health(IN_PROGRESS, "CRD not yet established")


def _pvc(obj: dict) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Bound":
        return Health(CURRENT, "PVC bound")
    if phase == "Lost":
        return Health(FAILED, "PVC lost its volume")
    return Health(IN_PROGRESS, f"PVC {phase or 'Pending'}, not bound")


def _namespace(obj: dict) -> Health:
    phase = (obj.get("status") or {}).get("phase")
    if phase == "Terminating" or (obj.get("metadata") or {}).get("deletionTimestamp"):
        return Health(IN_PROGRESS, "Namespace terminating")
    return Health(CURRENT, "")


def _generic(obj: dict) -> Health:
    stalled = _cond(obj, "Stalled")
    if stalled and stalled.get("status") == "True":
        return Health(FAILED, f"Stalled: {stalled.get('message', '')}")
    ready = _cond(obj, "Ready")
    if ready is None:
        return Health(CURRENT, "")
    og = ready.get("observedGeneration")
    gen = (obj.get("metadata") or {}).get("generation")
    if og is not None and gen is not None and og < gen:
        return Health(IN_PROGRESS, "Ready condition not yet observed for the latest generation")
    if ready.get("status") == "True":
        return Health(CURRENT, ready.get("message", ""))
    return Health(IN_PROGRESS, f"Ready={ready.get('status')}: {ready.get('message') or ready.get('reason') or ''}".strip())


RULES: dict[tuple[str, str], Callable[[dict], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("apps", "ReplicaSet"): _replicaset,
    ("batch", "Job"): _job,
    ("", "Pod"): _pod,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Namespace"): _namespace,
}


EndpointsLookup = Callable[[str, str], Awaitable[dict | None]]


async def compute(obj: dict | None, *, exprs: list[dict] | None = None,
                  endpoints: EndpointsLookup | None = None) -> Health:
    """Health of ``obj`` (None: NotFound) by a matching CEL rule, else kstatus' rules."""
    if obj is None:
        return Health(NOT_FOUND, "not found")
    md = obj.get("metadata") or {}
    if md.get("deletionTimestamp"):
        return Health(IN_PROGRESS, "being deleted")
    api_version, kind = obj.get("apiVersion") or "", obj.get("kind") or ""
    for rule in exprs or []:
        if rule.get("kind") == kind and rule.get("apiVersion") == api_version:
            return cel_health(obj, rule)
    if _generation_behind(obj):
        return Health(IN_PROGRESS, "status.observedGeneration is behind metadata.generation")
    group = api_version.rpartition("/")[0]
    if (group, kind) == ("", "Service"):
        return await _service(obj, endpoints)
    rule_fn = RULES.get((group, kind))
    return rule_fn(obj) if rule_fn else _generic(obj)


async def _service(obj: dict, endpoints: EndpointsLookup | None) -> Health:
    spec = obj.get("spec") or {}
    if spec.get("type") == "ExternalName" or not spec.get("selector") or endpoints is None:
        return Health(CURRENT, "")
    md = obj.get("metadata") or {}
    ep = await endpoints(md.get("namespace") or "default", md["name"])
    ready = sum(len(s.get("addresses") or []) for s in (ep or {}).get("subsets") or [])
    if ready == 0:
        return Health(IN_PROGRESS, "Service has no ready endpoints")
    return Health(CURRENT, f"Service has {ready} ready endpoints")
