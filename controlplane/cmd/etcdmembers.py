"""Removing the etcd member of a server that left the cluster, as k3s's etcd member and
metadata controllers do (``pkg/etcd/member_controller.go``, ``metadata_controller.go``);
docs/reliability.md, "HA". Used by ``cmd/up.py``; etcd is reached through
``storage.etcd_admin``, the API through ``controlplane.client``; neighbours: ``serverjoin``
(joining members), ``up.maintain_cluster`` (endpoints following the member list).

- ``ensure_node_metadata``: every server with an apiserver keeps its own Node (registered by
  its agent) labelled ``node-role.kubernetes.io/control-plane`` and ``.../etcd``, annotated with
  its member's name and address (``etcd.k3s.cattle.io/node-name``, ``.../node-address``) and
  holding the finalizer ``wrangler.cattle.io/managed-etcd-controller`` (k3s's name), so a
  deletion waits for the member's removal.
- ``MemberController``: on one server at a time (the Lease ``kube-system/controlplane-etcd``,
  k3s's ``k3s-etcd``), a level-based reconcile of every etcd Node: a Node being deleted, or
  annotated ``etcd.k3s.cattle.io/remove: "true"``, has its member removed (then the finalizer
  dropped, or ``etcd.k3s.cattle.io/removed-node-name`` recorded). ``decide`` is the pure rule:
  never the member this server runs (removed through its own etcd), never the last member,
  never when the voting members left would not have a quorum of started, reachable ones (a
  learner has no vote and may always go). A refusal is logged and posted as a Warning Event on
  the Node, and tried again on the next round.
- ``removed_from_cluster``: whether the cluster's member list (asked of the other members)
  still has this server's member; ``up`` refuses to start (or stops) when it does not: the
  server must be wiped and joined again, as in k3s.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from controlplane.client import resources
from controlplane.client.events import EventRecorder
from controlplane.client.informer import Informer, object_key
from controlplane.client.leaderelection import LeaderElectionConfig, LeaderElector
from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.log import get_logger
from controlplane.storage import etcd_admin
from controlplane.storage.etcd_admin import Member

log = get_logger(__name__)

ETCD_ROLE_LABEL = "node-role.kubernetes.io/etcd"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
NODE_NAME_ANNOTATION = "etcd.k3s.cattle.io/node-name"
NODE_ADDRESS_ANNOTATION = "etcd.k3s.cattle.io/node-address"
REMOVE_ANNOTATION = "etcd.k3s.cattle.io/remove"
REMOVED_ANNOTATION = "etcd.k3s.cattle.io/removed-node-name"
FINALIZER = "wrangler.cattle.io/managed-etcd-controller"
LEASE = "controlplane-etcd"
COMPONENT = "etcd-member-controller"
TRUE = {"1", "t", "T", "true", "TRUE", "True"}  # Go's strconv.ParseBool, as k3s reads the annotation

# decisions
NOTHING = "nothing"  # not an etcd Node, or nothing asked of it
REMOVE = "remove"  # remove the member, then finish
FINISH = "finish"  # the member is gone: drop the finalizer / record removed-node-name
WAIT = "wait"  # refused for now (Warning Event; tried again next round)


@dataclass(frozen=True)
class Decision:
    action: str
    member: Member | None = None
    reason: str = ""


def _peer_hosts(m: Member) -> set[str]:
    return {urlsplit(u).hostname or "" for u in m.peer_urls}


def find_member(members: list[Member], name: str, address: str = "") -> Member | None:
    """The member called ``name`` (with a peer URL on ``address`` when one is given, as k3s
    matches them)."""
    for m in members:
        if m.name == name and (not address or address in _peer_hosts(m)):
            return m
    return None


def decide(node: dict, members: list[Member], self_id: int | None, reachable: set[int]) -> Decision:
    """What to do with a server's Node, given the member list, the member this server runs
    (``self_id``) and the members that answered a status request (``reachable``)."""
    md = node.get("metadata") or {}
    labels, ann = md.get("labels") or {}, md.get("annotations") or {}
    if labels.get(ETCD_ROLE_LABEL) != "true":
        return Decision(NOTHING)
    deleting = bool(md.get("deletionTimestamp"))
    if deleting and FINALIZER not in (md.get("finalizers") or []):
        return Decision(NOTHING)
    if not deleting and ann.get(REMOVE_ANNOTATION) not in TRUE:
        return Decision(NOTHING)
    name = ann.get(NODE_NAME_ANNOTATION, "")
    if not name:
        return Decision(FINISH, reason="no etcd member recorded on the node") if deleting else \
            Decision(WAIT, reason=f"the node has no {NODE_NAME_ANNOTATION} annotation")
    if ann.get(REMOVED_ANNOTATION) == name:
        return Decision(FINISH, reason="already removed") if deleting else Decision(NOTHING)
    member = find_member(members, name, ann.get(NODE_ADDRESS_ANNOTATION, ""))
    if member is None:
        return Decision(FINISH, reason=f"etcd member {name} is not in the member list")
    if len(members) == 1:
        # the cluster itself: a deleted Node goes, the member stays
        return Decision(FINISH, member, f"etcd member {name} is the last member: kept") if deleting else \
            Decision(WAIT, member, f"etcd member {name} is the last member: never removed")
    if member.id == self_id:
        return Decision(WAIT, member, f"etcd member {name} is the one this server runs: another server removes it")
    if member.is_learner:
        return Decision(REMOVE, member, "a learner (no vote)")
    voters = [m for m in members if not m.is_learner and m.id != member.id]
    up = [m for m in voters if m.started and m.id in reachable]
    need = len(voters) // 2 + 1
    if len(up) < need:
        return Decision(WAIT, member, f"removing etcd member {name} would leave {len(up)} of {len(voters)} voting "
                                      f"members started and reachable; a quorum needs {need}")
    return Decision(REMOVE, member, f"{len(up)} of {len(voters)} voting members left started and reachable")


# -- this server's own Node ------------------------------------------------------------------

def node_metadata_patch(node: dict, member_name: str, address: str) -> dict | None:
    """The node with k3s's etcd labels, annotations and finalizer (None: already so). A new
    member name on the Node (the server was wiped and joined again) clears the remove
    annotations, which were about the old member."""
    md = node.get("metadata") or {}
    if md.get("deletionTimestamp"):
        return None  # no finalizer may be added to a Node being deleted
    labels, ann = md.get("labels") or {}, md.get("annotations") or {}
    fins = md.get("finalizers") or []
    if (labels.get(ETCD_ROLE_LABEL) == "true" and labels.get(CONTROL_PLANE_LABEL) == "true"
            and ann.get(NODE_NAME_ANNOTATION) == member_name and ann.get(NODE_ADDRESS_ANNOTATION) == address
            and FINALIZER in fins):
        return None
    out = copy.deepcopy(node)
    omd = out["metadata"]
    omd.setdefault("labels", {}).update({ETCD_ROLE_LABEL: "true", CONTROL_PLANE_LABEL: "true"})
    oann = omd.setdefault("annotations", {})
    if oann.get(NODE_NAME_ANNOTATION) not in (None, member_name):
        oann.pop(REMOVE_ANNOTATION, None)
        oann.pop(REMOVED_ANNOTATION, None)
    oann.update({NODE_NAME_ANNOTATION: member_name, NODE_ADDRESS_ANNOTATION: address})
    if FINALIZER not in fins:
        omd["finalizers"] = [*fins, FINALIZER]
    return out


async def ensure_node_metadata(kubeconfig: Path, node_name: str, member_name: str, address: str) -> bool:
    """Label, annotate and hold this server's Node when it exists; True when it was updated."""
    async with RestClient.from_kubeconfig(kubeconfig, user_agent="controlplane-up (etcd metadata)") as c:
        try:
            node = await c.get(resources.NODES, node_name)
        except ApiStatusError as e:
            if e.not_found:
                return False  # no agent here (yet): nothing to mark
            raise
        want = node_metadata_patch(node, member_name, address)
        if want is None:
            return False
        try:
            await c.update(resources.NODES, want)
        except ApiStatusError as e:
            if e.conflict:
                return False  # the agent's heartbeat won: the next round tries again
            raise
        log.info("server node marked as an etcd member", node=node_name, member=member_name)
        return True


