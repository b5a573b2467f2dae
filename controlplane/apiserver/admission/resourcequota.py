"""ResourceQuota (``plugin/pkg/admission/resourcequota``), the last validating plugin: a request
that would take a namespace's usage over one of its quotas is refused with Kubernetes' message
(``pods "p" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited:
pods=2``), and an admitted one is charged at once: the quota's ``status.used`` is raised by
the request's cost in the same compare-and-set loop that checked it, so two concurrent
creates can never both take the last unit. The quota controller
(``controllers/resourcequota.py``) recomputes ``status.used`` from the objects themselves and
corrects what a failed write charged.

As Kubernetes: only CREATE (and UPDATE of services) is charged; subresources and namespace
creation are ignored; a quota whose ``status`` the controller has not filled yet limits
nothing; ``status unknown for quota`` when its status lacks a quota'd resource; pods must
specify the compute resources a quota limits (``failed quota: q: must specify limits.cpu for:
c``). Dry runs are checked but charge nothing. Accounting: ``machinery.quota``.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, UPDATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.meta import errors
from controlplane.machinery import quota as q

Obj = dict[str, Any]


class _Refused(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


class ResourceQuota(Plugin):
    name = "ResourceQuota"
    validates = True

    def __init__(self, host: Any, lookups: Lookups) -> None:
        self.host = host
        self.lookups = lookups

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        if subresource or not info.namespaced:
            return False
        if operation == CREATE:
            return True
        return operation == UPDATE and info.group == "" and info.plural in ("services", "persistentvolumeclaims")

    def active(self, namespace: str) -> bool:
        return bool(namespace) and self.lookups.has_any_in("resourcequotas", namespace)

    def _delta(self, a: Attributes) -> q.ResourceList:
        obj = a.obj or {}
        delta = q.usage(a.info.group, a.info.plural, obj)
        negative = sorted(k for k, v in delta.items() if v < 0)
        if negative:
            raise forbidden(a, f"quota usage is negative for resource(s): {','.join(negative)}")
        if a.operation == UPDATE and a.old is not None:
            prev = q.usage(a.info.group, a.info.plural, a.old)
            delta = {k: max(v - prev.get(k, Fraction(0)), Fraction(0)) for k, v in delta.items()}
        return {k: v for k, v in delta.items() if v != 0}

    def _check(self, a: Attributes, quota: Obj, delta: q.ResourceList) -> dict[str, str] | None:
        """The quota's new ``status.used`` if the request fits (None: it does not concern this
        quota); raises ``_Refused`` with Kubernetes' message otherwise."""
        status = quota.get("status") or {}
        hard_raw, used_raw = status.get("hard") or {}, status.get("used") or {}
        name = quota["metadata"]["name"]
        restricted = q.matching_resources(a.info.group, a.info.plural, hard_raw)
        if not restricted:
            return None
        if a.info.group == "" and a.info.plural == "pods":
            msg = q.pod_constraints(restricted, a.obj or {})
            if msg:
                raise _Refused(f"failed quota: {name}: {msg}")
        missing = [r for r in restricted if r not in used_raw]
        if missing:
            raise _Refused(f"status unknown for quota: {name}, resources: {','.join(restricted)}")
        requested = {k: v for k, v in delta.items() if k in hard_raw}
        if not requested:
            return None
        hard, used = q.parse_list(hard_raw), q.parse_list(used_raw)
        exceeded = sorted(k for k, v in requested.items() if used.get(k, Fraction(0)) + v > hard[k])
        if exceeded:
            raise _Refused(f"exceeded quota: {name}, requested: {q.pretty({k: requested[k] for k in exceeded}, hard_raw)}, "
                           f"used: {q.pretty({k: used_raw.get(k, '0') for k in exceeded})}, "
                           f"limited: {q.pretty({k: hard_raw[k] for k in exceeded})}")
        new_used = dict(used_raw)
        for k, v in requested.items():
            new_used[k] = q.fmt_added(used.get(k, Fraction(0)) + v, used_raw.get(k), hard_raw.get(k))
        return new_used

    async def validate(self, a: Attributes) -> None:
        if a.info.group == "" and a.info.plural == "namespaces":
            return
        quotas = [x for x in self.lookups.list_in("resourcequotas", a.namespace)
                  if q.matches(x, a.info.group, a.info.plural, a.obj or {})]
        if not quotas:
            return
        delta = self._delta(a)
        if not delta:
            return
        try:
            for quota in quotas:
                if a.dry_run:
                    self._check(a, quota, delta)
                    continue
                await self._charge(a, quota, delta)
        except _Refused as e:
            raise forbidden(a, e.message) from None

    async def _charge(self, a: Attributes, quota: Obj, delta: q.ResourceList) -> None:
        """Check against the stored quota and raise its ``status.used`` in one compare-and-set."""
        if self._check(a, quota, delta) is None:
            return  # (the cached copy says this quota is not concerned; nothing to write)
        info = self.lookups.info("resourcequotas")

        async def charge(current: Obj) -> Obj | None:
            new_used = self._check(a, current, delta)
            if new_used is None:
                return None
            current.setdefault("status", {})["used"] = new_used
            return current

        try:
            await self.host.store.guaranteed_update(info, a.namespace, quota["metadata"]["name"], charge)
        except errors.ApiError as e:
            if e.code != 404:  # (the quota went away meanwhile: nothing to charge)
                raise
