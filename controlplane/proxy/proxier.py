"""The service proxy of one node (our kube-proxy in nftables mode, plus the NetworkPolicy
enforcement k3s adds): informers on Services, EndpointSlices, NetworkPolicies, Pods and
Namespaces; every change marks what it touches dirty and wakes one sync loop.

A sync recomputes only the dirty Services' fragments (``rules.service_fragment``) and, when
policies/pods/namespaces changed, the policy fragments, then applies the difference as one
``nft -f`` transaction in the node's namespace (``rules.diff_script``). The first sync, any
failed one and every ``full_sync_period`` replace the whole table instead. An object that
cannot be turned into rules (``model.Unprogrammable``, or rules the kernel refuses — found by
checking each changed fragment alone with ``nft -c``) is logged, gets a Warning Event and is
left out; the rest is programmed. A small second table on the host maps 127.0.0.1's
NodePorts/LoadBalancer ports/hostPorts to the node and the host address's published ports to
loopback (``rules.host_script``); ports a host process already listens on are skipped (Event).
LoadBalancer Services with ``externalTrafficPolicy: Local`` get kube-proxy's health-check
server on their ``healthCheckNodePort`` (``healthcheck.py``), in the node's namespace and on
the host's 127.0.0.1 like a NodePort. Metrics use kube-proxy's names. Neighbours: ``model``/``rules``/``policy`` (pure),
``controlplane.network`` (names, addresses), the agent (runs it) or ``cmd/proxy.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from controlplane.client import resources as R
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer, object_key
from controlplane.client.rest import RestClient
from controlplane.log import get_logger
from controlplane.network import addressing as A
from controlplane.network.hostcmd import NETNS_DIR, CommandError, delete_table, netns_exists, nft
from controlplane.machinery.podresources import host_ports
from controlplane.proxy import model as M
from controlplane.proxy import policy as P
from controlplane.proxy import rules as RL
from controlplane.proxy.healthcheck import EVENT_REASON as HEALTHCHECK_FAILED
from controlplane.proxy.healthcheck import ServiceHealthServer
from controlplane.proxy.hostports import listening_ports

log = get_logger(__name__)
TRIGGER_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"
BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30)
HEALTH_TIMEOUT = 60.0  # a change waiting longer than this makes the proxy unhealthy (kube-proxy: 2 x 30 s)


@dataclass
class ProxyConfig:
    node: str
    nets: A.ClusterNetworks
    iid: str  # the node's instance id (names of the namespace, link and tables)
    pod_cidr: str
    min_sync_interval: float = 0.02
    full_sync_period: float = 3600.0
    program_host: bool = True

    @property
    def table(self) -> str:
        return A.proxy_table_name(self.iid)

    @property
    def netns(self) -> str:
        return A.netns_name(self.iid)

    @property
    def addrs(self) -> A.NodeAddresses:
        return A.NodeAddresses.parse(self.pod_cidr)


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.sync = Histogram("kubeproxy_sync_proxy_rules_duration_seconds", "SyncProxyRules latency",
                              buckets=BUCKETS, registry=r)
        self.full = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds", "Full sync latency",
                              buckets=BUCKETS, registry=r)
        self.partial = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds", "Partial sync latency",
                                 buckets=BUCKETS, registry=r)
        self.programming = Histogram("kubeproxy_network_programming_duration_seconds",
                                     "From an endpoints change to the rules programmed", buckets=BUCKETS, registry=r)
        self.last = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds", "Last successful sync", registry=r)
        self.failures = Counter("kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
                                "Failed nft transactions", registry=r)
        self.skipped = Gauge("kubeproxy_sync_proxy_rules_skipped_objects", "Objects left out (cannot be programmed)",
                             registry=r)


def _parse_time(s: str | None) -> float | None:
    if not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class Proxier:
    def __init__(self, client: RestClient, cfg: ProxyConfig, *, services: Informer | None = None,
                 pods: Informer | None = None, registry: CollectorRegistry | None = None,
                 recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.cfg = cfg
        self.ctx = RL.TableContext(cfg.table, cfg.node, cfg.nets)
        self.services = services or Informer(client, R.SERVICES)
        self.slices = Informer(client, R.ENDPOINTSLICES)
        self.policies = Informer(client, R.NETWORKPOLICIES)
        self.pods = pods or Informer(client, R.PODS)
        self.namespaces = Informer(client, R.NAMESPACES)
        self._own = [i for i, given in ((self.services, services), (self.slices, None), (self.policies, None),
                                        (self.pods, pods), (self.namespaces, None)) if given is None]
        self.slices.add_index("service", lambda o: [
            f"{o['metadata'].get('namespace')}/{(o['metadata'].get('labels') or {}).get(M.SERVICE_NAME_LABEL)}"]
            if (o["metadata"].get("labels") or {}).get(M.SERVICE_NAME_LABEL) else [])
        self.metrics = ProxyMetrics(registry)
        self.recorder = recorder or EventRecorder(client, "kube-proxy", host=cfg.node)
        self._own_recorder = recorder is None
        self.programmed: dict[str, RL.Fragment] = {}
        self.svc_fragments: dict[str, set[str]] = {}  # ns/name -> fragment keys
        self.dirty: set[str] = set()
        self.policy_dirty = True
        self.host_dirty = True
        self.need_full = True
        self.triggers: dict[str, float] = {}
        self.bad: dict[str, str] = {}  # object key -> why it is left out
        self.host_state: tuple | None = None
        self.busy_ports: dict[tuple[str, int], str] = {}  # host ports skipped because in use
        self.wake = asyncio.Event()
        self.synced = asyncio.Event()
        self.syncs = 0
        self.last_full = 0.0
        self.sync_ok = False  # the last sync succeeded
        self.pending_since: float | None = None  # oldest change not yet synced (monotonic)
        self.health_wanted: dict[str, tuple[int, int]] = {}  # ns/name -> (healthCheckNodePort, local endpoints)
        self.health = ServiceHealthServer(cfg.node, netns=str(NETNS_DIR / cfg.netns), proxy_healthy=self.healthy,
                                          on_failure=self._health_failed)
        self.services.add_handler(self._on_service)
        self.slices.add_handler(self._on_slice)
        self.policies.add_handler(lambda t, o, old: self._mark_policy())
        self.namespaces.add_handler(self._on_namespace)
        self.pods.add_handler(self._on_pod)

    # -- change tracking ---------------------------------------------------------------
    def _kick(self) -> None:
        if self.pending_since is None:
            self.pending_since = time.monotonic()
        self.wake.set()

    def healthy(self) -> bool:
        """kube-proxy's ``serviceProxyHealthy``: the last sync worked and no change has waited
        longer than ``HEALTH_TIMEOUT`` for one."""
        return self.sync_ok and (self.pending_since is None
                                 or time.monotonic() - self.pending_since < HEALTH_TIMEOUT)

    def _health_failed(self, key: str, message: str) -> None:
        self._event(self.services.get(key), HEALTHCHECK_FAILED, message)

    def _on_service(self, etype: str, svc: dict, old: dict | None) -> None:
        self.dirty.add(object_key(svc))
        self.host_dirty = True
        self._kick()

    def _on_slice(self, etype: str, sl: dict, old: dict | None) -> None:
        for o in (sl, old):
            if o is None:
                continue
            name = ((o.get("metadata") or {}).get("labels") or {}).get(M.SERVICE_NAME_LABEL)
            if name:
                key = f"{o['metadata'].get('namespace')}/{name}"
                self.dirty.add(key)
                t = _parse_time(((o.get("metadata") or {}).get("annotations") or {}).get(TRIGGER_ANNOTATION))
                if t is not None and o is sl:
                    self.triggers[key] = min(self.triggers.get(key, t), t)
            if ((o.get("metadata") or {}).get("labels") or {}).get(
                    "endpointslice.kubernetes.io/managed-by") == M.HOST_SERVICES_MANAGER:
                self.host_dirty = True
        self._kick()

    def _mark_policy(self) -> None:
        self.policy_dirty = True
        self._kick()

    def _on_namespace(self, etype: str, ns: dict, old: dict | None) -> None:
        if old is None or (old.get("metadata") or {}).get("labels") != (ns.get("metadata") or {}).get("labels") \
                or etype == "DELETED":
            self._mark_policy()

    def _on_pod(self, etype: str, pod: dict, old: dict | None) -> None:
        def sig(p: dict | None) -> Any:
            if p is None:
                return None
            md, st, sp = p.get("metadata") or {}, p.get("status") or {}, p.get("spec") or {}
            return (st.get("podIP"), st.get("phase"), md.get("labels"), sp.get("nodeName"),
                    [c.get("ports") for c in sp.get("containers") or []])
        if etype == "DELETED" or sig(pod) != sig(old):
            self.policy_dirty = True
            if (pod.get("spec") or {}).get("nodeName") == self.cfg.node:
                self.host_dirty = True
            self._kick()

    # -- run -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        tasks = [asyncio.create_task(i.start(stop), name=f"proxy-informer-{i.resource.plural}") for i in self._own]
        if self._own_recorder:
            tasks.append(asyncio.create_task(self.recorder.start(stop), name="proxy-recorder"))
        try:
            while not stop.is_set():
                if await self.services.wait_for_sync(1.0) and await self.slices.wait_for_sync(1.0):
                    break
            await self._loop(stop)
        finally:
            await self.health.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = 0.5
        while not stop.is_set():
            self.wake.clear()
            if time.monotonic() - self.last_full > self.cfg.full_sync_period:
                self.need_full = True
                self.host_dirty = True  # and look again at host ports that were busy
            try:
                await self.sync()
                backoff = 0.5
                wait = self.cfg.full_sync_period
            except Exception as e:  # noqa: BLE001 - log, count, retry with a full sync
                self.sync_ok = False
                self.metrics.failures.inc()
                log.error("proxy sync failed; retrying with a full sync", error=str(e), node=self.cfg.node)
                self.need_full = True
                wait, backoff = backoff, min(backoff * 2, 30.0)
            waker = asyncio.ensure_future(self.wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waker, stopper}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            waker.cancel()
            stopper.cancel()
            if self.cfg.min_sync_interval > 0 and not stop.is_set():
                await asyncio.sleep(self.cfg.min_sync_interval)  # coalesce bursts of events

    def request_full_sync(self) -> None:
        """Replace the whole table on the next sync (SIGHUP to the agent or proxy)."""
        self.need_full = True
        self._kick()

    async def cleanup(self) -> None:
        """Remove both tables (proxy stop)."""
        if netns_exists(self.cfg.netns):
            await delete_table("ip", self.cfg.table, self.cfg.netns)
        if self.cfg.program_host:
            await delete_table("ip", self.cfg.table)
        self.programmed.clear()
        self.host_state = None

    # -- sync ----------------------------------------------------------------------------
    def _event(self, obj: dict | None, reason: str, message: str) -> None:
        if obj is None:
            return
        try:
            self.recorder.event(obj, "Warning", reason, message)
        except Exception as e:  # noqa: BLE001 - events are best effort
            log.debug("event dropped", error=str(e))

    def _service_fragments(self, key: str) -> dict[str, RL.Fragment]:
        svc = self.services.get(key)
        self.bad.pop(key, None)
        if svc is None:
            return {}
        try:
            ports = M.service_ports(svc, self.slices.by_index("service", key))
            return {sp.key: RL.service_fragment(sp, self.ctx) for sp in ports}
        except (M.Unprogrammable, ValueError, KeyError, TypeError) as e:
            self.bad[key] = str(e)
            log.warning("service left out of the proxy rules", service=key, error=str(e))
            self._event(svc, "FailedToProgramService", f"kube-proxy on {self.cfg.node} cannot program it: {e}")
            return {}

    def _health_checks(self, keys: set[str]) -> None:
        for key in keys:
            svc = self.services.get(key)
            hc = M.health_check(svc, self.slices.by_index("service", key), self.cfg.node) if svc is not None else None
            if hc is None:
                self.health_wanted.pop(key, None)
            else:
                self.health_wanted[key] = hc

    def _policy_fragments(self) -> dict[str, RL.Fragment]:
        pods = [r for r in (P.pod_ref(p) for p in self.pods.list()) if r is not None]
        local_net = self.cfg.addrs.pod_cidr
        local = [r for r in pods if ipaddress.ip_address(r.ip) in local_net]
        nss = {(n.get("metadata") or {}).get("name"): (n.get("metadata") or {}).get("labels") or {}
               for n in self.namespaces.list()}
        a = self.cfg.addrs
        frags, bad = P.fragments(self.policies.list(), local, P.PolicyIndex(pods, nss),
                                 [str(a.gateway), str(a.node_link_address), str(a.host_link_address)])
        for k in [k for k in self.bad if k.startswith("networkpolicy/")]:
            if k[len("networkpolicy/"):] not in bad:
                del self.bad[k]
        for k, err in bad.items():
            if f"networkpolicy/{k}" not in self.bad:
                log.warning("network policy left out", policy=k, error=err)
                self._event(self.policies.get(k), "FailedToProgramPolicy",
                            f"kube-proxy on {self.cfg.node} cannot program it: {err}")
            self.bad[f"networkpolicy/{k}"] = err
        return frags

    async def sync(self) -> None:
        t0 = time.monotonic()
        full = self.need_full
        dirty, self.dirty = (set(self.services.keys()) | set(self.svc_fragments) | set(self.health_wanted)) \
            if full else self.dirty, set()
        self._health_checks(dirty)
        triggers, self.triggers = self.triggers, {}
        changes: dict[str, tuple[RL.Fragment | None, RL.Fragment | None]] = {}
        for key in dirty:
            new = self._service_fragments(key)
            for fk in self.svc_fragments.get(key, set()) | set(new):
                changes[fk] = (self.programmed.get(fk), new.get(fk))
            self.svc_fragments[key] = set(new)
            if not new:
                self.svc_fragments.pop(key, None)
        policy_ready = self.policies.has_synced() and self.pods.has_synced() and self.namespaces.has_synced()
        if (self.policy_dirty or full) and policy_ready:
            self.policy_dirty = False
            pol = self._policy_fragments()
            for fk in {k for k in self.programmed if k.startswith("policy/")} | set(pol):
                changes[fk] = (self.programmed.get(fk), pol.get(fk))
        if full:
            wanted = {k: v for k, v in self.programmed.items()}
            for fk, (_, new) in changes.items():
                if new is None:
                    wanted.pop(fk, None)
                else:
                    wanted[fk] = new
            await self._apply_full(wanted)
            self.need_full = False
            self.last_full = time.monotonic()
            self.metrics.full.observe(time.monotonic() - t0)
        else:
            changes = {k: v for k, v in changes.items() if v[0] != v[1]}
            if changes:
                await self._apply_partial(changes)
                self.metrics.partial.observe(time.monotonic() - t0)
        listening = self.health.ports()
        await self.health.sync(self.health_wanted)
        if self.health.ports() != listening:
            self.host_dirty = True
        if self.host_dirty and self.cfg.program_host:
            self.host_dirty = False
            await self._sync_host()
        now = time.time()
        for t in triggers.values():
            self.metrics.programming.observe(max(0.0, now - t))
        self.metrics.sync.observe(time.monotonic() - t0)
        self.metrics.last.set(now)
        self.metrics.skipped.set(len(self.bad))
        self.syncs += 1
        self.sync_ok = True
        self.pending_since = time.monotonic() if self.wake.is_set() else None  # (changes during the sync wait)
        self.synced.set()

    async def _apply_full(self, wanted: dict[str, RL.Fragment]) -> None:
        try:
            await nft(RL.full_script(self.ctx, wanted), netns=self.cfg.netns)
        except CommandError:
            # find the fragments the kernel refuses, one at a time, on an empty table of our own
            wanted = await self._drop_refused(wanted)
            await nft(RL.full_script(self.ctx, wanted), netns=self.cfg.netns)
        self.programmed = dict(wanted)
        log.info("proxy rules programmed (full)", fragments=len(wanted), node=self.cfg.node)

    async def _apply_partial(self, changes: dict[str, tuple[RL.Fragment | None, RL.Fragment | None]]) -> None:
        try:
            await nft(RL.diff_script(self.ctx, changes), netns=self.cfg.netns)
        except CommandError as e:
            self.metrics.failures.inc()
            log.warning("partial sync refused; checking each change", error=str(e)[:500])
            ok = {}
            for fk, ch in changes.items():
                try:
                    await nft(RL.diff_script(self.ctx, {fk: ch}), netns=self.cfg.netns, check_only=True)
                    ok[fk] = ch
                except CommandError as e2:
                    self._refused(fk, str(e2))
            await nft(RL.diff_script(self.ctx, ok), netns=self.cfg.netns)
            changes = ok
        for fk, (_, new) in changes.items():
            if new is None:
                self.programmed.pop(fk, None)
            else:
                self.programmed[fk] = new

    async def _drop_refused(self, wanted: dict[str, RL.Fragment]) -> dict[str, RL.Fragment]:
        ok: dict[str, RL.Fragment] = {}
        base = RL.full_script(self.ctx, {})
        for fk, fr in wanted.items():
            try:
                await nft(base + RL.diff_script(self.ctx, {fk: (None, fr)}), netns=self.cfg.netns, check_only=True)
                ok[fk] = fr
            except CommandError as e:
                self._refused(fk, str(e))
        return ok

    def _refused(self, fk: str, err: str) -> None:
        owner = fk.split("/")
        log.warning("rules refused by nftables; left out", fragment=fk, error=err[:500])
        if fk.startswith("policy/"):
            self.bad[fk] = err
            return
        key = f"{owner[0]}/{owner[1]}"
        self.bad[key] = err
        self._event(self.services.get(key), "FailedToProgramService",
                    f"kube-proxy on {self.cfg.node}: nftables refused the rules: {err[:300]}")

    # -- the host table ------------------------------------------------------------------
    async def _sync_host(self) -> None:
        wanted: set[tuple[str, int]] = set()
        owners: dict[tuple[str, int], dict] = {}
        for fr_key, fr in self.programmed.items():
            for k, v in fr.elements.get("node-ports", {}).items():
                proto, _, port = k.partition(" . ")
                wanted.add((proto, int(port)))
                ns, name = fr_key.split("/")[:2]
                svc = self.services.get(f"{ns}/{name}")
                if svc is not None:
                    owners[(proto, int(port))] = svc
        for key, port in self.health.ports().items():
            wanted.add(("tcp", port))
            svc = self.services.get(key)
            if svc is not None:
                owners[("tcp", port)] = svc
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != self.cfg.node or not (pod.get("status") or {}).get("podIP"):
                continue
            for p in host_ports(pod.get("spec") or {}):  # regular containers' and sidecars'
                key = (M.PROTOCOLS.get(p.get("protocol") or "TCP", "tcp"), int(p["hostPort"]))
                wanted.add(key)
                owners[key] = pod
        ours = set(self.host_state[0]) if self.host_state else set()
        busy = await asyncio.to_thread(listening_ports) - ours
        for key in sorted(wanted & busy):
            wanted.discard(key)
            if key not in self.busy_ports:
                msg = f"port {key[1]}/{key[0]} is in use on the host; not opened on 127.0.0.1"
                log.warning("host port in use; skipped", port=key[1], protocol=key[0])
                self._event(owners.get(key), "PortInUse", msg)
                self.busy_ports[key] = msg
        for key in [k for k in self.busy_ports if k not in busy]:
            del self.busy_ports[key]
        published = M.host_published_ports(self.slices.list(), str(self.cfg.nets.host_address))
        state = (frozenset(wanted), frozenset(published))
        if state == self.host_state:
            return
        a = self.cfg.addrs
        await nft(RL.host_script(self.cfg.table, A.host_link_name(self.cfg.iid), str(a.node_link_address),
                                 str(self.cfg.nets.host_address), wanted, published))
        self.host_state = state