async def removed_from_cluster(peers: list[str], tls: etcd_admin.TLS, peer_url: str, name: str) -> bool:
    """True when the other members answer and none of them lists this member (by peer URL, or
    by name once started); False when they list it or cannot be asked."""
    if not peers:
        return False
    try:
        mems = await etcd_admin.members(peers, tls, timeout=3.0)
    except etcd_admin.EtcdAdminError as e:
        log.info("could not ask the other etcd members whether this one is still listed", error=str(e))
        return False
    return not any(peer_url in m.peer_urls or (m.name and m.name == name) for m in mems)


# -- the controller ---------------------------------------------------------------------------

class MemberController:
    """Campaigns for ``kube-system/controlplane-etcd``; while leading, reconciles every etcd
    Node on each Node event and every ``resync`` seconds."""

    def __init__(self, kubeconfig: Path, local_endpoint: str, tls: etcd_admin.TLS, identity: str, *,
                 lease_duration: float = 15.0, renew_deadline: float = 10.0, retry_period: float = 2.0,
                 resync: float = 10.0) -> None:
        self.kubeconfig = kubeconfig
        self.local = local_endpoint
        self.tls = tls
        self.identity = identity
        self.le = LeaderElectionConfig(name=LEASE, identity=identity, lease_duration=lease_duration,
                                       renew_deadline=renew_deadline, retry_period=retry_period)
        self.resync = resync
        self._refused: dict[str, str] = {}  # node -> the last refusal reported (one Event per reason)

    async def run(self, stop: asyncio.Event) -> None:
        async with RestClient.from_kubeconfig(self.kubeconfig, discover=True,
                                              user_agent=f"controlplane-up ({COMPONENT})") as client:
            elector = LeaderElector(client, self.le)
            while not stop.is_set():
                try:
                    await elector.run(stop, lambda lost: self._lead(client, lost))
                except Exception as e:  # noqa: BLE001 - the apiserver unreachable: campaign again
                    log.warning("etcd member controller: leader election failed", error=str(e),
                                error_type=type(e).__name__)
                if not stop.is_set():
                    log.info("etcd member controller not leading; campaigning again")
                    try:
                        await asyncio.wait_for(stop.wait(), self.le.retry_period)
                    except asyncio.TimeoutError:
                        pass

    async def _lead(self, client: RestClient, lost: asyncio.Event) -> None:
        nodes = Informer(client, resources.NODES, label_selector=f"{ETCD_ROLE_LABEL}=true", indexes=False)
        wake = asyncio.Event()
        nodes.add_handler(lambda *_: wake.set())
        informer = asyncio.create_task(nodes.start(lost))
        recorder = EventRecorder(client, COMPONENT, host=self.identity)
        try:
            await nodes.wait_for_sync()
            while not lost.is_set():
                wake.clear()
                try:
                    await self.reconcile_all(client, recorder, nodes.list())
                except Exception as e:  # noqa: BLE001 - one bad round never ends the controller
                    log.warning("etcd member reconcile failed", error=str(e), error_type=type(e).__name__)
                waiter = asyncio.create_task(wake.wait())
                stopper = asyncio.create_task(lost.wait())
                try:
                    await asyncio.wait({waiter, stopper}, timeout=self.resync, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
                    await asyncio.gather(waiter, stopper, return_exceptions=True)
        finally:
            informer.cancel()
            await asyncio.gather(informer, return_exceptions=True)

    async def _reachable(self, members: list[Member]) -> set[int]:
        async def one(m: Member) -> int | None:
            for url in m.client_urls:
                try:
                    return (await etcd_admin.status(url, self.tls, timeout=2.0)).member_id
                except etcd_admin.EtcdAdminError:
                    continue
            return None
        return {i for i in await asyncio.gather(*(one(m) for m in members if m.started)) if i is not None}

    async def reconcile_all(self, client: RestClient, recorder: EventRecorder, nodes: list[dict]) -> None:
        wanted = [n for n in nodes if (n.get("metadata") or {}).get("deletionTimestamp")
                  or ((n.get("metadata") or {}).get("annotations") or {}).get(REMOVE_ANNOTATION) in TRUE]
        if not wanted:
            return
        me = await etcd_admin.status(self.local, self.tls)
        for node in wanted:
            # the member list again for each: a removal just made changes the next decision
            members = await etcd_admin.members([self.local], self.tls)
            await self.reconcile(client, recorder, node, decide(node, members, me.member_id,
                                                                await self._reachable(members)))

    async def reconcile(self, client: RestClient, recorder: EventRecorder, node: dict, d: Decision) -> None:
        name = object_key(node)
        if d.action == NOTHING:
            self._refused.pop(name, None)
            return
        if d.action == WAIT:
            if self._refused.get(name) != d.reason:
                self._refused[name] = d.reason
                log.warning("etcd member not removed", node=name, reason=d.reason)
                await _event(recorder, node, "Warning", "EtcdMemberRemovalRefused", d.reason)
            return
        self._refused.pop(name, None)
        if d.action == REMOVE and d.member is not None:
            m = d.member
            await etcd_admin.remove([self.local], self.tls, m.id)
            msg = f"Removed etcd member {m.name} ({m.id:x}, {', '.join(m.peer_urls)}) of node {name}: {d.reason}"
            log.info("etcd member removed", node=name, member=m.name, id=f"{m.id:x}", peer_urls=m.peer_urls)
            await _event(recorder, node, "Normal", "EtcdMemberRemoved", msg)
        elif d.reason:
            log.info("etcd member removal finished without a removal", node=name, reason=d.reason)
        await _finish(client, node)


async def _finish(client: RestClient, node: dict) -> None:
    """Deleting: drop the finalizer (the Node goes); annotated: record removed-node-name."""
    cur = copy.deepcopy(node)
    md = cur["metadata"]
    if md.get("deletionTimestamp"):
        md["finalizers"] = [f for f in md.get("finalizers") or [] if f != FINALIZER]
    else:
        md.setdefault("annotations", {})[REMOVED_ANNOTATION] = md["annotations"].get(NODE_NAME_ANNOTATION, "")
    try:
        await client.update(resources.NODES, cur)
    except ApiStatusError as e:
        if not (e.conflict or e.not_found):
            raise
        # a newer Node (the next round sees it; the member is gone by then) or none left


async def _event(recorder: EventRecorder, node: dict, etype: str, reason: str, message: str) -> None:
    try:
        await recorder.emit({**node, "kind": "Node", "apiVersion": "v1"}, etype, reason, message)
    except (ApiStatusError, OSError) as e:
        log.warning("event post failed", reason=reason, error=str(e))
