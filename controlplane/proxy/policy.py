"""NetworkPolicy (``networking.k8s.io/v1``) as nftables rules in the proxy's table, enforced on
the node where the pod runs (as k3s's network policy controller does with kube-router).

Every pod on this node that a policy selects gets its own chain per direction, reached from
the maps ``pod-ingress`` (by destination IP) and ``pod-egress`` (by source IP) in the
``forward`` hook (bridged pod-to-pod traffic passes there too, through br_netfilter). A pod
chain accepts the pod itself and this node (gateway, link addresses: kubelet-style traffic),
then the rules of every policy that selects the pod — peers (podSelector, namespaceSelector,
both, ipBlock with except) and ports (number, range with endPort, named ports resolved on the
target pod for ingress and on the peer pods for egress) — and drops the rest: a pod selected
by any policy is default-deny in that direction. Established connections pass first. Egress
is checked after the Service DNAT, so it applies to the backend pod, as in Kubernetes.
Neighbours: ``rules.py`` (Fragment, the table), ``proxier.py`` (informers, sync).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable

from controlplane.machinery.selectors import LabelSelector
from controlplane.proxy.rules import Fragment, h8

PROTOCOLS = {"TCP": "tcp", "UDP": "udp", "SCTP": "sctp"}


@dataclass(frozen=True)
class PodRef:
    uid: str
    namespace: str
    name: str
    ip: str
    labels: dict
    ports: tuple[tuple[str, str, int], ...]  # (name, protocol, containerPort)


def pod_ref(pod: dict) -> PodRef | None:
    md, st = pod.get("metadata") or {}, pod.get("status") or {}
    ip = st.get("podIP")
    if not ip or st.get("phase") in ("Succeeded", "Failed"):
        return None
    try:
        if ipaddress.ip_address(ip).version != 4:
            return None
    except ValueError:
        return None
    ports = tuple((p.get("name") or "", p.get("protocol") or "TCP", int(p["containerPort"]))
                  for c in (pod.get("spec") or {}).get("containers") or [] for p in c.get("ports") or []
                  if p.get("containerPort"))
    return PodRef(md.get("uid", ""), md.get("namespace") or "default", md.get("name", ""), ip,
                  dict(md.get("labels") or {}), ports)


def _matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector where ``{}`` matches everything (NetworkPolicy semantics)."""
    if not selector or (not selector.get("matchLabels") and not selector.get("matchExpressions")):
        return True
    return LabelSelector.from_dict(selector).matches(labels)


class PolicyIndex:
    """The cluster state a policy is evaluated against."""

    def __init__(self, pods: Iterable[PodRef], namespaces: dict[str, dict]) -> None:
        self.pods = list(pods)
        self.namespaces = {n: {**(lbl or {}), "kubernetes.io/metadata.name": n} for n, lbl in namespaces.items()}

    def peer_pods(self, peer: dict, policy_ns: str) -> list[PodRef]:
        ps, nss = peer.get("podSelector"), peer.get("namespaceSelector")
        if nss is not None:
            ns_ok = {n for n, lbl in self.namespaces.items() if _matches(nss, lbl)}
            return [p for p in self.pods if p.namespace in ns_ok and _matches(ps, p.labels)]
        return [p for p in self.pods if p.namespace == policy_ns and _matches(ps, p.labels)]


def selects(policy: dict, pod: PodRef) -> bool:
    md = policy.get("metadata") or {}
    if (md.get("namespace") or "default") != pod.namespace:
        return False
    return _matches((policy.get("spec") or {}).get("podSelector"), pod.labels)


def policy_types(policy: dict) -> set[str]:
    spec = policy.get("spec") or {}
    if spec.get("policyTypes"):
        return set(spec["policyTypes"])
    return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}


def _ipset(ips: Iterable[str]) -> str:
    return "{ " + ", ".join(sorted(set(ips), key=lambda a: tuple(int(x) for x in a.split(".")))) + " }"


def _ipblock(block: dict, field: str) -> str | None:
    try:
        cidr = ipaddress.ip_network(block.get("cidr", ""), strict=False)
        exc = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]
    except ValueError:
        return None
    if cidr.version != 4:
        return None
    m = f"ip {field} {cidr}"
    exc = [e for e in exc if e.version == 4]
    if exc:
        m += " ip " + field + " != { " + ", ".join(str(e) for e in exc) + " }"
    return m


def _port_matches(ports: list[dict] | None, target: PodRef | None) -> list[str] | None:
    """Port match expressions (OR); [""] for any port; None when nothing can match. Named
    ports resolve on ``target`` (ingress); egress named ports are handled per peer."""
    if not ports:
        return [""]
    out = []
    for p in ports:
        proto = PROTOCOLS.get(p.get("protocol") or "TCP")
        if proto is None:
            continue
        port = p.get("port")
        if port is None:
            out.append(f"meta l4proto {proto}")
        elif isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
            end = p.get("endPort")
            out.append(f"{proto} dport {int(port)}-{int(end)}" if end else f"{proto} dport {int(port)}")
        elif target is not None:
            nums = sorted({n for name, pr, n in target.ports if name == port and PROTOCOLS.get(pr) == proto})
            out += [f"{proto} dport {n}" for n in nums]
    return out or None


