"""Where a watch may safely resume from, when writes can share a resourceVersion.

Our apiserver group-commits concurrent writes: the writes of one etcd transaction share its
revision, so one resourceVersion can carry several watch events (docs/apiserver.md, "Group
commit"). A watch resumed from the resourceVersion of the last event received gets only events
*after* it: if the stream broke after some of that revision's events (a connection cut in the
middle of a chunk, an apiserver worker killed), the rest would be skipped. The apiserver never
ends a stream inside a revision on its own, but a broken connection can.

So a client resumes from the last resourceVersion it knows to be complete: the one before the
revision it is in the middle of (a revision is complete once an event of a later one or a
BOOKMARK arrives), and the resumed stream's repeats of that revision's events already received
are dropped (a revision has at most one event per object). Against a kube-apiserver, where
every write has its own resourceVersion, this costs one repeated event per resume, dropped here.
ResourceVersions are only compared for equality (they stay opaque).

Used by ``informer.Informer`` and ``rest.RestClient.watch(resume=True)``.
"""

from __future__ import annotations


def event_key(obj: dict) -> str:
    """``namespace/name`` (``name`` for cluster-scoped objects)."""
    md = obj.get("metadata") or {}
    ns = md.get("namespace")
    return f"{ns}/{md.get('name')}" if ns else str(md.get("name"))


class ResumePoint:
    """``rv``: the resourceVersion to resume a watch from; ``event`` says which events to keep."""

    __slots__ = ("rv", "_cur", "_keys")

    def __init__(self, rv: str | None = None) -> None:
        self.rv = rv
        self._cur: str | None = None  # the revision whose events are arriving (maybe not all yet)
        self._keys: set[str] = set()  # objects of that revision already delivered

    def reset(self, rv: str | None) -> None:
        """A fresh start (after a list): resume from ``rv``."""
        self.rv, self._cur, self._keys = rv, None, set()

    def bookmark(self, rv: str | None) -> None:
        """Every event up to ``rv`` was delivered."""
        if rv:
            self.reset(rv)

    def event(self, rv: str | None, key: str) -> bool:
        """Record an ADDED/MODIFIED/DELETED event; False when it repeats one already delivered
        (a resumed stream replaying the revision it was cut in): drop it."""
        if not rv:
            return True
        if rv == self._cur:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True
        if self._cur is not None:
            self.rv = self._cur  # a later revision began: the previous one is complete
        self._cur, self._keys = rv, {key}
        return True
