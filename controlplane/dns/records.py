"""The cluster's DNS records, as CoreDNS's kubernetes plugin serves them — pure: a ``Snapshot``
built from Services, EndpointSlices and Namespaces, and ``answer(snapshot, name, type)``.

Names (zone ``cluster.local`` by default, TTL 5 s):
- ``svc.ns.svc.zone``: A = the cluster IP; headless Services: one A per ready endpoint (all
  endpoints with ``publishNotReadyAddresses``); ExternalName: a CNAME, followed for A/AAAA
  (inside the zone here, outside by the server through the upstream), as CoreDNS does;
- ``host.svc.ns.svc.zone``: the endpoint whose ``hostname`` is ``host`` (StatefulSet pods
  through ``hostname``/``subdomain``) or whose dashed IP is ``host`` (``10-42-3-7``);
- ``_port._proto.svc.ns.svc.zone``: SRV per named port (to the Service name, or to each
  endpoint's name for headless Services, with their A records as additional answers);
- ``a-b-c-d.ns.pod.zone``: A for that IP (CoreDNS's ``pods insecure``);
- PTR in the reverse zones of the service and cluster CIDRs: cluster IPs and the ready endpoint
  IPs of every Service (``hostname.svc.ns.svc.zone`` or ``a-b-c-d.svc.ns.svc.zone``);
- the zone's own records: ``NS`` at the apex naming ``ns.dns.zone``, whose A is the cluster
  IP of the DNS server's own Service (``kube-system/kube-dns``; the server's address when there
  is none, as CoreDNS falls back to its local IPs), and the TXT ``dns-version.zone`` = "1.1.0"
  (the DNS schema version, TTL 28800);
- a name inside the zones that does not exist: NXDOMAIN; one that exists without records of
  the asked type (AAAA of an IPv4 Service, an empty non-terminal): NOERROR and no answer, both
  with the zone's SOA as authority. Anything else is not ours (``Answer.forward``).
Neighbours: ``server.py`` (builds snapshots from informers, serves the wire format).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

TTL = 5
A, AAAA, CNAME, SRV, PTR, SOA, ANY, NS, TXT = "A", "AAAA", "CNAME", "SRV", "PTR", "SOA", "ANY", "NS", "TXT"
DNS_SCHEMA_VERSION = "1.1.0"  # the kubernetes plugin's DNSSchemaVersion (dns-version.<zone> TXT)
DNS_VERSION_TTL = 28800


@dataclass
class Record:
    name: str
    rtype: str
    data: tuple  # A: (ip,), CNAME/PTR/NS: (target,), SRV: (priority, weight, port, target), TXT: (text,)
    ttl: int = TTL


@dataclass
class Answer:
    rcode: str = "NOERROR"  # NOERROR | NXDOMAIN
    answers: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    authority_soa: str | None = None  # zone whose SOA goes in the authority section
    forward: bool = False  # not a cluster name: ask the upstream
    chase: str | None = None  # an ExternalName's target outside the zone: the server asks the upstream for it


@dataclass
class _Ep:
    ip: str
    hostname: str | None
    ready: bool


@dataclass
class _Svc:
    ns: str
    name: str
    cluster_ip: str | None
    headless: bool
    external_name: str | None
    publish_not_ready: bool
    ports: list[tuple[str, str, int]]  # (name, protocol lower, port)
    endpoints: list[_Ep] = field(default_factory=list)
    ep_ports: list[tuple[str, str, int]] = field(default_factory=list)  # from the slices


def _reverse_zone(net: ipaddress.IPv4Network) -> str:
    octets = str(net.network_address).split(".")[: max(1, net.prefixlen // 8)]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def dashed(ip: str) -> str:
    return ip.replace(".", "-")


class Snapshot:
    """An immutable view of the cluster for answering queries (rebuilt on changes)."""

    def __init__(self, services: list[dict], slices: list[dict], namespaces: list[str], domain: str = "cluster.local",
                 reverse_cidrs: list[str] | None = None, dns_service: tuple[str, str] | None = None,
                 local_ips: list[str] | None = None) -> None:
        self.domain = domain.strip(".").lower()
        self.namespaces = set(namespaces)
        self.services: dict[tuple[str, str], _Svc] = {}
        self.reverse_nets = [ipaddress.ip_network(c) for c in reverse_cidrs or []]
        self.reverse_zones = sorted({_reverse_zone(n) for n in self.reverse_nets}, key=len, reverse=True)
        for svc in services:
            md, spec = svc.get("metadata") or {}, svc.get("spec") or {}
            cip = spec.get("clusterIP")
            s = _Svc(md.get("namespace") or "default", md.get("name", ""),
                     cip if cip and cip != "None" else None, cip == "None",
                     spec.get("externalName") if spec.get("type") == "ExternalName" else None,
                     bool(spec.get("publishNotReadyAddresses")),
                     [(p.get("name") or "", (p.get("protocol") or "TCP").lower(), int(p.get("port") or 0))
                      for p in spec.get("ports") or []])
            self.services[(s.ns, s.name)] = s
            self.namespaces.add(s.ns)
        for sl in slices:
            md = sl.get("metadata") or {}
            svc_name = (md.get("labels") or {}).get("kubernetes.io/service-name")
            s = self.services.get((md.get("namespace") or "default", svc_name or ""))
            if s is None or (sl.get("addressType") or "IPv4") != "IPv4":
                continue
            for p in sl.get("ports") or []:
                if p.get("port") is not None:
                    t = (p.get("name") or "", (p.get("protocol") or "TCP").lower(), int(p["port"]))
                    if t not in s.ep_ports:
                        s.ep_ports.append(t)
            for ep in sl.get("endpoints") or []:
                cond = ep.get("conditions") or {}
                ready = cond.get("ready") is not False
                for addr in (ep.get("addresses") or [])[:1]:
                    s.endpoints.append(_Ep(addr, ep.get("hostname"), ready))
        own = self.services.get(dns_service) if dns_service else None
        self.ns_ips = [own.cluster_ip] if own is not None and own.cluster_ip else list(local_ips or [])
        self.by_ip: dict[str, list[str]] = {}
        for s in self.services.values():
            if s.cluster_ip:
                self.by_ip.setdefault(s.cluster_ip, []).append(f"{s.name}.{s.ns}.svc.{self.domain}")
            for e in self.visible(s):  # every Service's endpoints, as CoreDNS's serviceRecordForIP
                self.by_ip.setdefault(e.ip, []).append(f"{e.hostname or dashed(e.ip)}.{s.name}.{s.ns}.svc.{self.domain}")

    def zone_of(self, name: str) -> str | None:
        if name == self.domain or name.endswith("." + self.domain):
            return self.domain
        for z in self.reverse_zones:
            if name == z or name.endswith("." + z):
                return z
        return None

    def visible(self, s: _Svc) -> list[_Ep]:
        seen, out = set(), []
        for e in s.endpoints:
            if (e.ready or s.publish_not_ready) and e.ip not in seen:
                seen.add(e.ip)
                out.append(e)
        return out


def _nodata(zone: str) -> Answer:
    return Answer("NOERROR", authority_soa=zone)


def _nx(zone: str) -> Answer:
    return Answer("NXDOMAIN", authority_soa=zone)


MAX_CNAME_CHAIN = 8  # ExternalName -> ExternalName hops followed inside the zone


def answer(snap: Snapshot, qname: str, qtype: str, _depth: int = 0) -> Answer:
    name = qname.strip(".").lower()
    zone = snap.zone_of(name)
    if zone is None:
        return Answer(forward=True)
    if zone != snap.domain:
        return _reverse(snap, name, qtype, zone)
    labels = name[: -len(snap.domain)].rstrip(".").split(".") if name != snap.domain else []
    if qtype == SOA and not labels:
        return Answer(answers=[Record(snap.domain, SOA, ())])
    if not labels:
        return _apex_ns(snap) if qtype == NS else _nodata(zone)
    if labels == ["dns-version"]:
        if qtype != TXT:  # (not a Service or pod name: the kubernetes plugin's NXDOMAIN)
            return _nx(zone)
        return Answer(answers=[Record(name, TXT, (DNS_SCHEMA_VERSION,), DNS_VERSION_TTL)])
    if labels == ["ns", "dns"]:
        if qtype in (A, ANY) and snap.ns_ips:
            return Answer(answers=[Record(name, A, (ip,)) for ip in snap.ns_ips])
        return _nx(zone) if qtype == TXT else _nodata(zone)
    if labels[-1] == "svc":
        return _svc_name(snap, name, labels[:-1], qtype, zone, _depth)
    if labels[-1] == "pod":
        return _pod_name(snap, name, labels[:-1], qtype, zone)
    return _nx(zone)


def _apex_ns(snap: Snapshot) -> Answer:
    """CoreDNS's NS answer for the zone: ``ns.dns.<zone>``, its addresses as additional records."""
    if not snap.ns_ips:
        return _nodata(snap.domain)
    host = f"ns.dns.{snap.domain}"
    return Answer(answers=[Record(snap.domain, NS, (host + ".",))],
                  additional=[Record(host, A, (ip,)) for ip in snap.ns_ips])


