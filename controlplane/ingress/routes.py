"""Which backend an HTTP request goes to, from the Ingresses of one class: the matching rules of
the Ingress specification (``networking.k8s.io/v1``), pure and table-tested.

- **Which Ingresses**: ``spec.ingressClassName`` naming the class, the legacy annotation
  ``kubernetes.io/ingress.class`` naming it, or neither while the class is the default one.
- **Hosts**: a rule's ``host`` matches the request's host (port stripped, case-insensitive)
  exactly; ``*.example.com`` matches one more leading label (``a.example.com``, not
  ``example.com`` nor ``a.b.example.com``); a rule without a host matches every host. Exact
  hosts are tried before wildcards, wildcards before host-less rules; the rules of every
  Ingress for one host are merged.
- **Paths**: ``Exact`` matches the path itself; ``Prefix`` (and ``ImplementationSpecific``,
  treated as Prefix) matches by ``/``-separated elements (``/foo`` matches ``/foo`` and
  ``/foo/bar``, not ``/foobar``; a trailing ``/`` is ignored). The longest matching path wins;
  on a tie Exact wins over Prefix, then the older Ingress.
- **Default backend**: the oldest ``spec.defaultBackend`` among the class's Ingresses.
- **TLS**: a host named in some ``spec.tls[].hosts`` is served with that entry's Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DEFAULT_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"
LEGACY_CLASS_ANNOTATION = "kubernetes.io/ingress.class"


@dataclass(frozen=True)
class Backend:
    """A Service backend: namespace, Service name, and its port by number or name."""

    namespace: str
    service: str
    port_number: int = 0
    port_name: str = ""
    ingress: str = ""  # namespace/name of the Ingress it came from


@dataclass(frozen=True)
class _Path:
    path: str
    exact: bool
    backend: Backend
    order: tuple  # (creationTimestamp, namespace/name, rule index, path index): the older first


@dataclass
class Table:
    """The routing table of one class."""

    hosts: dict[str, list[_Path]] = field(default_factory=dict)      # exact host -> paths
    wildcards: dict[str, list[_Path]] = field(default_factory=dict)  # suffix ("example.com") -> paths
    any_host: list[_Path] = field(default_factory=list)
    default: Backend | None = None
    tls: dict[str, tuple[str, str]] = field(default_factory=dict)    # host -> (namespace, secret)
    wildcard_tls: dict[str, tuple[str, str]] = field(default_factory=dict)

    def match(self, host: str, path: str) -> Backend | None:
        """The backend for a request (None: no rule and no default backend)."""
        host = normalize_host(host)
        candidates = []
        if host in self.hosts:
            candidates.append(self.hosts[host])
        label, dot, rest = host.partition(".")
        if dot and label and rest in self.wildcards:
            candidates.append(self.wildcards[rest])
        candidates.append(self.any_host)
        for paths in candidates:
            best = _best(paths, path or "/")
            if best is not None:
                return best.backend
        return self.default

    def secret_for(self, host: str) -> tuple[str, str] | None:
        host = normalize_host(host)
        if host in self.tls:
            return self.tls[host]
        _, dot, rest = host.partition(".")
        return self.wildcard_tls.get(rest) if dot else None


def normalize_host(host: str) -> str:
    host = (host or "").strip().lower()
    if host.startswith("["):  # [v6]:port
        return host.split("]")[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _elements(path: str) -> list[str]:
    return [p for p in path.split("/") if p]


def _matches(rule: _Path, path: str) -> bool:
    if rule.exact:
        return path == rule.path
    want = _elements(rule.path)
    return _elements(path)[: len(want)] == want


def _best(paths: list[_Path], path: str) -> _Path | None:
    best: _Path | None = None
    best_key: tuple | None = None
    for p in paths:
        if not _matches(p, path):
            continue
        key = (-len(p.path.rstrip("/") if not p.exact else p.path), 0 if p.exact else 1, p.order)
        if best_key is None or key < best_key:
            best, best_key = p, key
    return best


def is_ours(ing: dict, class_name: str, is_default: bool) -> bool:
    spec = ing.get("spec") or {}
    cls = spec.get("ingressClassName")
    if cls:
        return cls == class_name
    legacy = ((ing.get("metadata") or {}).get("annotations") or {}).get(LEGACY_CLASS_ANNOTATION)
    if legacy:
        return legacy == class_name
    return is_default


def _backend(ns: str, ingress: str, b: Any) -> Backend | None:
    svc = (b or {}).get("service") if isinstance(b, dict) else None
    if not isinstance(svc, dict) or not svc.get("name"):
        return None  # resource backends are not served
    port = svc.get("port") or {}
    return Backend(ns, svc["name"], int(port.get("number") or 0), str(port.get("name") or ""), ingress)


def build(ingresses: list[dict], class_name: str, is_default: bool) -> Table:
    """The table of the Ingresses of ``class_name``."""
    table = Table()
    ours = [i for i in ingresses if is_ours(i, class_name, is_default)]
    ours.sort(key=lambda i: ((i.get("metadata") or {}).get("creationTimestamp") or "",
                             f"{(i.get('metadata') or {}).get('namespace')}/{(i.get('metadata') or {}).get('name')}"))
    for ing in ours:
        md, spec = ing.get("metadata") or {}, ing.get("spec") or {}
        ns, key = md.get("namespace") or "default", f"{md.get('namespace')}/{md.get('name')}"
        if table.default is None and spec.get("defaultBackend") is not None:
            table.default = _backend(ns, key, spec["defaultBackend"])
        for tls in spec.get("tls") or []:
            if not isinstance(tls, dict) or not tls.get("secretName"):
                continue
            for h in tls.get("hosts") or []:
                h = normalize_host(h)
                target = table.wildcard_tls if h.startswith("*.") else table.tls
                target.setdefault(h[2:] if h.startswith("*.") else h, (ns, tls["secretName"]))
        for ri, rule in enumerate(spec.get("rules") or []):
            if not isinstance(rule, dict):
                continue
            host = normalize_host(rule.get("host") or "")
            if host.startswith("*."):
                bucket = table.wildcards.setdefault(host[2:], [])
            elif host:
                bucket = table.hosts.setdefault(host, [])
            else:
                bucket = table.any_host
            for pi, p in enumerate(((rule.get("http") or {}).get("paths")) or []):
                if not isinstance(p, dict):
                    continue
                b = _backend(ns, key, p.get("backend"))
                if b is None:
                    continue
                bucket.append(_Path(p.get("path") or "/", p.get("pathType") == "Exact", b,
                                    (md.get("creationTimestamp") or "", key, ri, pi)))
    return table
