"""Subresources other than ``/status``: ``pods/binding`` (the scheduler's bind), ``pods/eviction``
and ``*/scale`` (an ``autoscaling/v1`` Scale over a workload's or custom resource's replicas).
``pods/log`` and ``pods/exec`` are proxied to the node agent by ``proxies.py``.

Scale and eviction are read-modify-writes of the parent through ``write.write_update``,
so they obey the same rules (conflicts, dry run, managedFields) as any other write; a binding,
as in kube-apiserver, is a storage-level update of the pod (no re-validation, no managedFields).
A Binding may carry the scheduler's SchedulingDecision record in its
``scheduling.controlplane.io/decision`` annotation: it is validated before the binding and
stored once the binding is (a background write, group-committed with the writes in flight,
after the answer so the binding's latency is unchanged), so recording decisions costs the
scheduler no request of its own; the annotation is not copied onto the pod. Likewise the
scheduler's ``Scheduled`` Event (a core/v1 Event about this pod, in the
``scheduling.controlplane.io/scheduled-event`` annotation): checked before the binding (JSON, an
Event about this pod in its namespace, the requester may create Events there), then created
through the ordinary create path (admission, defaulting, validation, managedFields, its TTL)
once the binding is stored, as if the scheduler had POSTed it right after its binding, which is
what kube-scheduler does; it saves the scheduler a request per pod.
"""

from __future__ import annotations

import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.endpoints import common as hc
from controlplane.apiserver.endpoints.common import Api, parse_rv
from controlplane.apiserver.endpoints.delete import delete_object
from controlplane.apiserver.endpoints.write import cached_copy, create_object, write_update
from controlplane.apiserver.meta import errors
from controlplane.apiserver.meta import request as reqctx
from controlplane.apiserver.meta.jsonutil import loads, path_get, path_set
from controlplane.apiserver.patch import apply_patch
from controlplane.apiserver.strategy import generic
from controlplane.machinery import disruption
from controlplane.machinery.scale import scale_view
from controlplane.log import get_logger
from controlplane.machinery.timestamps import now_rfc3339

log = get_logger(__name__)

# A Binding annotation carrying the scheduler's record of the decision (a SchedulingDecision,
# JSON): stored as that object right after the binding, never copied onto the pod.
DECISION_ANNOTATION = "scheduling.controlplane.io/decision"
DECISION_GVR = ("scheduling.controlplane.io", "v1", "schedulingdecisions")
# A Binding annotation carrying the scheduler's Scheduled Event about the pod (a core/v1 Event,
# JSON): created right after the binding, never copied onto the pod.
EVENT_ANNOTATION = "scheduling.controlplane.io/scheduled-event"
EVENT_GVR = ("", "v1", "events")
# tries of an eviction whose pod keeps changing under it (EvictionsRetry of eviction.go)
EVICTION_RETRIES = 20


async def handle(api: Api, request: Request, t: hc.Target, verb: str) -> HTTPResponse:
    if t.subresource == "binding" and verb == "create":
        return await bind(api, request, t)
    if t.subresource == "scale" and verb in ("get", "update", "patch"):
        return await scale(api, request, t, verb)
    if t.subresource == "eviction" and verb == "create":
        return await evict(api, request, t)
    raise errors.method_not_allowed(f"{request.method} on {t.info.plural}/{t.subresource} is not supported by this server")


class _DryRunBinding(Exception):
    """A dry-run binding that would have been written."""


async def bind(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    assert t.name
    body = hc.decode_body(request)
    target = body.get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.invalid("Binding", t.name, [{"reason": "FieldValueRequired", "field": "target.name",
                                                  "message": "Required value"}])
    if (body.get("metadata") or {}).get("name") not in (None, t.name):
        raise errors.bad_request("the name of the binding does not match the pod")
    want_uid = (body.get("metadata") or {}).get("uid")
    dry = hc.dry_run(request)
    record = _decision_record(api, body, t)  # checked before anything is written
    event = _scheduled_event(api, body, t)

    async def assign(current: dict[str, Any]) -> dict[str, Any]:
        meta, spec = current["metadata"], current.setdefault("spec", {})
        if want_uid and want_uid != meta.get("uid"):
            raise errors.conflict("pods", t.name, "the UID of the binding does not match the pod's")
        if meta.get("deletionTimestamp"):
            raise errors.conflict("pods", t.name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods", t.name, f"pod {t.name} is already assigned to node \"{spec['nodeName']}\"")
        spec["nodeName"] = node
        status = current.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                      "lastTransitionTime": now_rfc3339()})
        status["conditions"] = conds
        if dry:
            raise _DryRunBinding()
        return current

    # As kube-apiserver's BindingREST: a storage-level update of the pod (spec.nodeName and the
    # PodScheduled condition) that neither re-validates the pod nor records managedFields.
    try:
        await api.store.guaranteed_update(t.info, t.namespace, t.name, assign, want_old=False,
                                          suggest=lambda: cached_copy(api, t.info, t.namespace, t.name))
    except _DryRunBinding:
        pass
    else:
        if record is not None:  # stored after the answer: the binding's latency stays as it was
            api.spawn(_store_record(api, *record, t))
        if event is not None:
            api.spawn(_create_event(api, *event, hc.field_manager(request), t))
    return hc.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "code": 201}, status=201)


