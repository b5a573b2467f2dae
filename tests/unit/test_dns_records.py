"""Cluster DNS answers (pure ``records``) and the wire layer (``server``) on packed queries."""

from __future__ import annotations

import asyncio

import pytest
from dnslib import QTYPE, RCODE, RR, DNSRecord

from controlplane.dns import records as R
from controlplane.dns.server import DNSServer, question_key


def svc(name, ip, ns="default", ports=None, typ="ClusterIP", **spec):
    return {"metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": ip, "type": typ,
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}}


def sl(svc_name, eps, ns="default", port=8080, pname="http"):
    return {"metadata": {"name": f"{svc_name}-x", "namespace": ns, "labels": {"kubernetes.io/service-name": svc_name}},
            "addressType": "IPv4", "ports": [{"name": pname, "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready}, **({"hostname": h} if h else {})}
                          for ip, ready, h in eps]}


SERVICES = [svc("web", "10.71.0.5"), svc("db", "None"), svc("ext", None, typ="ExternalName", externalName="example.test"),
            svc("pnr", "None", publishNotReadyAddresses=True),
            svc("alias", None, typ="ExternalName", externalName="web.default.svc.cluster.local."),
            svc("alias2", None, typ="ExternalName", externalName="db.default.svc.cluster.local"),
            svc("loop", None, typ="ExternalName", externalName="loop.default.svc.cluster.local")]
SLICES = [sl("web", [("10.70.1.2", True, None)]),
          sl("db", [("10.70.1.7", True, "db-0"), ("10.70.2.8", True, "db-1"), ("10.70.2.9", False, "db-2")]),
          sl("pnr", [("10.70.1.5", False, None)])]
SNAP = R.Snapshot(SERVICES, SLICES, ["default", "kube-system"], "cluster.local", ["10.71.0.0/16", "10.70.0.0/16"])


def data(a: R.Answer) -> list:
    return sorted(r.data for r in a.answers)


@pytest.mark.parametrize("name,qtype,rcode,answers", [
    ("web.default.svc.cluster.local", "A", "NOERROR", [("10.71.0.5",)]),
    ("WEB.Default.svc.cluster.local.", "A", "NOERROR", [("10.71.0.5",)]),
    ("web.default.svc.cluster.local", "AAAA", "NOERROR", []),
    ("nope.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("web.nons.svc.cluster.local", "A", "NXDOMAIN", []),
    ("default.svc.cluster.local", "A", "NOERROR", []),
    ("db.default.svc.cluster.local", "A", "NOERROR", [("10.70.1.7",), ("10.70.2.8",)]),
    ("db-0.db.default.svc.cluster.local", "A", "NOERROR", [("10.70.1.7",)]),
    ("db-2.db.default.svc.cluster.local", "A", "NXDOMAIN", []),
    ("10-70-2-8.db.default.svc.cluster.local", "A", "NOERROR", [("10.70.2.8",)]),
    ("pnr.default.svc.cluster.local", "A", "NOERROR", [("10.70.1.5",)]),
    ("ext.default.svc.cluster.local", "A", "NOERROR", [("example.test.",)]),
    ("10-70-1-2.default.pod.cluster.local", "A", "NOERROR", [("10.70.1.2",)]),
    ("10-70-1-2.nons.pod.cluster.local", "A", "NXDOMAIN", []),
    ("something.cluster.local", "A", "NXDOMAIN", []),
], ids=lambda v: v if isinstance(v, str) else None)
def test_forward_names(name, qtype, rcode, answers):
    a = R.answer(SNAP, name, qtype)
    assert not a.forward and a.rcode == rcode and data(a) == answers
    if not answers:
        assert a.authority_soa == "cluster.local"


def test_srv_for_named_ports():
    a = R.answer(SNAP, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert data(a) == [(0, 100, 80, "web.default.svc.cluster.local.")]
    a = R.answer(SNAP, "_http._tcp.db.default.svc.cluster.local", "SRV")
    assert data(a) == [(0, 100, 8080, "db-0.db.default.svc.cluster.local."), (0, 100, 8080, "db-1.db.default.svc.cluster.local.")]
    assert sorted(r.data[0] for r in a.additional) == ["10.70.1.7", "10.70.2.8"]
    assert R.answer(SNAP, "_nope._tcp.web.default.svc.cluster.local", "SRV").rcode == "NXDOMAIN"
    assert len(R.answer(SNAP, "web.default.svc.cluster.local", "SRV").answers) == 1


@pytest.mark.parametrize("name,expected", [
    ("5.0.71.10.in-addr.arpa", ["web.default.svc.cluster.local."]),
    ("7.1.70.10.in-addr.arpa", ["db-0.db.default.svc.cluster.local."]),
    ("2.1.70.10.in-addr.arpa", ["10-70-1-2.web.default.svc.cluster.local."]),  # no hostname: the dashed IP
    ("9.2.70.10.in-addr.arpa", "NXDOMAIN"),  # a not-ready endpoint
    ("9.9.71.10.in-addr.arpa", "NXDOMAIN"),
    ("1.2.0.192.in-addr.arpa", "forward"),
])
def test_ptr(name, expected):
    a = R.answer(SNAP, name, "PTR")
    if expected == "forward":
        assert a.forward
    elif expected == "NXDOMAIN":
        assert a.rcode == "NXDOMAIN"
    else:
        assert [r.data[0] for r in a.answers] == expected


@pytest.mark.parametrize("name,qtype,want,chase", [
    ("alias.default.svc.cluster.local", "A", [("web.default.svc.cluster.local", "CNAME", "web.default.svc.cluster.local."),
                                             ("web.default.svc.cluster.local", "A", "10.71.0.5")], None),
    ("alias2.default.svc.cluster.local", "A", [("alias2.default.svc.cluster.local", "CNAME", "db.default.svc.cluster.local."),
                                              ("db.default.svc.cluster.local", "A", "10.70.1.7"),
                                              ("db.default.svc.cluster.local", "A", "10.70.2.8")], None),
    ("alias.default.svc.cluster.local", "AAAA", [("alias.default.svc.cluster.local", "CNAME",
                                                  "web.default.svc.cluster.local.")], None),
    ("alias.default.svc.cluster.local", "TXT", [("alias.default.svc.cluster.local", "CNAME",
                                                 "web.default.svc.cluster.local.")], None),
    ("ext.default.svc.cluster.local", "A", [("ext.default.svc.cluster.local", "CNAME", "example.test.")], "example.test"),
], ids=["to-service", "to-headless", "aaaa", "txt-no-chase", "outside-zone"])
def test_external_name_cname_is_followed(name, qtype, want, chase):
    a = R.answer(SNAP, name, qtype)
    got = [(r.name, r.rtype, r.data[0]) for r in a.answers]
    assert got[0] == (name, "CNAME", want[0][2])
    assert sorted(got[1:]) == sorted(want[1:]) and a.chase == chase and a.rcode == "NOERROR"


def test_external_name_loop_stops():
    a = R.answer(SNAP, "loop.default.svc.cluster.local", "A")
    assert 1 <= len(a.answers) <= R.MAX_CNAME_CHAIN + 1 and all(r.rtype == "CNAME" for r in a.answers)


async def test_server_follows_an_external_name_through_the_upstream():
    """The upstream (a loopback responder of the test) gives the target's records; the reply
    carries the CNAME and them, as CoreDNS's answer does."""
    loop = asyncio.get_running_loop()

    class Upstream(asyncio.DatagramProtocol):
        def connection_made(self, tr):
            self.tr = tr

        def datagram_received(self, d, addr):
            q = DNSRecord.parse(d)
            r = q.reply()
            if str(q.q.qname) == "example.test." and q.q.qtype == QTYPE.A:
                r.add_answer(*RR.fromZone("example.test. 30 IN A 192.0.2.44"))
            self.tr.sendto(r.pack(), addr)

    utr, _ = await loop.create_datagram_endpoint(Upstream, local_addr=("127.0.0.1", 0))
    srv = DNSServer(lambda: (SNAP, 3), upstreams=[("127.0.0.1", utr.get_extra_info("sockname")[1])], timeout=2)
    try:
        out = DNSRecord.parse(await srv.handle(_query("ext.default.svc.cluster.local")))
        assert [(QTYPE[r.rtype], str(r.rdata)) for r in out.rr] == [("CNAME", "example.test."), ("A", "192.0.2.44")]
        assert out.header.rcode == RCODE.NOERROR
    finally:
        await srv.stop()
        utr.close()


@pytest.mark.parametrize("name", ["example.test", "cluster.local.example.test", "localhost"])
def test_other_names_are_forwarded(name):
    assert R.answer(SNAP, name, "A").forward


def _query(name: str, qtype: str = "A", qid: int = 4242) -> bytes:
    q = DNSRecord.question(name, qtype)
    q.header.id = qid
    return q.pack()


async def test_server_answers_caches_and_forwards_failures():
    srv = DNSServer(lambda: (SNAP, 7), upstreams=[("127.0.0.1", 9)], timeout=0.3)  # port 9: nobody answers
    out = DNSRecord.parse(await srv.handle(_query("web.default.svc.cluster.local")))
    assert out.header.rcode == RCODE.NOERROR and str(out.rr[0].rdata) == "10.71.0.5" and out.header.aa
    # the second identical question is served from the cache, with the new query's ID
    hit = srv.answer_cached(_query("web.default.svc.cluster.local", qid=7))
    assert hit is not None and DNSRecord.parse(hit).header.id == 7 and str(DNSRecord.parse(hit).rr[0].rdata) == "10.71.0.5"
    nx = DNSRecord.parse(await srv.handle(_query("nope.default.svc.cluster.local")))
    assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth[0].rtype == QTYPE.SOA
    fwd = DNSRecord.parse(await srv.handle(_query("example.test")))
    assert fwd.header.rcode == RCODE.SERVFAIL and srv.failures == 1
    bad = await srv.handle(b"\x12\x34\x01\x00\x00\x01garbage")
    assert bad[:2] == b"\x12\x34" and bad[3] & 0x0F == RCODE.FORMERR
    await srv.stop()


def test_question_key_only_for_plain_queries():
    assert question_key(_query("a.b")) is not None
    resp = DNSRecord.parse(_query("a.b")).reply().pack()
    assert question_key(resp) is None  # a response is not a query
    assert question_key(b"\x00" * 5) is None


async def test_udp_and_tcp_on_one_port():
    srv = DNSServer(lambda: (SNAP, 1), upstreams=[])
    port = await srv.start("127.0.0.1", 0)
    try:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()

        class P(asyncio.DatagramProtocol):
            def datagram_received(self, d, a):
                fut.set_result(d)

        tr, _ = await loop.create_datagram_endpoint(P, remote_addr=("127.0.0.1", port))
        tr.sendto(_query("web.default.svc.cluster.local"))
        assert str(DNSRecord.parse(await asyncio.wait_for(fut, 5)).rr[0].rdata) == "10.71.0.5"
        tr.close()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        q = _query("db.default.svc.cluster.local")
        w.write(len(q).to_bytes(2, "big") + q)
        n = int.from_bytes(await r.readexactly(2), "big")
        assert len(DNSRecord.parse(await r.readexactly(n)).rr) == 2
        w.close()
    finally:
        await srv.stop()


ZONE_SNAP = R.Snapshot(SERVICES + [svc("kube-dns", "10.71.0.10", ns="kube-system")], SLICES, ["default", "kube-system"],
                       "cluster.local", ["10.71.0.0/16"], dns_service=("kube-system", "kube-dns"),
                       local_ips=["10.70.255.254"])


@pytest.mark.parametrize("snap,name,qtype,rcode,answers,additional", [
    (ZONE_SNAP, "cluster.local", "NS", "NOERROR", [("NS", "ns.dns.cluster.local.")],
     [("A", "10.71.0.10")]),
    (ZONE_SNAP, "ns.dns.cluster.local", "A", "NOERROR", [("A", "10.71.0.10")], []),
    (ZONE_SNAP, "ns.dns.cluster.local", "AAAA", "NOERROR", [], []),
    (ZONE_SNAP, "ns.dns.cluster.local", "TXT", "NXDOMAIN", [], []),
    (ZONE_SNAP, "dns-version.cluster.local", "TXT", "NOERROR", [("TXT", "1.1.0")], []),
    (ZONE_SNAP, "dns-version.cluster.local", "A", "NXDOMAIN", [], []),
    (ZONE_SNAP, "web.default.svc.cluster.local", "TXT", "NOERROR", [], []),
    (ZONE_SNAP, "default.svc.cluster.local", "NS", "NOERROR", [], []),
    # no Service of its own (not registered): the server's address, as CoreDNS's local IPs
    (R.Snapshot(SERVICES, SLICES, ["default"], "cluster.local", local_ips=["10.70.255.254"]),
     "ns.dns.cluster.local", "A", "NOERROR", [("A", "10.70.255.254")], []),
], ids=["apex-ns", "ns-a", "ns-aaaa", "ns-txt", "dns-version", "dns-version-a", "svc-txt", "non-apex-ns",
        "ns-fallback"])
def test_zone_records(snap, name, qtype, rcode, answers, additional):
    a = R.answer(snap, name, qtype)
    assert a.rcode == rcode and not a.forward
    assert [(r.rtype, r.data[0]) for r in a.answers] == answers
    assert [(r.rtype, r.data[0]) for r in a.additional] == additional
    assert (a.authority_soa is not None) == (not answers)  # NODATA/NXDOMAIN carry the SOA


async def test_server_packs_ns_and_txt():
    srv = DNSServer(lambda: (ZONE_SNAP, 3), upstreams=[])
    ns = DNSRecord.parse(await srv.handle(_query("cluster.local", "NS")))
    assert ns.header.aa and [(QTYPE[r.rtype], str(r.rname), str(r.rdata), r.ttl) for r in ns.rr] == \
        [("NS", "cluster.local.", "ns.dns.cluster.local.", 5)]
    assert [(QTYPE[r.rtype], str(r.rname), str(r.rdata)) for r in ns.ar] == \
        [("A", "ns.dns.cluster.local.", "10.71.0.10")]
    txt = DNSRecord.parse(await srv.handle(_query("dns-version.cluster.local", "TXT")))
    assert [(QTYPE[r.rtype], str(r.rdata), r.ttl) for r in txt.rr] == [("TXT", '"1.1.0"', 28800)]
    await srv.stop()