def _ingress_rules(policy: dict, pod: PodRef, idx: PolicyIndex) -> list[str]:
    ns = (policy.get("metadata") or {}).get("namespace") or "default"
    out = []
    for rule in (policy.get("spec") or {}).get("ingress") or []:
        ports = _port_matches(rule.get("ports"), pod)
        if ports is None:
            continue
        peers: list[str] = []
        if not rule.get("from"):
            peers = [""]
        for peer in rule.get("from") or []:
            if "ipBlock" in peer:
                m = _ipblock(peer["ipBlock"], "saddr")
                if m:
                    peers.append(m)
                continue
            ips = [p.ip for p in idx.peer_pods(peer, ns)]
            if ips:
                peers.append(f"ip saddr {_ipset(ips)}")
        out += [f"{pe} {po} accept".strip() for pe in peers for po in ports]
    return out


def _egress_rules(policy: dict, idx: PolicyIndex) -> list[str]:
    ns = (policy.get("metadata") or {}).get("namespace") or "default"
    out = []
    for rule in (policy.get("spec") or {}).get("egress") or []:
        named = [p for p in rule.get("ports") or [] if isinstance(p.get("port"), str) and not p["port"].isdigit()]
        plain = [p for p in rule.get("ports") or [] if p not in named]
        ports = _port_matches(plain, None) if plain or not named else None
        targets: list[tuple[str, list[PodRef]]] = []  # (match, pods for named ports)
        if not rule.get("to"):
            targets.append(("", idx.pods))
        for peer in rule.get("to") or []:
            if "ipBlock" in peer:
                m = _ipblock(peer["ipBlock"], "daddr")
                if m:
                    targets.append((m, []))
                continue
            pods = idx.peer_pods(peer, ns)
            if pods:
                targets.append((f"ip daddr {_ipset(p.ip for p in pods)}", pods))
        for match, pods in targets:
            if ports is not None:
                out += [f"{match} {po} accept".strip() for po in ports]
            for np in named:
                proto = PROTOCOLS.get(np.get("protocol") or "TCP")
                pairs = sorted({f"{p.ip} . {n}" for p in pods for name, pr, n in p.ports
                                if name == np["port"] and PROTOCOLS.get(pr) == proto})
                if pairs:
                    out.append(f"ip daddr . {proto} dport {{ {', '.join(pairs)} }} accept")
    return out


def pod_chain(direction: str, pod: PodRef) -> str:
    return f"{'pin' if direction == 'in' else 'peg'}-{h8(pod.uid + direction)}-{pod.namespace}/{pod.name}"


def _key(p: dict) -> str:
    md = p.get("metadata") or {}
    return f"{md.get('namespace') or 'default'}/{md.get('name')}"


def fragments(policies: list[dict], local: list[PodRef], idx: PolicyIndex,
              node_addresses: list[str]) -> tuple[dict[str, Fragment], dict[str, str]]:
    """One fragment per local pod a policy selects (key ``policy/<uid>``), and the policies
    that could not be evaluated (``ns/name`` → error; they are left out)."""
    bad: dict[str, str] = {}
    good = []
    probe = PodRef("", "", "", "0.0.0.0", {}, ())
    for p in policies:  # a selector that does not parse fails here, not per pod
        try:
            _matches((p.get("spec") or {}).get("podSelector"), {})
            _egress_rules(p, idx)
            _ingress_rules(p, probe, idx)
            good.append(p)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            bad[_key(p)] = str(e) or type(e).__name__
    out: dict[str, Fragment] = {}
    allow_node = f"ip saddr {_ipset(node_addresses)} accept"
    for pod in local:
        sel = [p for p in good if selects(p, pod)]
        ing = [p for p in sel if "Ingress" in policy_types(p)]
        eg = [p for p in sel if "Egress" in policy_types(p)]
        if not ing and not eg:
            continue
        f = Fragment()
        if ing:
            name = pod_chain("in", pod)
            rules = [f"ip saddr {pod.ip} accept", allow_node]
            for p in sorted(ing, key=_key):
                rules += _ingress_rules(p, pod, idx)
            f.chains[name] = rules + ["counter drop"]
            f.element("pod-ingress", pod.ip, f"jump {name}")
        if eg:
            name = pod_chain("eg", pod)
            rules = []
            for p in sorted(eg, key=_key):
                rules += _egress_rules(p, idx)
            f.chains[name] = rules + ["counter drop"]
            f.element("pod-egress", pod.ip, f"jump {name}")
        out[f"policy/{pod.uid}"] = f
    return out, bad