async def _store_record(api: Api, info: ResourceInfo, obj: dict[str, Any], t: hc.Target) -> None:
    try:
        await api.store.create(info, obj)  # group-committed with the writes in flight
    except errors.ApiError as e:  # the binding stands; a lost record is not worth failing it
        log.warning("decision record not stored", pod=t.name, namespace=t.namespace, error=str(e))
    except Exception as e:  # storage unavailable, shutdown: the record is lost, said so
        log.warning("decision record not stored", pod=t.name, namespace=t.namespace, error=repr(e))


async def _create_event(api: Api, info: ResourceInfo, obj: dict[str, Any], manager: str, t: hc.Target) -> None:
    try:  # the create path of a POST (admission, defaults, validation, managedFields, TTL)
        await create_object(api, info, obj, strict=False, manager=manager, dry=False)
    except errors.ApiError as e:  # the binding stands; the Event is lost, as a failed POST's would be
        log.warning("scheduled event not stored", pod=t.name, namespace=t.namespace, error=str(e))
    except Exception as e:
        log.warning("scheduled event not stored", pod=t.name, namespace=t.namespace, error=repr(e))


def _carried(body: dict[str, Any], annotation: str, what: str) -> dict[str, Any] | None:
    raw = ((body.get("metadata") or {}).get("annotations") or {}).get(annotation)
    if not raw:
        return None
    try:
        obj = loads(raw) if isinstance(raw, (str, bytes)) else None
    except ValueError as e:
        raise errors.bad_request(f"annotation {annotation}: not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request(f"annotation {annotation}: must hold {what} object")
    return obj


def _may_create(t: hc.Target, group: str, resource: str) -> None:
    """The requester may create ``resource`` in the pod's namespace (a Binding is no way
    around RBAC); nothing to check outside a request's security context."""
    ctx = reqctx.current()
    if ctx is not None and not ctx.allowed("create", group=group, resource=resource, namespace=t.namespace or ""):
        raise errors.ApiError(403, "Forbidden", f'{resource} is forbidden: User "{ctx.user.name}" cannot create '
                              f'resource "{resource}" in API group "{group}" in the namespace "{t.namespace}" '
                              '(carried by a Binding)', details={"kind": resource})


def _scheduled_event(api: Api, body: dict[str, Any], t: hc.Target) -> tuple[ResourceInfo, dict[str, Any]] | None:
    """The core/v1 Event a Binding carries in its ``scheduling.controlplane.io/scheduled-event``
    annotation, checked (an Event about this pod, in its namespace, that the requester may
    create); None when there is none. Not acceptable: a 400/403 and nothing is written."""
    obj = _carried(body, EVENT_ANNOTATION, "an Event")
    if obj is None:
        return None
    info = api.registry.get(*EVENT_GVR)
    assert info is not None
    info = api.registry.storage_info(info)
    generic.check_type(info, obj)
    meta = obj.setdefault("metadata", {})
    if meta.get("namespace") not in (None, t.namespace):
        raise errors.bad_request(f"annotation {EVENT_ANNOTATION}: the Event's namespace does not match the pod's")
    meta["namespace"] = t.namespace
    ref = obj.get("involvedObject")
    if not isinstance(ref, dict) or ref.get("kind") != "Pod" or ref.get("name") != t.name \
            or ref.get("namespace") not in (None, t.namespace):
        raise errors.bad_request(f"annotation {EVENT_ANNOTATION}: the Event must be about pod {t.name!r}")
    _may_create(t, "", "events")
    return info, obj


def _decision_record(api: Api, body: dict[str, Any], t: hc.Target) -> tuple[ResourceInfo, dict[str, Any]] | None:
    """The SchedulingDecision a Binding carries in its ``scheduling.controlplane.io/decision``
    annotation, prepared for storage like a create without a field manager (as the binding
    itself: no managedFields); None when there is none. A record that is not acceptable is a
    400/403/422 and nothing is written."""
    if not ((body.get("metadata") or {}).get("annotations") or {}).get(DECISION_ANNOTATION):
        return None
    info = api.registry.get(*DECISION_GVR)
    if info is None:
        return None
    obj = _carried(body, DECISION_ANNOTATION, "a SchedulingDecision")
    assert obj is not None
    generic.check_type(info, obj)
    meta = obj.setdefault("metadata", {})
    meta["namespace"] = t.namespace
    pod = obj.get("pod")
    if isinstance(pod, dict) and pod.get("name") != t.name:
        raise errors.bad_request(f"annotation {DECISION_ANNOTATION}: the record is about pod "
                                 f"{pod.get('name')!r}, not {t.name!r}")
    _may_create(t, DECISION_GVR[0], DECISION_GVR[2])
    return info, generic.prepare_create(info, obj, strict=False, manager=None)


async def evict(api: Api, request: Request, t: hc.Target) -> HTTPResponse:
    """policy/v1 Eviction, as kube-apiserver's ``EvictionREST``: a finished, pending or
    terminating pod is deleted at once; else the one PodDisruptionBudget guarding it (two or
    more: 500) must allow a disruption, which is spent on the budget's status (with the pod in
    ``disruptedPods``, a CAS write retried on conflicts) before the pod gets the
    ``DisruptionTarget`` condition and is deleted; a budget that allows none answers 429
    ("Cannot evict pod as it would violate the pod's disruption budget.", which ``kubectl
    drain`` retries). An unready pod may go without spending a disruption while its budget is
    met (``unhealthyPodEvictionPolicy``); its deletion then requires the version judged."""
    assert t.name
    body = hc.decode_body(request)
    if (body.get("metadata") or {}).get("name") not in (None, t.name):
        raise errors.bad_request("name in URL does not match name in Eviction object")
    opts = body.get("deleteOptions") or {}
    dry = hc.dry_run(request) or "All" in (opts.get("dryRun") or [])
    given = dict(opts.get("preconditions") or {})
    rv_unset = not given.get("resourceVersion")
    grace = opts.get("gracePeriodSeconds")

    async def delete(pre: dict[str, Any]) -> None:
        if not dry:
            pre = await _mark_disruption_target(api, t, pre)
        await delete_object(api, t.info, t.namespace, t.name, grace=int(grace) if grace is not None else None,
                            propagation=opts.get("propagationPolicy"), preconditions=pre or None, dry=dry)

    done = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    for attempt in range(EVICTION_RETRIES):
        pod, _ = await api.store.get(t.info, t.namespace, t.name)
        if not disruption.can_ignore_budget(pod):
            break
        # finished, pending or terminating: deleted without the budgets (a pending pod only in the
        # version read, so that it cannot have become Ready meanwhile; a conflict reads it again)
        pre = dict(given)
        if disruption.enforce_resource_version(pod) and rv_unset:
            pre["resourceVersion"] = pod["metadata"]["resourceVersion"]
        try:
            await delete(pre)
        except errors.ApiError as e:
            if e.code == 409 and rv_unset and attempt + 1 < EVICTION_RETRIES:
                continue
            raise
        return hc.json_response(done, status=201)
    pdb_info = api.registry.get("policy", "v1", "poddisruptionbudgets")
    pdbs = []
    if pdb_info is not None:
        entries, _ = (await api.caches.cache_for(pdb_info)).list(t.namespace)
        pdbs = [p for p in (e.obj() for e in entries) if disruption.guards(p, pod)]
    if len(pdbs) > 1:
        return hc.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": "This pod has more than one PodDisruptionBudget, which the eviction "
                                            "subresource does not support.", "code": 500}, status=500)
    pre, unhealthy = dict(given), False
    if pdbs:
        assert pdb_info is not None
        pdb = pdbs[0]
        if not disruption.is_ready(pod) and disruption.unhealthy_may_go(pdb):
            # not counted as healthy: it goes without spending a disruption, in the version judged
            unhealthy = True
            if rv_unset:
                pre["resourceVersion"] = pod["metadata"]["resourceVersion"]
        else:
            await _spend_disruption(api, pdb_info, pdb["metadata"]["name"], t.namespace or "", t.name, dry)
    try:
        await delete(pre)
    except errors.ApiError as e:
        if e.code == 409 and unhealthy and rv_unset:  # it changed since it was judged: retry later
            raise _refusal(disruption.processing_refusal(pdbs[0]["metadata"]["name"])) from None
        raise
    return hc.json_response(done, status=201)


