"""Benchmark: per-call cost of the apiserver's defaulting + validation of built-in objects.

Times each kind's ``Strategy.default_and_validate`` (the strategy's defaults, then
``validation.objects.validate``) in-process over fresh copies of a small Pod, a ConfigMap with
a 1000-character value, a Deployment, a Service, a core/v1 Event and a Node; prints JSON with
the best per-call microseconds of several rounds (CPU time of this process, so that other load
on the machine inflates it less). Neighbours: ``controlplane/apiserver/strategy/``,
``controlplane/apiserver/validation/``. Run: ``python -m controlplane.bench.validation [N]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Any

from controlplane.apiserver.patch import schema as patch_schema
from controlplane.apiserver.strategy.builtins import builtin_registry

OBJS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
 "pod": ("", "v1", "Pod", {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"bench"},"spec":{"schedulerName":"default-scheduler","containers":[{"name":"pause","image":"registry.k8s.io/pause:3.9","resources":{"requests":{"cpu":"100m","memory":"500Mi"}}}]}}),
 "configmap": ("", "v1", "ConfigMap", {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","namespace":"bench"},"data":{"key":"x"*1000}}),
 "deployment": ("apps", "v1", "Deployment", {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d","namespace":"bench","labels":{"app":"web"}},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}],"resources":{"requests":{"cpu":"250m","memory":"128Mi"},"limits":{"cpu":"1","memory":"256Mi"}}}]}}}}),
 "service": ("", "v1", "Service", {"apiVersion":"v1","kind":"Service","metadata":{"name":"svc","namespace":"bench"},"spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080}]}}),
 "event": ("", "v1", "Event", {"apiVersion":"v1","kind":"Event","metadata":{"name":"p.17a8b9c0d1e2f3a4","namespace":"bench"},"involvedObject":{"apiVersion":"v1","kind":"Pod","name":"p","namespace":"bench","uid":"0b9c5c8e-1111-2222-3333-444455556666","resourceVersion":"123"},"reason":"Scheduled","message":"Successfully assigned bench/p to node-1","source":{"component":"default-scheduler"},"firstTimestamp":"2026-11-22T17:00:00Z","lastTimestamp":"2026-11-22T17:00:00Z","count":1,"type":"Normal","reportingComponent":"default-scheduler","reportingInstance":"default-scheduler-1"}),
 "node": ("", "v1", "Node", {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1","labels":{"kubernetes.io/hostname":"node-1","kubernetes.io/os":"linux"}},"spec":{"podCIDR":"10.244.1.0/24"},"status":{"capacity":{"cpu":"8","memory":"32Gi","pods":"110","nvidia.com/gpu":"1"},"allocatable":{"cpu":"7800m","memory":"31Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":"2026-11-22T17:00:00Z","lastTransitionTime":"2026-11-22T17:00:00Z","reason":"KubeletReady","message":"kubelet is posting ready status"}],"addresses":[{"type":"InternalIP","address":"10.0.0.1"},{"type":"Hostname","address":"node-1"}],"nodeInfo":{"machineID":"m","systemUUID":"s","bootID":"b","kernelVersion":"6.1","osImage":"Linux","containerRuntimeVersion":"runc://1.1","kubeletVersion":"v1.32.0","kubeProxyVersion":"v1.32.0","operatingSystem":"linux","architecture":"amd64"}}}),
}


def measure(n: int, names: list[str], rounds: int = 20) -> dict[str, float]:
    reg = builtin_registry()
    patch_schema.preload()
    out: dict[str, float] = {}
    for name in names:
        group, version, kind, obj = OBJS[name]
        info = reg.by_kind(group, version, kind)
        assert info is not None, (group, version, kind)
        info.strategy.default_and_validate(info, copy.deepcopy(obj), strict=False, old=None)
        copies = [copy.deepcopy(obj) for _ in range(n)]
        best = float("inf")
        for r in range(rounds):
            batch = copies[r * n // rounds:(r + 1) * n // rounds]
            t0 = time.process_time()
            for c in batch:
                info.strategy.default_and_validate(info, c, strict=False, old=None)
            best = min(best, (time.process_time() - t0) / len(batch))
        out[f"{name}_us"] = round(best * 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=4000, help="calls per kind")
    parser.add_argument("--kinds", nargs="*", default=list(OBJS), choices=list(OBJS))
    args = parser.parse_args()
    print(json.dumps(measure(args.n, args.kinds)))


if __name__ == "__main__":
    main()
