"""Shared controller helpers: owner references, adopt/release (of pods, and of ControllerRevisions
as Kubernetes' ``ControllerRevisionControllerRefManager``), the pod-template hash,
creation/deletion expectations, building pods from a template, and the slow-start batches
in which ReplicaSets, Jobs and DaemonSets create their pods.

Expectations are how a controller avoids over-creating while its informer cache lags: before
creating N pods it records "expect N creations"; pod ADDED events observed by the informer
count them down; until they are satisfied (or 5 minutes pass) the controller does not act on
its possibly-stale view. Neighbours: ``replicaset``, ``deployment``, ``statefulset``,
``daemonset``, ``job`` (all of them), ``podutil`` (pod predicates).
"""

from __future__ import annotations

import asyncio
import copy
import json
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from controlplane.client.rest import ApiStatusError, RestClient
from controlplane.client.resources import Resource
from controlplane.client.retry import retry_on_conflict
from controlplane.controllers.podutil import is_terminating
from controlplane.machinery.selectors import LabelSelector

EXPECTATIONS_TTL_S = 300.0
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


# -- labels and selectors -------------------------------------------------------------------

def error_text(e: BaseException) -> str:
    """What Go's ``err.Error()`` of a client error says: an API error's Status message alone
    (``pods "x" is forbidden: …``), not our exception's ``403 Forbidden: `` prefix."""
    return e.message if isinstance(e, ApiStatusError) else str(e)


def selector_matcher(selector: dict | None) -> Callable[[dict], bool]:
    """A predicate on a labels dict for a LabelSelector dict; an empty/absent selector matches nothing."""
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return lambda labels: False
    return LabelSelector.from_dict(selector).matches


def labels_of(obj: dict) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# -- owner references -----------------------------------------------------------------------

def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: dict) -> dict:
    md = owner["metadata"]
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": md["name"], "uid": md["uid"],
            "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == (owner.get("metadata") or {}).get("uid")


async def claim(client: RestClient, res: Resource, owner: dict, candidates: list[dict],
                match: Callable[[dict], bool], owner_res: Resource) -> list[dict]:
    """``ControllerRefManager.ClaimPods``/``ClaimReplicaSets`` (``claim_objects``): keep owned
    matching objects, adopt matching orphans (unless the owner is being deleted, and only after
    a live GET of the owner, ``owner_res``, showed it with the same uid and not being deleted:
    ``RecheckDeletionTimestamp``), release owned objects that no longer match."""
    return await claim_objects(client, res, owner, candidates, match, owner_rechecker(client, owner_res, owner),
                               resource_version=True)


# -- hashing --------------------------------------------------------------------------------

def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """Kubernetes' rand.SafeEncodeString: no vowels, no confusable characters."""
    return "".join(SAFE_ALPHABET[ord(c) % len(SAFE_ALPHABET)] for c in s)


