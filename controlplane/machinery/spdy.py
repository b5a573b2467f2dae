"""SPDY/3.1 framing: the wire format of ``kubectl port-forward`` (pure; no I/O).

kubectl 1.32 tunnels SPDY/3.1 through a WebSocket (subprotocol
``SPDY/3.1+portforward.k8s.io``; every binary message carries bytes of one SPDY byte stream) and
falls back to a plain ``Upgrade: SPDY/3.1`` connection; either way the port-forward protocol
(``portforward.k8s.io``: one error and one data stream per forwarded connection) runs on SPDY
streams. ``Framer`` turns bytes into frames (``feed``) and frames into bytes (``encode``), with
the header blocks compressed by one zlib context per direction over the whole connection,
preset with the SPDY/3 dictionary, as the draft specifies (draft-mbelshe-httpbis-spdy-00,
section 2.6.10.1) and Go's ``spdy`` package (used by kubectl through moby/spdystream) does.

Hand-written because no maintained Python SPDY library exists (``spdy-py`` parses only, and
reads frame flags from the wrong byte). Callers: ``agent/portforward.py`` (the port-forward
session), ``apiserver/endpoints/spdystreams.py`` (exec/attach) and their unit tests.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

VERSION = 3
# control frame types
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL, INTERNAL_ERROR = 1, 2, 3, 5, 6
STREAM_IN_USE, STREAM_ALREADY_CLOSED = 7, 9
MAX_FRAME = (1 << 24) - 1

_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date "
    "etag expect expires from host if-match if-modified-since if-none-match if-range "
    "if-unmodified-since last-modified location max-forwards pragma proxy-authenticate "
    "proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK"] + "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_TAIL = (
    b"100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    b"203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request"
    b"401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented"
    b"503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    b"Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,"
    b"application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age="
    b"gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# the header compression dictionary of SPDY/3 (1,423 bytes: length-prefixed words, then a tail)
DICTIONARY = b"".join(len(w).to_bytes(4, "big") + w.encode() for w in _WORDS) + _TAIL

Headers = dict[str, list[str]]


class SpdyError(Exception):
    """The peer broke the framing (a session-level protocol error: the connection must end)."""


@dataclass
class Data:
    stream_id: int
    data: bytes = b""
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class _HeaderBlockFrame:
    """What SYN_STREAM, SYN_REPLY and HEADERS share: a stream, its header block, flags."""

    stream_id: int
    headers: Headers = field(default_factory=dict)
    flags: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


@dataclass
class SynStream(_HeaderBlockFrame):
    associated_to: int = 0
    priority: int = 0


@dataclass
class SynReply(_HeaderBlockFrame):
    pass


@dataclass
class HeadersFrame(_HeaderBlockFrame):
    pass


@dataclass
class RstStream:
    stream_id: int
    status: int = CANCEL


@dataclass
class Settings:
    entries: list[tuple[int, int, int]] = field(default_factory=list)  # (flags, id, value)
    flags: int = 0


@dataclass
class Ping:
    id: int


@dataclass
class GoAway:
    last_good_stream_id: int = 0
    status: int = 0


@dataclass
class WindowUpdate:
    stream_id: int
    delta: int


Frame = Data | SynStream | SynReply | HeadersFrame | RstStream | Settings | Ping | GoAway | WindowUpdate


def first(headers: Headers, name: str) -> str:
    """The first value of a header (names are lower case on the wire), or ``""``."""
    vals = headers.get(name.lower()) or [""]
    return vals[0]


def _u31(b: bytes | bytearray | memoryview, at: int) -> int:
    return int.from_bytes(b[at:at + 4], "big") & 0x7FFFFFFF


class Framer:
    """One connection's framing state: the read buffer and both header-compression contexts."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zlib.DEFLATED, 15, 8,
                                         zlib.Z_DEFAULT_STRATEGY, zdict=DICTIONARY)

    # -- reading ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> list[Frame]:
        """Frames completed by ``data`` (a partial frame waits for more); ``SpdyError`` on
        garbage. Unknown control frame types are skipped, as the draft asks."""
        self._buf += data
        out: list[Frame] = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 8:
            length = int.from_bytes(buf[pos + 5:pos + 8], "big")
            if len(buf) - pos < 8 + length:
                break
            head = buf[pos:pos + 8]
            body = bytes(buf[pos + 8:pos + 8 + length])
            pos += 8 + length
            flags = head[4]
            if head[0] & 0x80:
                version = int.from_bytes(head[0:2], "big") & 0x7FFF
                if version != VERSION:
                    raise SpdyError(f"unsupported SPDY version {version}")
                frame = self._control(int.from_bytes(head[2:4], "big"), flags, body)
                if frame is not None:
                    out.append(frame)
            else:
                out.append(Data(_u31(head, 0), body, flags))
        del buf[:pos]
        return out

    def _control(self, type_: int, flags: int, body: bytes) -> Frame | None:
        try:
            if type_ == SYN_STREAM:
                return SynStream(_u31(body, 0), self._headers(body[10:]), flags, _u31(body, 4), body[8] >> 5)
            if type_ == SYN_REPLY:
                return SynReply(_u31(body, 0), self._headers(body[4:]), flags)
            if type_ == HEADERS:
                return HeadersFrame(_u31(body, 0), self._headers(body[4:]), flags)
            if type_ == RST_STREAM:
                return RstStream(_u31(body, 0), int.from_bytes(body[4:8], "big"))
            if type_ == SETTINGS:
                n = int.from_bytes(body[0:4], "big")
                entries = [(body[4 + 8 * i], int.from_bytes(body[5 + 8 * i:8 + 8 * i], "big"),
                            int.from_bytes(body[8 + 8 * i:12 + 8 * i], "big")) for i in range(n)]
                return Settings(entries, flags)
            if type_ == PING:
                return Ping(int.from_bytes(body[0:4], "big"))
            if type_ == GOAWAY:
                return GoAway(_u31(body, 0), int.from_bytes(body[4:8], "big") if len(body) >= 8 else 0)
            if type_ == WINDOW_UPDATE:
                return WindowUpdate(_u31(body, 0), _u31(body, 4))
        except (IndexError, ValueError, zlib.error) as e:
            raise SpdyError(f"malformed control frame of type {type_}: {e}") from e
        return None

    def _headers(self, block: bytes) -> Headers:
        raw = self._inflate.decompress(block) if block else b""
        if not raw:
            return {}
        n = int.from_bytes(raw[0:4], "big")
        pos, out = 4, {}
        for _ in range(n):
            ln = int.from_bytes(raw[pos:pos + 4], "big")
            name = raw[pos + 4:pos + 4 + ln].decode("latin-1")
            pos += 4 + ln
            lv = int.from_bytes(raw[pos:pos + 4], "big")
            value = raw[pos + 4:pos + 4 + lv].decode("latin-1")
            pos += 4 + lv
            if pos > len(raw):
                raise SpdyError("truncated header block")
            out.setdefault(name.lower(), []).extend(value.split("\x00"))
        return out

    # -- writing ---------------------------------------------------------------------------
    def _block(self, headers: Headers) -> bytes:
        raw = bytearray(len(headers).to_bytes(4, "big"))
        for name, values in headers.items():
            n, v = name.lower().encode("latin-1"), "\x00".join(values).encode("latin-1")
            raw += len(n).to_bytes(4, "big") + n + len(v).to_bytes(4, "big") + v
        return self._deflate.compress(bytes(raw)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def _control_frame(type_: int, flags: int, body: bytes) -> bytes:
        if len(body) > MAX_FRAME:
            raise SpdyError("frame too large")
        return (0x8000 | VERSION).to_bytes(2, "big") + type_.to_bytes(2, "big") + bytes([flags]) + \
            len(body).to_bytes(3, "big") + body

    def encode(self, f: Frame) -> bytes:
        """The bytes of one frame (header blocks compressed in this connection's context, so
        frames must be sent in the order they were encoded)."""
        if isinstance(f, Data):
            if len(f.data) > MAX_FRAME:
                raise SpdyError("frame too large")
            return (f.stream_id & 0x7FFFFFFF).to_bytes(4, "big") + bytes([f.flags]) + \
                len(f.data).to_bytes(3, "big") + f.data
        if isinstance(f, SynStream):
            body = f.stream_id.to_bytes(4, "big") + f.associated_to.to_bytes(4, "big") + \
                bytes([(f.priority & 7) << 5, 0]) + self._block(f.headers)
            return self._control_frame(SYN_STREAM, f.flags, body)
        if isinstance(f, SynReply):
            return self._control_frame(SYN_REPLY, f.flags, f.stream_id.to_bytes(4, "big") + self._block(f.headers))
        if isinstance(f, HeadersFrame):
            return self._control_frame(HEADERS, f.flags, f.stream_id.to_bytes(4, "big") + self._block(f.headers))
        if isinstance(f, RstStream):
            return self._control_frame(RST_STREAM, 0, f.stream_id.to_bytes(4, "big") + f.status.to_bytes(4, "big"))
        if isinstance(f, Settings):
            body = len(f.entries).to_bytes(4, "big") + b"".join(
                bytes([fl]) + i.to_bytes(3, "big") + v.to_bytes(4, "big") for fl, i, v in f.entries)
            return self._control_frame(SETTINGS, f.flags, body)
        if isinstance(f, Ping):
            return self._control_frame(PING, 0, f.id.to_bytes(4, "big"))
        if isinstance(f, GoAway):
            return self._control_frame(GOAWAY, 0, f.last_good_stream_id.to_bytes(4, "big") + f.status.to_bytes(4, "big"))
        if isinstance(f, WindowUpdate):
            return self._control_frame(WINDOW_UPDATE, 0, f.stream_id.to_bytes(4, "big") + f.delta.to_bytes(4, "big"))
        raise TypeError(f"not a SPDY frame: {f!r}")
