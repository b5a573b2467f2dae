"""ServiceAccount tokens for projected volumes (the kubelet's token manager): the agent asks the
apiserver for a token bound to the pod (``TokenRequest`` on
``serviceaccounts/<name>/token`` with ``boundObjectRef`` = the pod) and writes it into the
volume; it asks again once 80% of the token's lifetime has passed (or after 24 h), so the
file a pod reads is always valid.

``TokenManager.get(pod, source)`` takes the pod and a ``serviceAccountToken`` projection
(``audience``, ``expirationSeconds`` >= 600, default 3600). As a node, the agent may only
request tokens for ServiceAccounts its own pods run as, bound to those pods (Node authorizer
and NodeRestriction). Neighbours: ``podconfig`` (writes the file), ``pod_worker``.
"""

from __future__ import annotations

import time
from typing import Any

from controlplane.client.rest import RestClient

MIN_EXPIRATION_S = 600
DEFAULT_EXPIRATION_S = 3600
MAX_REFRESH_S = 24 * 3600


class TokenError(Exception):
    pass


class TokenManager:
    def __init__(self, client: RestClient) -> None:
        self.client = client
        self._cache: dict[tuple[str, str, str, str, int], tuple[str, float, float]] = {}

    def _key(self, pod: dict[str, Any], source: dict[str, Any]) -> tuple[str, str, str, str, int]:
        md = pod.get("metadata") or {}
        sa = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        exp = max(MIN_EXPIRATION_S, int(source.get("expirationSeconds") or DEFAULT_EXPIRATION_S))
        return (md.get("namespace") or "default", sa, md.get("uid") or "", source.get("audience") or "", exp)

    async def get(self, pod: dict[str, Any], source: dict[str, Any]) -> str:
        key = self._key(pod, source)
        now = time.time()
        hit = self._cache.get(key)
        if hit is not None and now < hit[2]:
            return hit[0]
        ns, sa, uid, audience, exp = key
        md = pod.get("metadata") or {}
        body: dict[str, Any] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                "spec": {"expirationSeconds": exp,
                                         "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                            "name": md.get("name"), "uid": uid}}}
        if audience:
            body["spec"]["audiences"] = [audience]
        out = await self.client.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token", body=body)
        st = (out or {}).get("status") or {}
        token = st.get("token")
        if not token:
            raise TokenError(f"no token in the TokenRequest answer for {ns}/{sa}")
        lifetime = float(exp)
        refresh_at = now + min(0.8 * lifetime, MAX_REFRESH_S)
        self._cache[key] = (token, now + lifetime, refresh_at)
        return token

    def forget_pod(self, uid: str) -> None:
        for k in [k for k in self._cache if k[2] == uid]:
            del self._cache[k]