def _pod_name(snap: Snapshot, name: str, labels: list[str], qtype: str, zone: str) -> Answer:
    if len(labels) == 1:
        return _nodata(zone) if labels[0] in snap.namespaces else _nx(zone)
    if len(labels) != 2 or labels[1] not in snap.namespaces:
        return _nx(zone) if labels else _nodata(zone)
    try:
        ip = ipaddress.ip_address(labels[0].replace("-", "."))
    except ValueError:
        return _nx(zone)
    if qtype in (A, ANY) and ip.version == 4:
        return Answer(answers=[Record(name, A, (str(ip),))])
    return _nodata(zone)


def _svc_name(snap: Snapshot, name: str, labels: list[str], qtype: str, zone: str, depth: int = 0) -> Answer:
    if not labels:
        return _nodata(zone)
    ns = labels[-1]
    if ns not in snap.namespaces:
        return _nx(zone)
    if len(labels) == 1:
        return _nodata(zone)
    svc = snap.services.get((ns, labels[-2]))
    if svc is None:
        return _nx(zone)
    base = f"{svc.name}.{svc.ns}.svc.{snap.domain}"
    rest = labels[:-2]
    if not rest:
        return _service_records(snap, svc, name, base, qtype, zone, depth)
    if len(rest) == 2 and rest[0].startswith("_") and rest[1].startswith("_"):
        return _srv(snap, svc, name, base, rest[0][1:], rest[1][1:], qtype, zone)
    if len(rest) == 1:
        eps = [e for e in snap.visible(svc) if (e.hostname or "").lower() == rest[0] or dashed(e.ip) == rest[0]]
        if not eps:
            return _nx(zone)
        if qtype in (A, ANY):
            return Answer(answers=[Record(name, A, (e.ip,)) for e in eps])
        return _nodata(zone)
    return _nx(zone)


