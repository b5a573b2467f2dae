"""The cluster DNS server (our CoreDNS): asyncio UDP and TCP on one port, the wire format from
PyPI ``dnslib``, answers from informer caches (``records.answer`` over a ``Snapshot`` rebuilt
after changes), every other name forwarded to the upstream resolvers with a timeout (SERVFAIL
when none answers; a truncated UDP answer makes the client retry over TCP, which we forward
over TCP). An ExternalName pointing outside the cluster is answered with its CNAME plus the
upstream's records for the target (not cached), as CoreDNS does.

Hot path: answers for cluster names are cached as packed bytes keyed by the raw question
(case kept, as the client sent it) and flags, so a repeated query costs a header check and a
two-byte ID patch; the cache is dropped whenever the snapshot changes. This small layer over
dnslib is hand-written for speed (docs/networking.md). Neighbours: ``records.py``,
``component.py`` (informers, registration as ``kube-system/kube-dns``), ``cmd/dns.py``.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import OrderedDict
from typing import Callable

from dnslib import AAAA as RD_AAAA
from dnslib import CNAME as RD_CNAME
from dnslib import NS as RD_NS
from dnslib import PTR as RD_PTR
from dnslib import QTYPE, RCODE, RR, SOA as RD_SOA, SRV as RD_SRV, TXT as RD_TXT, A as RD_A, DNSRecord

from prometheus_client import Counter

from controlplane.dns import records as REC
from controlplane.log import get_logger

log = get_logger(__name__)
# CoreDNS's metric names (the process's default registry, served on its metrics port)
REQUESTS = Counter("coredns_dns_requests_total", "Queries received", ["proto"])
CACHE_HITS = Counter("coredns_cache_hits_total", "Answers served from the packed-answer cache")
FORWARDS = Counter("coredns_forward_requests_total", "Queries forwarded to an upstream")
FORWARD_FAILURES = Counter("coredns_forward_responses_failed_total", "Forwarded queries no upstream answered")
_REQ_UDP, _REQ_TCP = REQUESTS.labels("udp"), REQUESTS.labels("tcp")
_ = RD_AAAA  # (AAAA is never answered for cluster names: IPv4 only)
CACHE_SIZE = 20000


def _rr(r: REC.Record, qname: object) -> RR:
    name = r.name or qname
    if r.rtype == REC.A:
        return RR(name, QTYPE.A, rdata=RD_A(r.data[0]), ttl=r.ttl)
    if r.rtype == REC.CNAME:
        return RR(name, QTYPE.CNAME, rdata=RD_CNAME(r.data[0]), ttl=r.ttl)
    if r.rtype == REC.PTR:
        return RR(name, QTYPE.PTR, rdata=RD_PTR(r.data[0]), ttl=r.ttl)
    if r.rtype == REC.NS:
        return RR(name, QTYPE.NS, rdata=RD_NS(r.data[0]), ttl=r.ttl)
    if r.rtype == REC.TXT:
        return RR(name, QTYPE.TXT, rdata=RD_TXT(r.data[0]), ttl=r.ttl)
    if r.rtype == REC.SRV:
        pr, w, port, target = r.data
        return RR(name, QTYPE.SRV, rdata=RD_SRV(pr, w, port, target), ttl=r.ttl)
    raise ValueError(r.rtype)


def soa_rr(zone: str, serial: int) -> RR:
    return RR(zone + ".", QTYPE.SOA, ttl=REC.TTL,
              rdata=RD_SOA(f"ns.dns.{zone}.", f"hostmaster.{zone}.", (serial, 7200, 1800, 86400, REC.TTL)))


def build_reply(req: DNSRecord, ans: REC.Answer, serial: int) -> DNSRecord:
    reply = req.reply(ra=1, aa=1)
    reply.header.rcode = getattr(RCODE, ans.rcode)
    for r in ans.answers:
        if r.rtype == REC.SOA:
            reply.add_answer(soa_rr(r.name, serial))
        else:
            reply.add_answer(_rr(r, req.q.qname))
    for r in ans.additional:
        reply.add_ar(_rr(r, req.q.qname))
    if ans.authority_soa:
        reply.add_auth(soa_rr(ans.authority_soa, serial))
    return reply


def question_key(data: bytes) -> bytes | None:
    """The raw question of a plain query (one question, nothing else but an optional EDNS OPT),
    with the RD/CD flag bits: the cache key. None when the message is not that simple."""
    if len(data) < 17:
        return None
    flags, qd, an, ns, ar = struct.unpack_from("!HHHHH", data, 2)
    if flags & 0xF800 or qd != 1 or an or ns or ar > 1:  # QR=0 and opcode QUERY only
        return None
    i = 12
    n = len(data)
    while i < n:
        ln = data[i]
        if ln == 0:
            break
        if ln & 0xC0:
            return None
        i += ln + 1
    if i + 5 > n:
        return None
    return struct.pack("!H", flags & 0x0110) + data[12:]


class DNSServer:
    def __init__(self, snapshot: Callable[[], tuple[REC.Snapshot, int]], upstreams: list[tuple[str, int]],
                 timeout: float = 2.0) -> None:
        self.snapshot = snapshot  # -> (snapshot, generation)
        self.upstreams = upstreams
        self.timeout = timeout
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()
        self._cache_gen = -1
        self.udp: asyncio.DatagramTransport | None = None
        self.tcp: asyncio.AbstractServer | None = None
        self.port = 0
        self.queries = 0
        self.forwarded = 0
        self.failures = 0
        self._tasks: set[asyncio.Task] = set()

    # -- serving -------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            self.udp, _p = await loop.create_datagram_endpoint(lambda: _Udp(self), local_addr=(host, port))
            bound = self.udp.get_extra_info("sockname")[1]
            try:
                self.tcp = await asyncio.start_server(self._tcp_client, host, bound, reuse_address=True)
                self.port = bound
                return bound
            except OSError:
                self.udp.close()
                if port:
                    raise
        raise OSError("could not bind UDP and TCP on one port")

    async def stop(self) -> None:
        if self.udp is not None:
            self.udp.close()
        if self.tcp is not None:
            self.tcp.close()
            await self.tcp.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _tcp_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                hdr = await asyncio.wait_for(reader.readexactly(2), 30)
                data = await reader.readexactly(struct.unpack("!H", hdr)[0])
                out = await self.handle(data, tcp=True)
                if out is not None:
                    writer.write(struct.pack("!H", len(out)) + out)
                    await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    # -- answering -----------------------------------------------------------------------
    def answer_cached(self, data: bytes) -> bytes | None:
        """The fast path: a cached packed answer with this query's ID, or None."""
        snap, gen = self.snapshot()
        if gen != self._cache_gen:
            self._cache.clear()
            self._cache_gen = gen
        key = question_key(data)
        if key is None:
            return None
        hit = self._cache.get(key)
        if hit is None:
            return None
        return data[:2] + hit[2:]

    async def handle(self, data: bytes, tcp: bool = False) -> bytes | None:
        self.queries += 1
        (_REQ_TCP if tcp else _REQ_UDP).inc()
        hit = self.answer_cached(data)
        if hit is not None:
            CACHE_HITS.inc()
            return hit
        try:
            req = DNSRecord.parse(data)
        except Exception:  # noqa: BLE001 - malformed input: FORMERR when we can, else drop
            if len(data) >= 12:
                return data[:2] + bytes([0x80 | (data[2] & 0x79), 0x01]) + b"\x00" * 8
            return None
        if not req.questions:
            rep = req.reply()
            rep.header.rcode = RCODE.FORMERR
            return rep.pack()
        snap, gen = self.snapshot()
        q = req.q
        try:
            ans = REC.answer(snap, str(q.qname), QTYPE.get(q.qtype, str(q.qtype)))
        except Exception as e:  # noqa: BLE001 - never let one query take the server down
            log.warning("dns answer failed", name=str(q.qname), error=repr(e))
            rep = req.reply()
            rep.header.rcode = RCODE.SERVFAIL
            return rep.pack()
        if ans.forward:
            return await self._forward(data, req, tcp)
        if ans.chase:  # an ExternalName pointing outside the cluster: its records from the upstream
            reply = build_reply(req, ans, serial=gen)
            for rr in await self._resolve_upstream(ans.chase, q.qtype, tcp):
                reply.add_answer(rr)
            return reply.pack()
        out = build_reply(req, ans, serial=gen).pack()
        key = question_key(data)
        if key is not None and gen == self._cache_gen:
            self._cache[key] = out
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return out

    async def _forward(self, data: bytes, req: DNSRecord, tcp: bool) -> bytes:
        self.forwarded += 1
        FORWARDS.inc()
        for host, port in self.upstreams:
            try:
                if tcp:
                    return await asyncio.wait_for(_tcp_query(host, port, data), self.timeout)
                return await asyncio.wait_for(_udp_query(host, port, data), self.timeout)
            except (asyncio.TimeoutError, OSError) as e:
                log.debug("upstream failed", upstream=f"{host}:{port}", error=repr(e))
        self.failures += 1
        FORWARD_FAILURES.inc()
        rep = req.reply()
        rep.header.rcode = RCODE.SERVFAIL
        return rep.pack()


    async def _resolve_upstream(self, name: str, qtype: int, tcp: bool) -> list[RR]:
        """The answer records of the upstream for ``name``/``qtype`` (empty when it fails or
        has none): CoreDNS's kubernetes plugin follows an ExternalName's CNAME this way."""
        q = DNSRecord.question(name, QTYPE.get(qtype, str(qtype)))
        raw = await self._forward(q.pack(), q, tcp)
        try:
            return list(DNSRecord.parse(raw).rr)
        except Exception:  # noqa: BLE001 - a malformed upstream answer: the CNAME alone
            return []


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        hit = self.server.answer_cached(data)
        if hit is not None:
            self.server.queries += 1
            _REQ_UDP.inc()
            CACHE_HITS.inc()
            assert self.transport is not None
            self.transport.sendto(hit, addr)
            return
        self.server._spawn(self._reply(data, addr))

    async def _reply(self, data: bytes, addr: tuple) -> None:
        out = await self.server.handle(data)
        if out is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(out, addr)


class _Once(asyncio.DatagramProtocol):
    def __init__(self, fut: asyncio.Future, qid: bytes) -> None:
        self.fut = fut
        self.qid = qid

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data[:2] == self.qid and not self.fut.done():
            self.fut.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.fut.done():
            self.fut.set_exception(exc)


async def _udp_query(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Once(fut, data[:2]), remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await fut
    finally:
        transport.close()


async def _tcp_query(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        n = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(n)
    finally:
        writer.close()


def now_serial() -> int:
    return int(time.time()) & 0xFFFFFFFF
