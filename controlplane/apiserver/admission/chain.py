"""The admission chain: every write (and every CONNECT: exec, attach, port-forward, proxy) passes
its plugins in Kubernetes' order once authorization allowed the verb.

Phases, as kube-apiserver runs them:
1. **mutating**: the mutating built-ins in plugin order (NamespaceLifecycle, LimitRanger,
   ServiceAccount, Priority, DefaultTolerationSeconds, DefaultStorageClass,
   StorageObjectInUseProtection, RuntimeClass, DefaultIngressClass), then
   MutatingAdmissionWebhook;
2. the strategy's defaults and **schema validation** (``strategy``/``validation``, called by
   the endpoint between the two phases);
3. **validating**: the validating built-ins (NamespaceLifecycle, LimitRanger, ServiceAccount,
   NodeRestriction, Priority, PodSecurity, PersistentVolumeClaimResize, RuntimeClass),
   ValidatingAdmissionPolicy, ValidatingAdmissionWebhook, and ResourceQuota last (only a request every other check let
   through is charged to a quota).

Cost when nothing applies: the plugins that concern a (group, resource, subresource,
operation) are computed once and kept (``_plans``); the state-dependent ones (webhooks,
policies, quotas) answer ``active(namespace)`` from an in-memory index before any attributes
are built. A ConfigMap create with no webhook, policy or quota in play costs a dict look-up and
three method calls.

Plugins can be switched with kube-apiserver's flags (``--enable-admission-plugins``,
``--disable-admission-plugins``); all of the above are on by default.
"""

from __future__ import annotations

from typing import Any, Iterable

from controlplane.apiserver.admission.attributes import CONNECT, CREATE, UPDATE, AdmissionHost, Attributes, make_attributes
from controlplane.apiserver.admission.defaultingressclass import DefaultIngressClass
from controlplane.apiserver.admission.defaulttolerationseconds import DefaultTolerationSeconds
from controlplane.apiserver.admission.limitranger import LimitRanger
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.namespacelifecycle import NamespaceLifecycle
from controlplane.apiserver.admission.noderestriction_plugin import NodeRestriction
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.admission.podsecurity.plugin import PodSecurity
from controlplane.apiserver.admission.policy import ValidatingAdmissionPolicy
from controlplane.apiserver.admission.priority import Priority
from controlplane.apiserver.admission.resourcequota import ResourceQuota
from controlplane.apiserver.admission.runtimeclass import RuntimeClass
from controlplane.apiserver.admission.serviceaccount import ServiceAccount
from controlplane.apiserver.admission.storage import (
    DefaultStorageClass, PersistentVolumeClaimResize, StorageObjectInUseProtection,
)
from controlplane.apiserver.admission.webhooks.plugin import MutatingWebhooks, ValidatingWebhooks, WebhookSource
from controlplane.apiserver.discovery.registry import ResourceInfo
from controlplane.apiserver.validation.objects import check_decodable

Obj = dict[str, Any]

# kube-apiserver's plugin order (pkg/kubeapiserver/options/plugins.go: AllOrderedPlugins)
ORDER = (
    "NamespaceLifecycle", "LimitRanger", "ServiceAccount", "NodeRestriction", "Priority",
    "DefaultTolerationSeconds", "PodSecurity", "DefaultStorageClass", "StorageObjectInUseProtection",
    "PersistentVolumeClaimResize", "RuntimeClass", "DefaultIngressClass", "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook", "ResourceQuota",
)
DEFAULT_ENABLED = ORDER


