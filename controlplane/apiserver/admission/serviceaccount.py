"""ServiceAccount (``plugin/pkg/admission/serviceaccount``): every pod runs as a ServiceAccount
that exists, and gets its API credentials as a projected volume.

On pod creation: ``serviceAccountName`` defaults to ``default``; the ServiceAccount must exist
(403 ``error looking up service account ns/name: serviceaccount "name" not found``; the
``default`` one is waited for ~1.5 s, as kube-apiserver retries, since the ServiceAccount
controller creates it right after its namespace); unless the pod or the ServiceAccount set
``automountServiceAccountToken: false``, a ``kube-api-access-<5 random chars>`` projected
volume (a bound token, ``expirationSeconds: 3607``, at ``token``; ``ca.crt`` from the
``kube-root-ca.crt`` ConfigMap; ``namespace`` from the downward API) is added and mounted
read-only at ``/var/run/secrets/kubernetes.io/serviceaccount`` in every container that does
not mount something there already; the ServiceAccount's ``imagePullSecrets`` are copied when
the pod names none. Mirror pods may not reference ServiceAccounts, Secrets or token
projections. The node agent fills the volume (docs/security.md).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from controlplane.apiserver.admission.attributes import CREATE, Attributes, forbidden
from controlplane.apiserver.admission.lookups import Lookups
from controlplane.apiserver.admission.plugin import Plugin
from controlplane.apiserver.discovery.registry import ResourceInfo

Obj = dict[str, Any]
DEFAULT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_EXPIRATION = 3607  # serviceaccount.WarnOnlyBoundTokenExpirationSeconds
MIRROR = "kubernetes.io/config.mirror"
_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet


def token_volume(name: str) -> Obj:
    return {"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}},
    ]}}


def should_automount(sa: Obj, pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    if spec.get("automountServiceAccountToken") is not None:
        return bool(spec["automountServiceAccountToken"])
    if sa.get("automountServiceAccountToken") is not None:
        return bool(sa["automountServiceAccountToken"])
    return True


def mount_token(pod: Obj, suffix: str | None = None) -> None:
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") if isinstance(spec.get("volumes"), list) else []
    name = next((v.get("name") for v in volumes if isinstance(v, dict)
                 and str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    has_volume = name is not None
    if name is None:
        name = VOLUME_PREFIX + (suffix or "".join(random.choice(_ALPHANUMS) for _ in range(5)))
    needed = False
    for key in ("initContainers", "containers"):
        for c in spec.get(key) or []:
            if not isinstance(c, dict):
                continue
            mounts = c.get("volumeMounts") if isinstance(c.get("volumeMounts"), list) else []
            if any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH for m in mounts):
                continue
            mounts.append({"name": name, "readOnly": True, "mountPath": MOUNT_PATH})
            c["volumeMounts"] = mounts
            needed = True
    if needed and not has_volume:
        volumes.append(token_volume(name))
        spec["volumes"] = volumes


def _secret_names(pod: Obj) -> bool:
    spec = pod.get("spec") or {}
    if spec.get("imagePullSecrets"):
        return True
    for v in spec.get("volumes") or []:
        if isinstance(v, dict) and (v.get("secret") or any(
                isinstance(s, dict) and s.get("secret") for s in (v.get("projected") or {}).get("sources") or [])):
            return True
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            for e in (c.get("env") or []) if isinstance(c, dict) else []:
                if isinstance(e, dict) and ((e.get("valueFrom") or {}).get("secretKeyRef")):
                    return True
            for e in (c.get("envFrom") or []) if isinstance(c, dict) else []:
                if isinstance(e, dict) and e.get("secretRef"):
                    return True
    return False


class ServiceAccount(Plugin):
    name = "ServiceAccount"
    mutates = True
    validates = True

    def __init__(self, lookups: Lookups, *, default_attempts: int = 10) -> None:
        self.lookups = lookups
        self.default_attempts = default_attempts

    def handles(self, info: ResourceInfo, subresource: str, operation: str) -> bool:
        return info.group == "" and info.plural == "pods" and not subresource and operation == CREATE

    async def _service_account(self, a: Attributes, name: str) -> Obj:
        sa = self.lookups.get("serviceaccounts", a.namespace, name)
        attempts = self.default_attempts if name == DEFAULT else 1
        for i in range(attempts):
            if sa is not None:
                return sa
            if i:
                await asyncio.sleep(random.uniform(0.1, 0.2))
            sa = await self.lookups.get_live("serviceaccounts", a.namespace, name)
        if sa is None:
            raise forbidden(a, f"error looking up service account {a.namespace}/{name}: "
                               f'serviceaccount "{name}" not found')
        return sa

    def _mirror(self, pod: Obj) -> bool:
        return MIRROR in (((pod.get("metadata") or {}).get("annotations")) or {})

    async def admit(self, a: Attributes) -> None:
        pod = a.obj
        if not isinstance(pod, dict) or self._mirror(pod):
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = spec.get("serviceAccount") or DEFAULT
        sa = await self._service_account(a, spec["serviceAccountName"])
        if should_automount(sa, pod):
            mount_token(pod)
        if not spec.get("imagePullSecrets") and sa.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in sa["imagePullSecrets"] if isinstance(s, dict)]

    async def validate(self, a: Attributes) -> None:
        pod = a.obj
        if not isinstance(pod, dict):
            return
        spec = pod.get("spec") or {}
        if self._mirror(pod):
            if spec.get("serviceAccountName"):
                raise forbidden(a, "a mirror pod may not reference service accounts")
            if _secret_names(pod):
                raise forbidden(a, "a mirror pod may not reference secrets")
            for v in spec.get("volumes") or []:
                for s in ((v.get("projected") or {}).get("sources") or []) if isinstance(v, dict) else []:
                    if isinstance(s, dict) and s.get("serviceAccountToken"):
                        raise forbidden(a, "a mirror pod may not use ServiceAccountToken volume projections")
            return
        name = spec.get("serviceAccountName")
        if not name:
            raise forbidden(a, f"no service account specified for pod {a.namespace}/{a.object_name()}")
        await self._service_account(a, name)
