"""SPDY/3.1 framing (``machinery/spdy.py``) and the agent's port-forward session over it
(``agent/portforward.SpdySession``) with an in-memory client and a loopback echo server in
place of the pod: pairing, replies, data both ways, FIN/RST, errors, pings; the remote command
protocol's negotiation, expected streams, error stream payloads and resize objects
(``apiserver/endpoints/spdystreams.py``)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import zlib

import pytest

from controlplane.agent import portforward as pf
from controlplane.machinery import spdy

# -- framing ----------------------------------------------------------------------------------


def test_dictionary_is_the_spdy3_one():
    # the 1,423 bytes of draft-mbelshe-httpbis-spdy-00 section 2.6.10.1
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest() == \
        "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02"


@pytest.mark.parametrize("frame,wire", [
    (spdy.Ping(7), bytes.fromhex("80030006" "00000004" "00000007")),
    (spdy.RstStream(3, spdy.CANCEL), bytes.fromhex("80030003" "00000008" "00000003" "00000005")),
    (spdy.WindowUpdate(5, 65536), bytes.fromhex("80030009" "00000008" "00000005" "00010000")),
    (spdy.GoAway(9, 0), bytes.fromhex("80030007" "00000008" "00000009" "00000000")),
    (spdy.Data(1, b"hi", spdy.FLAG_FIN), bytes.fromhex("00000001" "01000002") + b"hi"),
    (spdy.Settings([(0, 7, 65536)]), bytes.fromhex("80030004" "0000000c" "00000001" "00000007" "00010000")),
], ids=["ping", "rst", "window-update", "goaway", "data-fin", "settings"])
def test_wire_format(frame, wire):
    assert spdy.Framer().encode(frame) == wire
    assert spdy.Framer().feed(wire) == [frame]


@pytest.mark.parametrize("frame", [
    spdy.SynStream(1, {"streamtype": ["error"], "port": ["80"], "requestid": ["0"]}),
    spdy.SynStream(3, {"a": ["1", "2"]}, flags=spdy.FLAG_FIN, associated_to=1, priority=5),
    spdy.SynReply(1, {}),
    spdy.HeadersFrame(5, {"x": ["y"]}),
], ids=["syn-stream", "multi-value", "syn-reply", "headers"])
def test_header_frames_round_trip(frame):
    assert spdy.Framer().feed(spdy.Framer().encode(frame)) == [frame]


def test_header_compression_is_one_context_per_direction():
    w, r = spdy.Framer(), spdy.Framer()
    frames = [spdy.SynStream(i, {"streamtype": ["data"], "port": ["8080"], "requestid": [str(i)]}) for i in (1, 3, 5)]
    blobs = [w.encode(f) for f in frames]
    assert len(blobs[2]) < len(blobs[0])  # later blocks refer back to earlier ones
    assert r.feed(b"".join(blobs)) == frames
    with pytest.raises(spdy.SpdyError):
        spdy.Framer().feed(blobs[2])  # not readable without the first two blocks' context


def test_feed_in_pieces_and_skip_unknown_control_frames():
    w = spdy.Framer()
    data = w.encode(spdy.Data(1, b"x" * 100)) + bytes.fromhex("8003000a00000000") + w.encode(spdy.Ping(2))
    r = spdy.Framer()
    got = []
    for i in range(0, len(data), 7):
        got += r.feed(data[i:i + 7])
    assert got == [spdy.Data(1, b"x" * 100), spdy.Ping(2)]


def test_go_spdy_header_block_reads():
    # a header block as Go's framer writes it: best compression, the dictionary, a sync flush
    raw = (1).to_bytes(4, "big") + (4).to_bytes(4, "big") + b"port" + (2).to_bytes(4, "big") + b"80"
    z = zlib.compressobj(9, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY, zdict=spdy.DICTIONARY)
    block = z.compress(raw) + z.flush(zlib.Z_SYNC_FLUSH)
    body = (1).to_bytes(4, "big") + (0).to_bytes(4, "big") + b"\x00\x00" + block
    wire = bytes.fromhex("80030001") + b"\x00" + len(body).to_bytes(3, "big") + body
    assert spdy.Framer().feed(wire) == [spdy.SynStream(1, {"port": ["80"]})]


def test_bad_version():
    with pytest.raises(spdy.SpdyError):
        spdy.Framer().feed(bytes.fromhex("80020006000000040000000b"))


# -- the session ------------------------------------------------------------------------------
class Client:
    """kubectl's side: frames in, frames out, through an in-memory tunnel."""

    def __init__(self) -> None:
        self.framer = spdy.Framer()
        self.reader = spdy.Framer()
        self.to_server: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.frames: asyncio.Queue[spdy.Frame] = asyncio.Queue()  # control frames
        self.data: dict[int, asyncio.Queue[spdy.Data]] = {}

    async def from_server(self, data: bytes) -> None:
        for f in self.reader.feed(data):
            if isinstance(f, spdy.Data):
                self.data.setdefault(f.stream_id, asyncio.Queue()).put_nowait(f)
            else:
                self.frames.put_nowait(f)

    async def messages(self):
        while (m := await self.to_server.get()) is not None:
            yield m

    def send(self, *frames: spdy.Frame) -> None:
        for f in frames:
            self.to_server.put_nowait(self.framer.encode(f))

    async def next(self, *types: type, timeout: float = 5) -> spdy.Frame:
        while True:
            f = await asyncio.wait_for(self.frames.get(), timeout)
            if not types or isinstance(f, types):
                return f

    async def read_stream(self, sid: int, timeout: float = 5) -> bytes:
        out = b""
        q = self.data.setdefault(sid, asyncio.Queue())
        while True:
            f = await asyncio.wait_for(q.get(), timeout)
            out += f.data
            if f.fin:
                return out


