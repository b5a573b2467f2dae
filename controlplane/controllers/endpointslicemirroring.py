"""EndpointSliceMirroring controller, as kube-controller-manager's ``endpointslicemirroring``:
the Endpoints of a Service without a selector (written by hand, e.g. pointing at a database
outside the cluster) mirrored into EndpointSlices, which the service proxy and the cluster DNS
read. Without it such a Service routes nowhere.

An Endpoints object is mirrored while its Service exists and has no selector, and it carries
neither ``endpointslice.kubernetes.io/skip-mirror: "true"`` (the Endpoints the ``endpoints``
controller and the apiserver write carry it) nor the leader-election annotation. Its subsets
are canonicalized first (Kubernetes' ``RepackSubsets``: the same ports merged, an address both
ready and not ready is ready), then each subset becomes the endpoints of the slices of its port
list: ``addresses`` ready, ``notReadyAddresses`` not, at most ``max_endpoints_per_subset``
(``--mirroring-max-endpoints-per-subset``, 1000) of them (the rest: a ``TooManyAddressesToMirror``
Warning), addresses a slice cannot hold skipped (``InvalidIPAddress``; IPv6 ones too, with
``UnsupportedAddressType``: this cluster is IPv4 only, as the proxy). Slices carry the
Endpoints' labels, ``kubernetes.io/service-name``, ``endpointslice.kubernetes.io/managed-by:
endpointslicemirroring-controller.k8s.io``, its annotations but the trigger time and
kubectl's last-applied configuration, and a controller reference to the Endpoints. One slice
per port list, rewritten in place when it changes (extra ones deleted; a slice to delete is
reused for one to create). The slices go when the Endpoints, or the Service goes, or the
Service gets a selector (then the ``endpointslice`` controller, which never touches slices
of this managed-by, takes over). Level-based, keyed by the Endpoints' namespace/name.
The pure logic is ``endpointslicemirroringutil``. Neighbours: ``endpointslice`` (selector
Services), ``endpoints``, the service proxy and the cluster DNS (readers).
"""

from __future__ import annotations

import time

from controlplane.client import resources as R
from controlplane.client.controller import Controller, Result, TerminalError
from controlplane.client.informer import object_key
from controlplane.client.manager import Manager
from controlplane.client.rest import ApiStatusError
from controlplane.controllers import endpointslicemirroringutil as mu
from controlplane.controllers.endpointslicemirroringutil import (
    CONTROLLER_NAME, MANAGED_BY, MAX_ENDPOINTS_PER_SUBSET, SERVICE_NAME, Desired, should_mirror,
)
from controlplane.log import get_logger

# the ServiceAccount (kube-system) it writes as with --use-service-account-credentials, as in
# kube-controller-manager; its ClusterRole is system:controller:endpointslicemirroring-controller (bootstrap_policy)
SERVICE_ACCOUNT = "endpointslicemirroring-controller"

log = get_logger(__name__)
INDEX = "endpointslicemirroring"


def _mirrored_index(sl: dict) -> list[str]:
    md = sl.get("metadata") or {}
    labels = md.get("labels") or {}
    if labels.get(MANAGED_BY) == CONTROLLER_NAME and labels.get(SERVICE_NAME):
        return [f"{md.get('namespace')}/{labels[SERVICE_NAME]}"]
    return []


