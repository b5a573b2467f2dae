"""Service environment variables, as the kubelet sets them (its envvars.go): for every
Service of the pod's namespace with a cluster IP (when ``enableServiceLinks`` is not false)
and always for ``default/kubernetes``:

    WEB_SERVICE_HOST=10.43.0.5      WEB_SERVICE_PORT=80       WEB_SERVICE_PORT_HTTP=80
    WEB_PORT=tcp://10.43.0.5:80     WEB_PORT_80_TCP=tcp://10.43.0.5:80
    WEB_PORT_80_TCP_PROTO=tcp       WEB_PORT_80_TCP_PORT=80   WEB_PORT_80_TCP_ADDR=10.43.0.5

Names are upper-cased with ``-`` → ``_``. The container's own ``env`` wins and may refer to
these with ``$(VAR)``. Caller: ``podconfig.PodConfig.env``; the Services come from the
agent's informer.
"""

from __future__ import annotations

from typing import Iterable

MASTER_SERVICES = {"kubernetes"}


def _name(s: str) -> str:
    return s.replace("-", "_").upper()


def _ip_set(svc: dict) -> bool:
    ip = (svc.get("spec") or {}).get("clusterIP")
    return bool(ip) and ip != "None"


def service_map(services: Iterable[dict], namespace: str, enable_links: bool) -> dict[str, dict]:
    """The Services whose variables a pod gets (kubelet's getServiceEnvVarMap)."""
    out: dict[str, dict] = {}
    for svc in services:
        md = svc.get("metadata") or {}
        if not _ip_set(svc):
            continue
        name = md.get("name", "")
        if md.get("namespace") == "default" and name in MASTER_SERVICES:
            out.setdefault(name, svc)
        elif md.get("namespace") == namespace and enable_links:
            out[name] = svc
    return out


def env_for(svc: dict) -> list[tuple[str, str]]:
    spec = svc.get("spec") or {}
    ports = spec.get("ports") or []
    ip = spec["clusterIP"]
    prefix = _name(svc["metadata"]["name"])
    out = [(f"{prefix}_SERVICE_HOST", ip)]
    if not ports:
        return out
    out.append((f"{prefix}_SERVICE_PORT", str(ports[0].get("port"))))
    for p in ports:
        if p.get("name"):
            out.append((f"{prefix}_SERVICE_PORT_{_name(p['name'])}", str(p.get("port"))))
    for i, p in enumerate(ports):
        proto = (p.get("protocol") or "TCP")
        hostport = f"{ip}:{p.get('port')}"
        if i == 0:
            out.append((f"{prefix}_PORT", f"{proto.lower()}://{hostport}"))
        pp = f"{prefix}_PORT_{p.get('port')}_{proto.upper()}"
        out += [(pp, f"{proto.lower()}://{hostport}"), (f"{pp}_PROTO", proto.lower()),
                (f"{pp}_PORT", str(p.get("port"))), (f"{pp}_ADDR", ip)]
    return out


def service_env(services: Iterable[dict], pod: dict) -> dict[str, str]:
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    links = (pod.get("spec") or {}).get("enableServiceLinks")
    chosen = service_map(services, ns, links is not False)
    env: dict[str, str] = {}
    for name in sorted(chosen):
        env.update(env_for(chosen[name]))
    return env