def _refusal(r: disruption.EvictionRefused) -> errors.ApiError:
    details: dict[str, Any] = {}
    if r.code == 403:
        details = {"name": r.message.split('"')[1] if '"' in r.message else "", "group": "policy",
                   "kind": "poddisruptionbudget"}
    causes = [{"reason": "DisruptionBudget", "message": r.cause}] if r.cause else None
    return errors.ApiError(r.code, r.reason, r.message, details=details, causes=causes)


async def _spend_disruption(api: Api, info: ResourceInfo, name: str, namespace: str, pod: str, dry: bool) -> None:
    """``checkAndDecrement`` on the budget's current version (a CAS write of its status,
    retried on conflicts, each try re-checked), or only the check for a dry run."""
    if dry:
        current, _ = await api.store.get(info, namespace, name)
        try:
            disruption.check_and_decrement(current, pod, time.time(), dry=True)
        except disruption.EvictionRefused as r:
            raise _refusal(r) from None
        return

    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        try:
            return disruption.check_and_decrement(current, pod, time.time(), dry=False)
        except disruption.EvictionRefused as r:
            raise _refusal(r) from None

    await write_update(api, info, namespace, name, compute, subresource="status", strict=False, manager=None, dry=False)


async def _mark_disruption_target(api: Api, t: hc.Target, pre: dict[str, Any]) -> dict[str, Any]:
    """Give the pod the ``DisruptionTarget`` condition (its preconditions checked against the
    latest version); returns the preconditions with the resourceVersion of that write, so the
    delete that follows still names the version that was judged."""
    assert t.name

    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        md = current["metadata"]
        if pre.get("uid") and pre["uid"] != md.get("uid"):
            raise errors.conflict("pods", t.name or "", f'Precondition failed: UID in precondition: {pre["uid"]}, '
                                                        f'UID in object meta: {md.get("uid")}')
        if pre.get("resourceVersion") and str(pre["resourceVersion"]) != md.get("resourceVersion"):
            raise errors.conflict("pods", t.name or "", "Precondition failed: ResourceVersion in precondition: "
                                                        f'{pre["resourceVersion"]}, ResourceVersion in object meta: '
                                                        f'{md.get("resourceVersion")}')
        st = current.setdefault("status", {})
        conds = [c for c in st.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        old = next((c for c in st.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
        new = disruption.disruption_target(time.time())
        if old is not None and old.get("status") == new["status"]:
            new["lastTransitionTime"] = old.get("lastTransitionTime") or new["lastTransitionTime"]
        st["conditions"] = conds + [new]
        return current

    obj = await write_update(api, t.info, t.namespace, t.name, compute, subresource="status", strict=False,
                             manager=None, dry=False)
    if pre.get("resourceVersion"):
        pre = {**pre, "resourceVersion": obj["metadata"]["resourceVersion"]}
    return pre


# --- scale ------------------------------------------------------------------------------------

def to_scale(info: ResourceInfo, obj: dict[str, Any]) -> dict[str, Any]:
    """The ``autoscaling/v1`` Scale view of ``obj`` (paths and selector from its strategy)."""
    strategy = info.strategy
    spec_p, status_p = strategy.scale_paths(info)
    return scale_view(obj["metadata"], path_get(obj, spec_p), path_get(obj, status_p),
                      strategy.scale_selector(info, obj))


async def scale(api: Api, request: Request, t: hc.Target, verb: str) -> HTTPResponse:
    assert t.name
    info = t.info
    if verb == "get":
        obj, _ = await api.store.get(info, t.namespace, t.name)
        return hc.json_response(to_scale(info, obj))
    dry = hc.dry_run(request)
    manager = hc.field_manager(request)
    if verb == "update":
        body = hc.decode_body(request)
        ctype, raw = "", b""
    else:
        ctype = hc.media_type(request)
        if ctype not in hc.PATCH_TYPES or ctype.startswith("application/apply-patch"):
            raise errors.unsupported_media_type(ctype)
        raw, body = hc.raw_body(request), {}
    spec_p = info.strategy.scale_paths(info)[0]

    async def compute(current: dict[str, Any]) -> dict[str, Any]:
        sc = to_scale(info, current)
        if verb == "update":
            new_sc = body
        else:
            new_sc = apply_patch(sc, raw, ctype, ("autoscaling", "v1", "Scale"), is_custom=False)
        want_rv = parse_rv((new_sc.get("metadata") or {}).get("resourceVersion"))
        if want_rv and str(want_rv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(info.plural, t.name, "the object has been modified; please apply your "
                                  "changes to the latest version and try again", info.group)
        replicas = (new_sc.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", t.name, [{"reason": "FieldValueInvalid", "field": "spec.replicas",
                                                   "message": f"Invalid value: {replicas!r}: must be greater than or equal to 0"}],
                                 "autoscaling")
        path_set(current, spec_p, replicas)
        return current

    obj = await write_update(api, info, t.namespace, t.name, compute, subresource="scale", strict=False,
                             manager=manager, dry=dry)
    return hc.json_response(to_scale(info, obj))