class EndpointSliceMirroringController:
    def __init__(self, manager: Manager, *, workers: int = 5,
                 max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET) -> None:
        self.client = manager.client_for(SERVICE_ACCOUNT)
        self.max_endpoints_per_subset = max_endpoints_per_subset
        self.svc_inf = manager.informer(R.SERVICES)
        self.ep_inf = manager.informer(R.ENDPOINTS)
        self.slice_inf = manager.informer(R.ENDPOINTSLICES)
        self.slice_inf.add_index(INDEX, _mirrored_index)
        self.recorder = manager.recorder("endpoint-slice-mirroring-controller", SERVICE_ACCOUNT)
        # slices created that the cache has not shown yet (as the endpointslice controller)
        self._expect: dict[str, tuple[set[str], float]] = {}
        self.controller = Controller("endpointslicemirroring", self.reconcile, workers=workers)
        self.svc_inf.add_handler(lambda t, o, old: self.controller.enqueue(object_key(o)))
        self.ep_inf.add_handler(self._on_endpoints)
        self.slice_inf.add_handler(self._on_slice)
        manager.add(self.controller)

    def _on_endpoints(self, etype: str, ep: dict, old: dict | None) -> None:
        if etype == "DELETED" or should_mirror(ep) or (old is not None and should_mirror(old)):
            self.controller.enqueue(object_key(ep))

    def _on_slice(self, etype: str, sl: dict, old: dict | None) -> None:
        for key in set(_mirrored_index(sl)) | set(_mirrored_index(old) if old is not None else []):
            self.controller.enqueue(key)

    async def reconcile(self, key: str) -> Result | None:
        svc, ep = self.svc_inf.get(key), self.ep_inf.get(key)
        mirrored = self.slice_inf.by_index(INDEX, key)
        if svc is None or ep is None or not should_mirror(ep) or (svc.get("spec") or {}).get("selector"):
            for s in mirrored:
                await self._delete(ep, s)
            self._expect.pop(key, None)
            return None
        pending = self._expect.get(key)
        if pending is not None:
            names, since = pending
            ns = ep["metadata"].get("namespace")
            if any(self.slice_inf.get(f"{ns}/{n}") is None for n in names) and time.monotonic() - since < 5:
                return Result(requeue_after=0.05)
            del self._expect[key]
        d = mu.desired_endpoints(ep, self.max_endpoints_per_subset)
        self._warn(ep, d)
        pl = mu.plan(d.groups, mirrored)
        created = set()
        if not ep["metadata"].get("deletionTimestamp"):
            for ports, eps in pl.create:
                name = await self._write(ep, mu.build_slice(ep, ports, eps), create=True)
                if name is None:
                    return None
                created.add(name)
        if created:
            self._expect[key] = (created, time.monotonic())
        for s, ports, eps in pl.update:
            body = mu.build_slice(ep, ports, eps, s)
            if not mu.unchanged(s, body) and await self._write(ep, body, create=False) is None:
                return Result(requeue=True)
        for s in pl.delete:
            await self._delete(ep, s)
        return None

    def _warn(self, ep: dict, d: Desired) -> None:
        if d.invalid:
            self.recorder.event(ep, "Warning", "InvalidIPAddress",
                                f"Skipped {d.invalid} invalid IP addresses when mirroring to EndpointSlices")
        if d.ipv6:
            self.recorder.event(ep, "Warning", "UnsupportedAddressType",
                                f"Skipped {d.ipv6} IPv6 addresses when mirroring to EndpointSlices: "
                                "this cluster is IPv4 only")
        over = d.skipped - d.invalid - d.ipv6
        if over > 0:
            self.recorder.event(ep, "Warning", "TooManyAddressesToMirror",
                                f"A max of {self.max_endpoints_per_subset} addresses can be mirrored to EndpointSlices "
                                f"per Endpoints subset. {over} addresses were skipped")

    async def _write(self, ep: dict, body: dict, *, create: bool) -> str | None:
        """Create or update one slice; its name, or None when it must wait (a conflict, or the
        namespace terminating). A 422 is terminal: retrying the same Endpoints cannot help."""
        md = ep["metadata"]
        verb, reason = (("creating", "FailedToCreateEndpointSlice") if create
                        else ("updating", "FailedToUpdateEndpointSlice"))
        try:
            if create:
                out = await self.client.create(R.ENDPOINTSLICES, body, md.get("namespace"))
            else:
                out = await self.client.update(R.ENDPOINTSLICES, body)
            return out["metadata"]["name"]
        except ApiStatusError as e:
            if e.conflict or e.not_found:
                return None
            causes = (e.status.get("details") or {}).get("causes") or []
            if e.code == 403 and any(c.get("reason") == "NamespaceTerminating" for c in causes):
                return None
            self.recorder.event(ep, "Warning", reason, f"Error {verb} EndpointSlice for Endpoints "
                                                       f"{md.get('namespace')}/{md['name']}: {e.message}")
            if e.code == 422:
                raise TerminalError(str(e)) from e
            raise

    async def _delete(self, ep: dict | None, s: dict) -> None:
        md = s["metadata"]
        try:
            await self.client.delete(R.ENDPOINTSLICES, md["name"], md.get("namespace"))
        except ApiStatusError as e:
            if e.not_found:
                return
            if ep is not None:
                self.recorder.event(ep, "Warning", "FailedToDeleteEndpointSlice",
                                    f"Error deleting EndpointSlice {md['name']} for Endpoints "
                                    f"{md.get('namespace')}/{ep['metadata']['name']}: {e.message}")
            raise


def setup(manager: Manager, workers: int = 5, max_endpoints_per_subset: int = MAX_ENDPOINTS_PER_SUBSET,
          **_: object) -> EndpointSliceMirroringController:
    return EndpointSliceMirroringController(manager, workers=workers, max_endpoints_per_subset=max_endpoints_per_subset)
