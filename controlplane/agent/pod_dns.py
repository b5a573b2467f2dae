"""A pod's ``/etc/resolv.conf`` and ``/etc/hosts``, as the kubelet writes them (its dns.go and
managedHostsFileContent): pure functions of the pod spec and the node's settings.

``dnsPolicy``: ClusterFirst (the default; also ClusterFirstWithHostNet) → the cluster DNS
Service address, search ``<ns>.svc.<domain> svc.<domain> <domain>`` plus the host's search
domains, ``options ndots:5``; Default → the host's resolv.conf; None → only ``dnsConfig``.
``dnsConfig`` nameservers/searches are appended (deduplicated; at most 3 nameservers and 32
search domains), its options merged by name. Hosts: localhost lines, the pod's IP with its
FQDN (``hostname.subdomain.ns.svc.domain`` when ``subdomain`` is set) and hostname, then
``hostAliases``. Caller: ``pod_worker.PodWorker`` (sandbox creation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_NAMESERVERS = 3
MAX_SEARCH = 32


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [f"nameserver {n}" for n in self.nameservers]
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> ResolvConf:
    rc = ResolvConf()
    for line in text.splitlines():
        f = line.split("#", 1)[0].split(";", 1)[0].split()
        if not f:
            continue
        if f[0] == "nameserver" and len(f) > 1:
            rc.nameservers.append(f[1])
        elif f[0] in ("search", "domain"):
            rc.searches = f[1:] if f[0] == "search" else [f[1]] if len(f) > 1 else []
        elif f[0] == "options":
            rc.options.extend(f[1:])
    return rc


def _dedupe(items: list[str]) -> list[str]:
    seen, out = set(), []
    for i in items:
        if i and i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _merge_options(base: list[str], extra: list[dict]) -> list[str]:
    """Options by name; a later value replaces an earlier one (``ndots:2`` beats ``ndots:5``)."""
    merged: dict[str, str | None] = {}
    for o in base:
        name, _, val = o.partition(":")
        merged[name] = val if _ else None
    for o in extra:
        if not o.get("name"):
            continue
        merged[o["name"]] = o.get("value")
    return [f"{k}:{v}" if v not in (None, "") else k for k, v in merged.items()]


def resolv_conf(pod: dict, cluster_dns: list[str], domain: str, host: ResolvConf | None) -> ResolvConf:
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host = host or ResolvConf()
    if policy in ("ClusterFirst", "ClusterFirstWithHostNet") and cluster_dns:
        rc = ResolvConf(list(cluster_dns), [f"{ns}.svc.{domain}", f"svc.{domain}", domain] + host.searches,
                        ["ndots:5"])
    elif policy == "None":
        rc = ResolvConf()
    else:  # Default, or ClusterFirst without a cluster DNS
        rc = ResolvConf(list(host.nameservers), list(host.searches), list(host.options))
    cfg = spec.get("dnsConfig") or {}
    rc.nameservers = _dedupe(rc.nameservers + list(cfg.get("nameservers") or []))[:MAX_NAMESERVERS]
    rc.searches = _dedupe(rc.searches + list(cfg.get("searches") or []))[:MAX_SEARCH]
    rc.options = _merge_options(rc.options, list(cfg.get("options") or []))
    return rc


def pod_fqdn(pod: dict, domain: str) -> str | None:
    spec = pod.get("spec") or {}
    sub = spec.get("subdomain")
    if not sub:
        return None
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    host = spec.get("hostname") or (pod.get("metadata") or {}).get("name")
    return f"{host}.{sub}.{ns}.svc.{domain}"


def hosts_file(pod: dict, ip: str | None, hostname: str, domain: str) -> str:
    lines = ["# Kubernetes-managed hosts file.", "127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix", "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    if ip:
        fqdn = pod_fqdn(pod, domain)
        lines.append(f"{ip}\t{fqdn}\t{hostname}" if fqdn else f"{ip}\t{hostname}")
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if aliases:
        lines += ["", "# Entries added by HostAliases."]
        for a in aliases:
            if a.get("ip") and a.get("hostnames"):
                lines.append(f"{a['ip']}\t{chr(9).join(a['hostnames'])}")
    return "\n".join(lines) + "\n"
