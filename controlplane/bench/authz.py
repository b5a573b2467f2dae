"""``controlplane bench authz --bindings 10000``: the in-process RBAC authorizer's decisions
per second and latency with many RoleBindings (issue 14's target: >= 50,000/s, p99 <= 1 ms).

Builds an ``RBACStore`` with Kubernetes' bootstrap policy plus ``--bindings`` RoleBindings
(``--namespaces`` namespaces; each binding gives one user ``view``, ``edit`` or a Role of its
namespace; every tenth binds a group), then authorizes ``--requests`` random requests from
those users (their own namespace, another one, secrets, exec, ...) through the whole chain
(``system:masters`` short cut, Node authorizer, RBAC). Prints JSON: the decisions per second
and p50/p99 latency uncached (every decision walks the user's bindings through the subject
index) and cached (the per-user decision cache the apiserver uses, after one pass), how many
were allowed, and the time to index the bindings.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from controlplane.machinery.userinfo import UserInfo
from controlplane.apiserver.authorization import bootstrap_policy as bp
from controlplane.apiserver.authorization.attributes import Attributes
from controlplane.apiserver.authorization.chain import AuthorizerChain
from controlplane.apiserver.authorization.node import NodeAuthorizer, NodeGraph
from controlplane.apiserver.authorization.rbac import RBACAuthorizer, RBACStore


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("authz", help="RBAC authorizer decisions/s with many RoleBindings (in-process)")
    p.add_argument("--bindings", type=int, default=10_000)
    p.add_argument("--namespaces", type=int, default=1_000)
    p.add_argument("--requests", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=run)


REQUESTS = [("get", "", "pods", ""), ("list", "", "pods", ""), ("watch", "apps", "deployments", ""),
            ("create", "", "pods", ""), ("get", "", "secrets", ""), ("create", "", "pods", "exec"),
            ("update", "apps", "deployments", "scale"), ("get", "", "configmaps", ""),
            ("create", "rbac.authorization.k8s.io", "rolebindings", ""), ("get", "", "pods", "log")]


def build(bindings: int, namespaces: int, rng: random.Random) -> tuple[RBACStore, list[tuple[UserInfo, str]], float]:
    store = RBACStore()
    for kind, obj in bp.policy():
        store.apply(kind, obj)
    for n in range(namespaces):
        store.apply("Role", {"metadata": {"name": "cm-reader", "namespace": f"ns{n}"},
                             "rules": [bp.r(["get", "list"], [""], ["configmaps"])]})
    users: list[tuple[UserInfo, str]] = []
    t0 = time.perf_counter()
    for i in range(bindings):
        ns = f"ns{i % namespaces}"
        role_kind, role = rng.choice([("ClusterRole", "view"), ("ClusterRole", "edit"), ("Role", "cm-reader")])
        subj = bp.group(f"team{i}") if i % 10 == 0 else bp.user(f"user{i}")
        store.apply("RoleBinding", {"metadata": {"name": f"b{i}", "namespace": ns},
                                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                                "name": role}, "subjects": [subj]})
        user = UserInfo.make(f"member{i}", [f"team{i}"]) if i % 10 == 0 else UserInfo.make(f"user{i}")
        users.append((user, ns))
    return store, users, time.perf_counter() - t0


def _pct(v: list[float], q: float) -> float:
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else 0.0


def _measure(fn, reqs: list[Attributes]) -> tuple[float, float, float, int]:  # type: ignore[no-untyped-def]
    lat: list[float] = []
    allowed = 0
    clock = time.perf_counter
    t_start = clock()
    for a in reqs:
        t0 = clock()
        if fn(a).allowed:
            allowed += 1
        lat.append(clock() - t0)
    total = clock() - t_start
    return len(reqs) / total, _pct(lat, 0.5) * 1e3, _pct(lat, 0.99) * 1e3, allowed


def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    store, users, index_s = build(args.bindings, args.namespaces, rng)
    reqs: list[Attributes] = []
    for _ in range(args.requests):
        user, ns = rng.choice(users)
        if rng.random() < 0.2:
            ns = f"ns{rng.randrange(args.namespaces)}"
        verb, group, res, sub = rng.choice(REQUESTS)
        reqs.append(Attributes(user, verb, ns, group, "v1", res, sub, f"obj{rng.randrange(20)}"))
    rbac = RBACAuthorizer(store)
    uncached = AuthorizerChain([NodeAuthorizer(NodeGraph()), _Uncached(rbac)])
    cached = AuthorizerChain([NodeAuthorizer(NodeGraph()), rbac])
    u_rate, u_p50, u_p99, allowed = _measure(uncached.authorize, reqs)
    _measure(cached.authorize, reqs)  # warm the decision cache
    c_rate, c_p50, c_p99, _ = _measure(cached.authorize, reqs)
    print(json.dumps({
        "role_bindings": args.bindings, "namespaces": args.namespaces, "requests": args.requests,
        "allowed": allowed, "index_build_s": round(index_s, 3),
        "uncached_decisions_per_s": round(u_rate), "uncached_p50_ms": round(u_p50, 4),
        "uncached_p99_ms": round(u_p99, 4),
        "cached_decisions_per_s": round(c_rate), "cached_p50_ms": round(c_p50, 4), "cached_p99_ms": round(c_p99, 4),
    }))
    return 0


class _Uncached:
    def __init__(self, rbac: RBACAuthorizer) -> None:
        self.authorize = rbac.authorize_uncached
