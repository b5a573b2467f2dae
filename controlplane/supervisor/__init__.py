"""Supervision of ``controlplane up``'s processes: restarts with backoff, no orphans, pidfiles.

``process`` runs one child (a ``python -m controlplane`` component, or etcd) behind the
``Runnable`` protocol; ``supervisor`` starts them in order, restarts them when they exit and
stops them in reverse. Starts components only as processes: it imports ``procutil``, ``log``,
``etcd_process`` and ``machinery``, never a component's internals (import-linter contract
``supervisor-processes-only``). Used by ``controlplane/cmd/up.py``; see docs/reliability.md.
"""