class AdmissionChain:
    def __init__(self, host: AdmissionHost, *, enabled: Iterable[str] | None = None,
                 disabled: Iterable[str] = ()) -> None:
        names = [*DEFAULT_ENABLED, *(enabled or ())]  # (kube-apiserver: enabled in addition to the defaults)
        unknown = [n for n in [*names, *disabled] if n not in ORDER]
        if unknown:
            raise ValueError(f"unknown admission plugin(s): {', '.join(unknown)} (known: {', '.join(ORDER)})")
        on = set(names) - set(disabled)
        self.host = host
        self.lookups = Lookups(host)
        self.webhooks = WebhookSource(host)
        makers = {
            "NamespaceLifecycle": lambda: NamespaceLifecycle(self.lookups),
            "LimitRanger": lambda: LimitRanger(self.lookups),
            "ServiceAccount": lambda: ServiceAccount(self.lookups),
            "NodeRestriction": NodeRestriction,
            "Priority": lambda: Priority(self.lookups),
            "DefaultTolerationSeconds": DefaultTolerationSeconds,
            "PodSecurity": lambda: PodSecurity(self.lookups),
            "DefaultStorageClass": lambda: DefaultStorageClass(self.lookups),
            "StorageObjectInUseProtection": StorageObjectInUseProtection,
            "PersistentVolumeClaimResize": lambda: PersistentVolumeClaimResize(self.lookups),
            "RuntimeClass": lambda: RuntimeClass(self.lookups),
            "DefaultIngressClass": lambda: DefaultIngressClass(self.lookups),
            "MutatingAdmissionWebhook": lambda: MutatingWebhooks(self.webhooks, self.lookups),
            "ValidatingAdmissionPolicy": lambda: ValidatingAdmissionPolicy(host, self.lookups),
            "ValidatingAdmissionWebhook": lambda: ValidatingWebhooks(self.webhooks, self.lookups),
            "ResourceQuota": lambda: ResourceQuota(host, self.lookups),
        }
        self.plugins: list[Plugin] = [makers[n]() for n in ORDER if n in on]
        self.enabled = [p.name for p in self.plugins]
        self._plans: dict[tuple[str, str, str, str], tuple[tuple[Plugin, ...], tuple[Plugin, ...]]] = {}

    async def start(self) -> None:
        await self.lookups.start()
        if any(p.name.endswith("AdmissionWebhook") for p in self.plugins):
            await self.webhooks.start()
        for p in self.plugins:
            await p.start()

    async def stop(self) -> None:
        for p in self.plugins:
            await p.stop()
        await self.webhooks.stop()

    def plan(self, info: ResourceInfo, subresource: str, operation: str) -> tuple[tuple[Plugin, ...], tuple[Plugin, ...]]:
        key = (info.group, info.plural, subresource, operation)
        plan = self._plans.get(key)
        if plan is None:
            mutators = tuple(p for p in self.plugins if p.mutates and p.handles(info, subresource, operation))
            validators = tuple(p for p in self.plugins if p.validates and p.handles(info, subresource, operation))
            plan = self._plans[key] = (mutators, validators)
        return plan

    def may_change(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        """Whether a mutating plugin may change objects of this kind of request."""
        return any(p.changes_objects for p in self.plan(info, subresource, operation)[0])

    def forget_plans(self) -> None:
        """Custom resources changed (a CRD came or went)."""
        self._plans.clear()

    async def mutate(self, operation: str, info: ResourceInfo, namespace: str | None, name: str | None,
                     obj: Obj | None, old: Obj | None, *, subresource: str = "", dry_run: bool = False,
                     options: Obj | None = None) -> Obj | None:
        """The mutating phase; returns the (possibly changed) object."""
        mutators = self.plan(info, subresource, operation)[0]
        if not mutators:
            return obj
        ns = namespace or ""
        a: Attributes | None = None
        for p in mutators:
            if not p.active(ns):
                continue
            if a is None:
                if obj is not None and operation in (CREATE, UPDATE) and subresource in ("", "status"):
                    # decoding comes before admission in Kubernetes: plugins read typed objects
                    check_decodable(obj, info.gvk)
                a = make_attributes(operation, info, namespace, name, obj, old, subresource=subresource,
                                    dry_run=dry_run, options=options)
            await p.admit(a)
        return a.obj if a is not None else obj

    async def validate(self, operation: str, info: ResourceInfo, namespace: str | None, name: str | None,
                       obj: Obj | None, old: Obj | None, *, subresource: str = "", dry_run: bool = False,
                       options: Obj | None = None) -> None:
        """The validating phase; raises ``ApiError`` when a plugin refuses."""
        validators = self.plan(info, subresource, operation)[1]
        if not validators:
            return
        ns = namespace or ""
        a: Attributes | None = None
        for p in validators:
            if not p.active(ns):
                continue
            if a is None:
                a = make_attributes(operation, info, namespace, name, obj, old, subresource=subresource,
                                    dry_run=dry_run, options=options)
            await p.validate(a)

    async def connect(self, info: ResourceInfo, namespace: str, name: str, subresource: str,
                      options: Obj) -> None:
        """CONNECT (exec, attach, portforward, proxy): both phases over the options object."""
        obj = await self.mutate(CONNECT, info, namespace, name, options, None, subresource=subresource)
        await self.validate(CONNECT, info, namespace, name, obj, None, subresource=subresource)