def _service_records(snap: Snapshot, svc: _Svc, name: str, base: str, qtype: str, zone: str,
                     depth: int = 0) -> Answer:
    if svc.external_name:
        return _external_name(snap, svc.external_name.rstrip(".").lower(), name, qtype, depth)
    if qtype == SRV:
        return _srv_all(snap, svc, name, base)
    if qtype not in (A, ANY):
        return _nodata(zone)
    if svc.cluster_ip:
        return Answer(answers=[Record(name, A, (svc.cluster_ip,))])
    eps = snap.visible(svc)
    if not eps and svc.headless:
        return _nodata(zone)
    return Answer(answers=[Record(name, A, (e.ip,)) for e in eps])


def _external_name(snap: Snapshot, target: str, name: str, qtype: str, depth: int) -> Answer:
    """The CNAME, and for A/AAAA the target's records, as CoreDNS follows it: inside the zone
    here (a chain of ExternalNames up to ``MAX_CNAME_CHAIN``), outside through the upstream
    (``Answer.chase``). A stub resolver (glibc, musl, busybox) does not follow a bare CNAME."""
    out = Answer(answers=[Record(name, CNAME, (target + ".",))])
    if qtype not in (A, AAAA):
        return out
    if snap.zone_of(target) is None:
        out.chase = target
    elif depth < MAX_CNAME_CHAIN and target != name:
        sub = answer(snap, target, qtype, depth + 1)
        out.answers += sub.answers
        out.chase = sub.chase
    return out


def _srv_targets(snap: Snapshot, svc: _Svc, base: str, port_name: str, proto: str) -> tuple[list[Record], list[Record]]:
    out, extra = [], []
    if svc.headless:
        ports = [p for p in svc.ep_ports if p[0] == port_name and p[1] == proto]
        for e in snap.visible(svc):
            target = f"{e.hostname or dashed(e.ip)}.{base}"
            for p in ports:
                out.append(Record("", SRV, (0, 100, p[2], target + ".")))
            if ports:
                extra.append(Record(target, A, (e.ip,)))
    else:
        for p in svc.ports:
            if p[0] == port_name and p[1] == proto:
                out.append(Record("", SRV, (0, 100, p[2], base + ".")))
                if svc.cluster_ip:
                    extra.append(Record(base, A, (svc.cluster_ip,)))
    return out, extra


def _srv(snap: Snapshot, svc: _Svc, name: str, base: str, port_name: str, proto: str, qtype: str, zone: str) -> Answer:
    recs, extra = _srv_targets(snap, svc, base, port_name, proto)
    if not recs:
        return _nx(zone)
    if qtype not in (SRV, ANY):
        return _nodata(zone)
    for r in recs:
        r.name = name
    return Answer(answers=recs, additional=extra)


def _srv_all(snap: Snapshot, svc: _Svc, name: str, base: str) -> Answer:
    recs, extra = [], []
    for pname, proto, _ in (svc.ep_ports if svc.headless else svc.ports):
        if not pname:
            continue
        r, x = _srv_targets(snap, svc, base, pname, proto)
        recs += r
        extra += [e for e in x if e not in extra]
    for r in recs:
        r.name = name
    return Answer(answers=recs, additional=extra)


def _reverse(snap: Snapshot, name: str, qtype: str, zone: str) -> Answer:
    parts = name[: -len(".in-addr.arpa")].split(".") if name.endswith(".in-addr.arpa") else []
    if len(parts) != 4:
        return _nodata(zone)
    ip = ".".join(reversed(parts))
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return _nx(zone)
    if not any(addr in n for n in snap.reverse_nets):
        return Answer(forward=True)
    names = snap.by_ip.get(ip)
    if not names:
        return _nx(zone)
    if qtype not in (PTR, ANY):
        return _nodata(zone)
    return Answer(answers=[Record(name, PTR, (n + ".",)) for n in names])