async def echo_server() -> tuple[asyncio.AbstractServer, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read()  # until the client half-closes
        w.write(b"echo:" + data)
        await w.drain()
        w.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


async def dial_loopback(port: int) -> socket.socket:
    s = socket.socket()
    s.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    except OSError as e:
        s.close()
        raise pf.DialError(f"dial tcp4 127.0.0.1:{port}: connect: {pf._go_errno(e)}") from e
    return s


def streams(port: int, rid: str | None, base: int = 1) -> tuple[spdy.SynStream, spdy.SynStream]:
    extra = {"requestid": [rid]} if rid is not None else {}
    return (spdy.SynStream(base, {"streamtype": ["error"], "port": [str(port)], **extra}),
            spdy.SynStream(base + 2, {"streamtype": ["data"], "port": [str(port)], **extra}))


@pytest.mark.parametrize("rid", ["0", None], ids=["request-id", "old-client-stream-ids"])
async def test_session_forwards_and_half_closes(rid):
    srv, port = await echo_server()
    c = Client()
    session = pf.SpdySession(c.from_server, dial_loopback, "sandbox-1")
    task = asyncio.create_task(session.run(c.messages()))
    try:
        err, data = streams(port, rid)
        c.send(err, data)
        assert {(await c.next(spdy.SynReply)).stream_id, (await c.next(spdy.SynReply)).stream_id} == {1, 3}
        c.send(spdy.Data(1, b"", spdy.FLAG_FIN), spdy.Data(3, b"hello"), spdy.Data(3, b" world", spdy.FLAG_FIN))
        assert await c.read_stream(3) == b"echo:hello world"  # FIN reached the server as a half-close
        assert await c.read_stream(1) == b""  # the error stream closes empty: no error
        c.send(spdy.Ping(1))
        assert await c.next(spdy.Ping) == spdy.Ping(1)
    finally:
        c.to_server.put_nowait(None)
        await asyncio.wait_for(task, 5)
        srv.close()


async def test_session_reports_a_refused_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = Client()
    task = asyncio.create_task(pf.SpdySession(c.from_server, dial_loopback, "sb").run(c.messages()))
    try:
        c.send(*streams(port, "7"))
        msg = (await c.read_stream(1)).decode()
        assert msg == f"error forwarding port {port} to pod sb, uid : dial tcp4 127.0.0.1:{port}: connect: connection refused"
    finally:
        c.to_server.put_nowait(None)
        await asyncio.wait_for(task, 5)


async def test_session_reset_and_bad_streams():
    srv, port = await echo_server()
    c = Client()
    task = asyncio.create_task(pf.SpdySession(c.from_server, dial_loopback, "sb").run(c.messages()))
    try:
        c.send(spdy.SynStream(1, {"streamtype": ["bogus"]}))
        assert await c.next(spdy.RstStream) == spdy.RstStream(1, spdy.PROTOCOL_ERROR)
        err, data = streams(port, "1", base=5)
        c.send(err, data, spdy.Data(7, b"partial"), spdy.RstStream(7, spdy.CANCEL))
        assert await c.read_stream(5) == b""  # the reset ends the forward; the error stream closes
        c.send(spdy.SynStream(9, {"streamtype": ["error"], "requestid": ["2"]}))
        assert [(await c.next(spdy.SynReply)).stream_id for _ in range(3)] == [5, 7, 9]
        c.send(spdy.SynStream(9, {"streamtype": ["data"], "requestid": ["2"]}))  # an id in use
        assert await c.next(spdy.RstStream) == spdy.RstStream(9, spdy.STREAM_IN_USE)
    finally:
        c.to_server.put_nowait(None)
        await asyncio.wait_for(task, 5)
        srv.close()


# -- the remote command protocol's pure parts (apiserver/endpoints/spdystreams.py) -------------
from controlplane.apiserver.endpoints import spdystreams as rc  # noqa: E402

V5, V4, V3, V2 = rc.PROTOCOLS


@pytest.mark.parametrize("offered,want", [
    ([V5, V4, V3, V2, "channel.k8s.io"], V5),  # kubectl 1.32
    ([V4, V3, V2, "channel.k8s.io"], V4),  # the client's order wins
    ([V2, V4], V2),
    (["channel.k8s.io"], None),
    ([], None),
])
def test_negotiate(offered, want):
    assert rc.negotiate(offered) == want


@pytest.mark.parametrize("proto,flags,want", [
    (V5, (False, True, True, False), {"error", "stdout", "stderr"}),  # kubectl exec
    (V5, (True, True, True, False), {"error", "stdin", "stdout", "stderr"}),  # exec -i
    (V5, (True, True, True, True), {"error", "stdin", "stdout", "resize"}),  # -it: no stderr on a terminal
    (V3, (True, True, False, True), {"error", "stdin", "stdout", "resize"}),
    (V2, (True, True, False, True), {"error", "stdin", "stdout"}),  # v2 cannot resize
])
def test_expected_streams(proto, flags, want):
    assert rc.expected_streams(proto, *flags) == want


FAIL = b'{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit 3","reason":"NonZeroExitCode"}'


@pytest.mark.parametrize("proto,status,want", [
    (V5, FAIL, FAIL),
    (V4, b'{"metadata":{},"status":"Success"}', b'{"metadata":{},"status":"Success"}'),
    (V3, FAIL, b"command terminated with non-zero exit code: exit 3"),
    (V2, b'{"metadata":{},"status":"Success"}', b""),
    (V3, b"not json", b"not json"),
])
def test_error_payload(proto, status, want):
    assert rc.error_payload(proto, status) == want


@pytest.mark.parametrize("buf,values,rest", [
    (b'{"Width":80,"Height":24}', [{"Width": 80, "Height": 24}], b""),
    (b'{"Width":80,"Height":24}{"Width":100,"Height":33}\n', [{"Width": 80, "Height": 24},
                                                            {"Width": 100, "Height": 33}], b""),
    (b'{"Width":80,"Height":24}{"Wid', [{"Width": 80, "Height": 24}], b'{"Wid'),
    (b"", [], b""),
])
def test_split_resize_objects(buf, values, rest):
    assert rc.split_json(buf) == (values, rest)