def compute_hash(template: dict, collision_count: int | None = None) -> str:
    """Stable pod-template hash (``pod-template-hash`` / ``controller-revision-hash``)."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":")).encode()
    if collision_count:
        data += str(collision_count).encode()
    return safe_encode(str(fnv32a(data)))


def template_without_hash(template: dict, label: str = "pod-template-hash") -> dict:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(label, None)
    return t


def _normalize(t: dict) -> dict:
    t = copy.deepcopy(t)
    md = t.setdefault("metadata", {})
    for k in ("labels", "annotations"):
        if not md.get(k):
            md.pop(k, None)
    md.pop("creationTimestamp", None)
    return t


def equal_ignore_hash(a: dict, b: dict, label: str = "pod-template-hash") -> bool:
    return _normalize(template_without_hash(a, label)) == _normalize(template_without_hash(b, label))


# -- pods from templates --------------------------------------------------------------------

def pod_from_template(template: dict, owner: dict, *, name: str | None = None,
                      generate_name: str | None = None, extra_labels: dict[str, str] | None = None) -> dict:
    tmd = template.get("metadata") or {}
    md: dict[str, Any] = {"namespace": owner["metadata"].get("namespace"),
                          "labels": {**(tmd.get("labels") or {}), **(extra_labels or {})},
                          "ownerReferences": [new_controller_ref(owner)]}
    if tmd.get("annotations"):
        md["annotations"] = dict(tmd["annotations"])
    if tmd.get("finalizers"):
        md["finalizers"] = list(tmd["finalizers"])
    if name:
        md["name"] = name
    else:
        md["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": copy.deepcopy(template.get("spec") or {})}


# -- slow-start batches ----------------------------------------------------------------------

SLOW_START_INITIAL_BATCH_SIZE = 1  # controller.SlowStartInitialBatchSize


def is_namespace_terminating(e: BaseException) -> bool:
    """``apierrors.HasStatusCause(err, NamespaceTerminatingCause)``: the NamespaceLifecycle
    refusal of a create in a terminating namespace (controllers ignore it: every later create
    would fail the same way and the namespace's objects are going anyway)."""
    if not isinstance(e, ApiStatusError):
        return False
    causes = (e.status.get("details") or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def slow_start_sizes(count: int, initial: int = SLOW_START_INITIAL_BATCH_SIZE) -> list[int]:
    """The batch sizes ``slowStartBatch`` uses for ``count`` calls when none fails: ``initial``,
    then doubling, the last one cut to what remains (pure)."""
    sizes, remaining, size = [], count, min(count, initial)
    while size > 0:
        sizes.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return sizes


@dataclass
class SlowStartOutcome:
    successes: int = 0
    errors: list[BaseException] = field(default_factory=list)
    skipped: int = 0  # calls never attempted: the batches after the first one with an error

    @property
    def unobserved(self) -> int:
        """The creations the informer will never see (failed or skipped): what the caller lowers
        its expectations by."""
        return len(self.errors) + self.skipped


async def slow_start_batch(count: int, fn: Callable[[int], Awaitable[Any]],
                           initial: int = SLOW_START_INITIAL_BATCH_SIZE) -> SlowStartOutcome:
    """kube-controller-manager's ``slowStartBatch``: call ``fn(i)`` for ``i`` in ``range(count)``
    in batches of ``initial``, doubling, each batch's calls concurrently, stopping after the
    first batch in which a call raised. A large number of creates that would all fail the same
    way (a quota, an admission webhook) so costs one request and one Event, not ``count``.
    ``fn`` swallows what is not an error (a create in a terminating namespace)."""
    out = SlowStartOutcome()
    pos = 0
    for size in slow_start_sizes(count, initial):
        results = await asyncio.gather(*(fn(i) for i in range(pos, pos + size)), return_exceptions=True)
        pos += size
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r  # cancelled: not a failed create
        errors = [r for r in results if isinstance(r, BaseException)]
        out.successes += size - len(errors)
        if errors:
            out.errors = errors
            out.skipped = count - pos
            break
    return out


# -- expectations ---------------------------------------------------------------------------

class Expectations:
    """UID-tracking controller expectations (client-go's ``UIDTrackingControllerExpectations``)."""

    def __init__(self, ttl: float = EXPECTATIONS_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._adds: dict[str, tuple[int, float]] = {}
        self._dels: dict[str, tuple[set[str], float]] = {}

    def expect_creations(self, key: str, n: int) -> None:
        self._adds[key] = (n, self.clock())

    def creation_observed(self, key: str) -> None:
        if key in self._adds:
            n, t = self._adds[key]
            self._adds[key] = (n - 1, t)

    def lower_expected_creations(self, key: str, n: int) -> None:
        for _ in range(n):
            self.creation_observed(key)

    def expect_deletions(self, key: str, uids: set[str]) -> None:
        self._dels[key] = (set(uids), self.clock())

    def deletion_observed(self, key: str, uid: str) -> None:
        if key in self._dels:
            self._dels[key][0].discard(uid)

    def observe_owned_pod(self, etype: str, pod: dict, old: dict | None, owner_kind: str) -> str | None:
        """Informer handler logic shared by pod-owning controllers: count an ADDED pod as an
        observed creation and a DELETED (or newly terminating) one as an observed deletion for
        its controller of ``owner_kind``; returns that owner's key (None if not ours)."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != owner_kind:
            return None
        key = f"{pod['metadata']['namespace']}/{ref['name']}"
        if etype == "ADDED":
            self.creation_observed(key)
        elif etype == "DELETED" or (is_terminating(pod) and not (old and is_terminating(old))):
            self.deletion_observed(key, pod["metadata"].get("uid", ""))
        return key

    def satisfied(self, key: str) -> bool:
        now = self.clock()
        adds = self._adds.get(key)
        dels = self._dels.get(key)
        if adds is None and dels is None:
            return True
        if adds is not None and adds[0] > 0 and now - adds[1] < self.ttl:
            return False
        if dels is not None and dels[0] and now - dels[1] < self.ttl:
            return False
        return True

    def pending(self, key: str) -> tuple[int, int]:
        adds = self._adds.get(key)
        dels = self._dels.get(key)
        return (max(adds[0], 0) if adds else 0, len(dels[0]) if dels else 0)

    def delete(self, key: str) -> None:
        self._adds.pop(key, None)
        self._dels.pop(key, None)


# -- controller history (ControllerRevisions of StatefulSets and DaemonSets) ------------------

REVISION_HASH_LABEL = "controller-revision-hash"
CONTROLLER_REVISIONS = Resource("apps", "v1", "controllerrevisions", "ControllerRevision")


def revision_data(template: dict) -> dict:
    """What a ControllerRevision keeps of its owner (``getPatch``): the pod template as a
    strategic merge patch that replaces it whole, which ``kubectl rollout undo`` sends back."""
    t = copy.deepcopy(template)
    t["$patch"] = "replace"
    return {"spec": {"template": t}}


def revision_template(revision: dict) -> dict | None:
    """The pod template a ControllerRevision holds (``ApplyRevision`` of ``revision_data``'s
    replace patch), or None when its data holds none."""
    t = (((revision.get("data") or {}).get("spec") or {}).get("template"))
    if not isinstance(t, dict):
        return None
    t = copy.deepcopy(t)
    t.pop("$patch", None)
    return t


def new_revision(owner: dict, name: str, hash_: str, data: dict, number: int) -> dict:
    """``history.NewControllerRevision``: labelled with the template's labels (so the owner's
    selector finds it) and the hash, annotated with the owner's annotations (``change-cause``),
    controlled by the owner."""
    md = owner["metadata"]
    labels = dict(((((owner.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {})
    labels[REVISION_HASH_LABEL] = hash_
    annotations = {k: v for k, v in (md.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    rev: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                           "metadata": {"name": name, "namespace": md.get("namespace"), "labels": labels,
                                        "ownerReferences": [new_controller_ref(owner)]},
                           "data": data, "revision": number}
    if annotations:
        rev["metadata"]["annotations"] = annotations
    return rev


def history_plan(revisions: list[dict], data: dict) -> tuple[str, dict | None, int]:
    """(action, the revision it concerns, the next revision number) for an owner whose template
    gives ``data``: ``keep`` the latest revision when it holds ``data``; ``bump`` an older equal
    revision to the next number (a rollback: the history moves it to the newest); ``create`` a
    new one otherwise (``getStatefulSetRevisions`` / the DaemonSet's ``constructHistory``)."""
    ordered = sorted(revisions, key=lambda r: (int(r.get("revision") or 0), r["metadata"].get("name", "")))
    nxt = (int(ordered[-1].get("revision") or 0) + 1) if ordered else 1
    equal = [r for r in ordered if r.get("data") == data]
    if equal and equal[-1] is ordered[-1]:
        return "keep", ordered[-1], nxt
    if equal:
        return "bump", equal[-1], nxt
    return "create", None, nxt


def history_to_prune(revisions: list[dict], live: set[str], limit: int) -> list[dict]:
    """``truncateHistory``: the oldest revisions that are not live (current, update, or a pod's)
    beyond ``limit``."""
    old = [r for r in sorted(revisions, key=lambda r: int(r.get("revision") or 0))
           if r["metadata"].get("name") not in live]
    return old[: max(0, len(old) - max(0, limit))]


async def sync_history(client: RestClient, owner: dict, revisions: list[dict], name: str, hash_: str,
                       data: dict) -> dict:
    """Make the owner's update revision exist and be the newest; returns it."""
    action, found, nxt = history_plan(revisions, data)
    if action == "keep":
        assert found is not None
        return found
    if action == "bump":
        assert found is not None
        bumped = copy.deepcopy(found)
        bumped["revision"] = nxt
        return await client.update(CONTROLLER_REVISIONS, bumped)
    rev = new_revision(owner, name, hash_, data, nxt)
    try:
        return await client.create(CONTROLLER_REVISIONS, rev, owner["metadata"].get("namespace"))
    except ApiStatusError as e:
        if not e.already_exists:
            raise
    # there already (our cache lags): ours when it holds the same data and we control it
    got = await client.get(CONTROLLER_REVISIONS, name, owner["metadata"].get("namespace"))
    if got.get("data") != data or not is_controlled_by(got, owner):
        raise ApiStatusError(409, "AlreadyExists", f"controllerrevision {name} exists with other data")
    if int(got.get("revision") or 0) < nxt - 1:
        got["revision"] = nxt
        got = await client.update(CONTROLLER_REVISIONS, got)
    return got


def claim_plan(owner: dict, candidates: list[dict],
               match: Callable[[dict], bool]) -> tuple[list[dict], list[dict], list[dict]]:
    """``ControllerRefManager.ClaimObject`` for each candidate, pure: (owned and matching: kept,
    orphans to adopt, owned but no longer matching: to release). Objects controlled by another
    owner are left alone; an owner being deleted neither adopts nor releases; an object being
    deleted is not adopted; ``match`` is the owner's selector on the object's labels."""
    md = owner["metadata"]
    uid, deleting = md.get("uid"), bool(md.get("deletionTimestamp"))
    keep: list[dict] = []
    adopt_: list[dict] = []
    release_: list[dict] = []
    for obj in candidates:
        omd = obj.get("metadata") or {}
        if omd.get("namespace") != md.get("namespace"):
            continue
        ref = controller_ref(obj)
        matches = match(labels_of(obj))
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches:
                keep.append(obj)
            elif not deleting:
                release_.append(obj)
        elif matches and not deleting and not omd.get("deletionTimestamp"):
            adopt_.append(obj)
    return keep, adopt_, release_


def adopt_patch(owner: dict, obj: dict, finalizers: tuple[str, ...] = (), *, resource_version: bool = False) -> dict:
    """``ownerRefControllerPatch``: a strategic merge patch adding the controller reference
    (ownerReferences merge on uid) and ``finalizers`` (a set-like list: merged), with the
    object's uid as a precondition (and, with ``resource_version``, the version it was read at:
    an adoption decided from a stale cache is a 409, not a second adoption)."""
    md: dict[str, Any] = {"ownerReferences": [new_controller_ref(owner)], "uid": obj["metadata"]["uid"]}
    if finalizers:
        md["finalizers"] = list(finalizers)
    if resource_version and obj["metadata"].get("resourceVersion"):
        md["resourceVersion"] = obj["metadata"]["resourceVersion"]
    return {"metadata": md}


def release_patch(owner_uid: str, obj: dict, finalizers: tuple[str, ...] = ()) -> dict:
    """``GenerateDeleteOwnerRefStrategicMergeBytes``: the reference to ``owner_uid`` deleted
    (and ``finalizers`` with ``$deleteFromPrimitiveList``), the object's uid as a
    precondition."""
    md: dict[str, Any] = {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": obj["metadata"]["uid"]}
    if finalizers:
        md["$deleteFromPrimitiveList/finalizers"] = list(finalizers)
    return {"metadata": md}


async def claim_objects(client: RestClient, res: Resource, owner: dict, candidates: list[dict],
                        match: Callable[[dict], bool], can_adopt: Callable[[], Awaitable[None]], *,
                        finalizers: tuple[str, ...] = (), resource_version: bool = False) -> list[dict]:
    """``ControllerRefManager.ClaimObject`` over ``candidates`` (the owner's namespace's): the
    objects the owner controls and its selector matches, after adopting matching orphans and
    releasing owned ones its selector no longer matches (``claim_plan``); an adopted object is
    returned as patched. ``finalizers`` are added on adoption and removed on release (the Job
    controller's ``batch.kubernetes.io/job-tracking``). ``can_adopt`` re-checks the owner once
    before the first adoption (``RecheckDeletionTimestamp``; it raises when the owner is gone
    or being deleted). An object that vanished (or whose uid changed, on release) is skipped;
    other failures are raised after the rest were tried (the caller is requeued)."""
    keep, to_adopt, to_release = claim_plan(owner, candidates, match)
    uid = owner["metadata"]["uid"]
    errors: list[Exception] = []
    for obj in to_release:
        md = obj["metadata"]
        try:
            await client.patch(res, md["name"], release_patch(uid, obj, finalizers), md.get("namespace"),
                               patch_type="strategic")
        except ApiStatusError as e:
            # gone, or its uid changed / no reference left (422, as ReleaseControllerRevision)
            if not (e.not_found or e.code == 422):
                errors.append(e)
    if to_adopt:
        try:
            await can_adopt()
        except Exception as e:  # noqa: BLE001 - the owner changed under us: adopt nothing
            errors.append(e)
            to_adopt = []
    for obj in to_adopt:
        md = obj["metadata"]
        try:
            keep.append(await client.patch(res, md["name"],
                                           adopt_patch(owner, obj, finalizers, resource_version=resource_version),
                                           md.get("namespace"), patch_type="strategic"))
        except ApiStatusError as e:
            if not e.not_found:
                errors.append(e)
    if errors:
        raise errors[0]
    return keep


async def claim_revisions(client: RestClient, owner: dict, candidates: list[dict], match: Callable[[dict], bool],
                          can_adopt: Callable[[], Awaitable[None]]) -> list[dict]:
    """``ClaimControllerRevisions``: ``claim_objects`` over ControllerRevisions."""
    return await claim_objects(client, CONTROLLER_REVISIONS, owner, candidates, match, can_adopt)


def revision_owner_keys(rev: dict, kind: str, owners: list[dict]) -> list[str]:
    """The keys of the owners of ``kind`` a ControllerRevision event concerns: its controller's,
    or for an orphan every owner in ``owners`` (its namespace's) whose selector matches it
    (the DaemonSet controller's ``getDaemonSetsForHistory``), which may adopt it."""
    md = rev.get("metadata") or {}
    ref = controller_ref(rev)
    if ref is not None:
        return [f"{md.get('namespace')}/{ref['name']}"] if ref.get("kind") == kind else []
    return [f"{md.get('namespace')}/{o['metadata']['name']}" for o in owners
            if selector_matcher((o.get("spec") or {}).get("selector"))(labels_of(rev))]


def owner_rechecker(client: RestClient, res: Resource, owner: dict) -> Callable[[], Awaitable[None]]:
    """``RecheckDeletionTimestamp`` over a live GET: raises unless the owner still exists with
    the same uid and is not being deleted."""
    md = owner["metadata"]

    async def check() -> None:
        fresh = await client.get(res, md["name"], md.get("namespace"))
        fmd = fresh.get("metadata") or {}
        if fmd.get("uid") != md.get("uid"):
            raise ApiStatusError(409, "Conflict", f"original {owner.get('kind')} {md.get('namespace')}/{md['name']} is "
                                                  f"gone: got uid {fmd.get('uid')}, wanted {md.get('uid')}")
        if fmd.get("deletionTimestamp"):
            raise ApiStatusError(409, "Conflict", f"{owner.get('kind')} {md.get('namespace')}/{md['name']} has just "
                                                  f"been deleted at {fmd['deletionTimestamp']}")
    return check


async def prune_history(client: RestClient, revisions: list[dict], live: set[str], limit: int) -> None:
    for r in history_to_prune(revisions, live, limit):
        try:
            await client.delete(CONTROLLER_REVISIONS, r["metadata"]["name"], r["metadata"].get("namespace"))
        except ApiStatusError as e:
            if not e.not_found:
                raise


async def remove_finalizer(client: RestClient, res: Resource, obj: dict, fin: str, *,
                           unless: Callable[[dict], bool] | None = None) -> bool:
    """Drop finalizer ``fin`` from ``obj`` (an update; on a conflict again from a fresh GET,
    unless ``unless`` holds for the fresh object). False when the object is gone; True when
    ``fin`` is no longer on it or ``unless`` kept it."""
    md = obj["metadata"]
    pending = [obj]  # the first try starts from the object we have, later ones from a GET

    async def attempt() -> None:
        fresh = not pending
        cur = pending.pop() if pending else await client.get(res, md["name"], md.get("namespace"))
        if fin not in (cur["metadata"].get("finalizers") or []):
            return
        if fresh and unless is not None and unless(cur):
            return
        cur = copy.deepcopy(cur)
        cur["metadata"]["finalizers"] = [f for f in cur["metadata"]["finalizers"] if f != fin]
        await client.update(res, cur)

    try:
        await retry_on_conflict(attempt)
    except ApiStatusError as e:
        if not e.not_found:
            raise
        return False
    return True
