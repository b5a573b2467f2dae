"""Kubernetes' CEL extension libraries, for the ``celpy`` engine of ``machinery/cel.py``.

kube-apiserver evaluates CRD validation rules and ValidatingAdmissionPolicies with cel-go plus
its own libraries (``k8s.io/apiserver/pkg/cel/library``) and cel-go's extensions. PyPI
``cel-python`` has the standard library only, so expressions such as
``quantity(self.memory).isLessThan(quantity('1Gi'))`` or ``self.names.isSorted()`` failed with
"undeclared reference". This module adds, as ``celpy`` functions (a method call ``x.f(a)`` is
the function ``f(x, a)``; a namespaced call such as ``sets.contains(a, b)`` is a method call on
the marker value bound to ``sets``):

- lists: ``isSorted``, ``sum``, ``max`` (``min`` is a celpy macro), ``indexOf``, ``lastIndexOf``;
- regex: ``find``, ``findAll``;
- strings (cel-go ``ext.Strings``): ``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``,
  ``upperAscii``, ``replace``, ``split``, ``substring``, ``trim``, ``join``, ``reverse``,
  ``format``, ``strings.quote``;
- sets (cel-go ``ext.Sets``): ``sets.contains``, ``sets.equivalent``, ``sets.intersects``;
- quantity: ``quantity``, ``isQuantity``, ``sign``, ``isInteger``, ``asInteger``,
  ``asApproximateFloat``, ``add``, ``sub``, ``isLessThan``, ``isGreaterThan``, ``compareTo``;
- URLs: ``url``, ``isURL``, ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
  ``getEscapedPath``, ``getQuery``;
- IP addresses and CIDRs: ``ip``, ``isIP``, ``ip.isCanonical``, ``family``, ``isUnspecified``,
  ``isLoopback``, ``isLinkLocalMulticast``, ``isLinkLocalUnicast``, ``isGlobalUnicast``,
  ``cidr``, ``isCIDR``, ``containsIP``, ``containsCIDR``, ``prefixLength``, ``masked``, and
  ``string()`` of both;
- the ``authorizer`` of ValidatingAdmissionPolicy: ``path``, ``group``, ``resource``,
  ``subresource``, ``namespace``, ``name``, ``serviceAccount``, ``requestResource``, ``check``,
  ``allowed``, ``reason``, ``errored``, ``error`` (the caller supplies the decision function).

Hand-written because no Python package provides them; the semantics follow the Go sources
(errors as CEL error values, code-point string indices, Go's ``strings.SplitN``). Not done:
cel-go's static type check and cost estimation (an unknown function is an evaluation error,
not a compile error), the ``fieldSelector``/``labelSelector`` authorizer calls (alpha), semver.
Neighbours: ``machinery/quantity.py`` (the exact Quantity arithmetic), ``machinery/cel.py``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import celpy
from celpy import celtypes as ct

from controlplane.machinery.quantity import _split, format_quantity, parse_quantity
from controlplane.machinery.userinfo import UserInfo

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
Err = celpy.CELEvalError


def _err(msg: str) -> Any:
    return Err(msg)


class _Namespace:
    """The value bound to a library namespace (``sets``, ``strings``, ``ip``)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<CEL namespace {self.name}>"


SETS, STRINGS, IP_NS = _Namespace("sets"), _Namespace("strings"), _Namespace("ip")
NAMESPACES: dict[str, Any] = {"sets": SETS, "strings": STRINGS, "ip": IP_NS}


# ---------------------------------------------------------------------------------------- values
class Quantity:
    """A ``resource.Quantity`` value (exact), printed in the format of its input."""

    __slots__ = ("value", "fmt")

    def __init__(self, value: Fraction, fmt: str = "DecimalSI") -> None:
        self.value, self.fmt = value, fmt

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.value == other.value

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.value)

    def __str__(self) -> str:
        return format_quantity(self.value, self.fmt)

    __repr__ = __str__


@dataclass(frozen=True)
class URL:
    raw: str
    scheme: str
    netloc: str
    hostname: str
    port: str
    path: str
    query: str

    def __str__(self) -> str:
        return self.raw


class IP:
    __slots__ = ("addr",)

    def __init__(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.addr = addr

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IP) and self.addr == other.addr

    def __hash__(self) -> int:
        return hash(self.addr)

    def __str__(self) -> str:
        return str(self.addr)

    __repr__ = __str__


class CIDR:
    __slots__ = ("addr", "net")

    def __init__(self, addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
                 net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.addr, self.net = addr, net

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CIDR) and (self.addr, self.net) == (other.addr, other.net)

    def __hash__(self) -> int:
        return hash((self.addr, self.net))

    def __str__(self) -> str:
        return f"{self.addr}/{self.net.prefixlen}"

    __repr__ = __str__


LIB_TYPES = (Quantity, URL, IP, CIDR)


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_list(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def _int(v: int) -> Any:
    if not _INT64_MIN <= v <= _INT64_MAX:
        return _err("integer overflow")
    return ct.IntType(v)


# ---------------------------------------------------------------------------------------- lists
def _comparable(items: list) -> bool:
    kinds = {("num" if isinstance(x, (int, float)) and not isinstance(x, bool) else type(x)) for x in items}
    return len(kinds) <= 1


def is_sorted(v: Any) -> Any:
    if not _is_list(v):
        return _err("no such overload: isSorted")
    items = list(v)
    if not _comparable(items):
        return _err("no such overload: isSorted of mixed types")
    try:
        return ct.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))
    except TypeError:
        return _err("no such overload: isSorted of incomparable values")


def list_sum(v: Any) -> Any:
    if not _is_list(v):
        return _err("no such overload: sum")
    items = list(v)
    if not items:
        return ct.IntType(0)
    if all(isinstance(x, ct.DurationType) for x in items):
        total = items[0]
        for x in items[1:]:
            total = total + x
        return total
    if all(isinstance(x, (ct.IntType, ct.UintType)) for x in items) and len({type(x) for x in items}) == 1:
        s = sum(int(x) for x in items)
        return ct.UintType(s) if isinstance(items[0], ct.UintType) else _int(s)
    if all(isinstance(x, ct.DoubleType) for x in items):
        return ct.DoubleType(math.fsum(float(x) for x in items))
    return _err("no such overload: sum of mixed or non-numeric values")


def list_max(v: Any) -> Any:
    if not _is_list(v):
        return _err("no such overload: max")
    items = list(v)
    if not items:
        return _err("max called on empty list")
    if not _comparable(items):
        return _err("no such overload: max of mixed types")
    return max(items)


def index_of(v: Any, x: Any, start: Any = None) -> Any:
    if _is_str(v):
        return _str_index_of(v, x, start)
    if _is_list(v) and start is None:
        for i, e in enumerate(v):
            if e == x:
                return ct.IntType(i)
        return ct.IntType(-1)
    return _err("no such overload: indexOf")


def last_index_of(v: Any, x: Any, start: Any = None) -> Any:
    if _is_str(v):
        return _str_last_index_of(v, x, start)
    if _is_list(v) and start is None:
        items = list(v)
        for i in range(len(items) - 1, -1, -1):
            if items[i] == x:
                return ct.IntType(i)
        return ct.IntType(-1)
    return _err("no such overload: lastIndexOf")


# ---------------------------------------------------------------------------------------- regex
def _compile(pattern: Any) -> Any:
    try:
        return re.compile(str(pattern))
    except re.error as e:
        return _err(f"invalid regular expression: {e}")


def find(s: Any, pattern: Any) -> Any:
    if not (_is_str(s) and _is_str(pattern)):
        return _err("no such overload: find")
    rx = _compile(pattern)
    if isinstance(rx, Err):
        return rx
    m = rx.search(s)
    return ct.StringType(m.group(0) if m else "")


def find_all(s: Any, pattern: Any, limit: Any = -1) -> Any:
    if not (_is_str(s) and _is_str(pattern)):
        return _err("no such overload: findAll")
    rx = _compile(pattern)
    if isinstance(rx, Err):
        return rx
    n = int(limit)
    if n == 0:
        return ct.ListType([])
    out = [ct.StringType(m.group(0)) for m in rx.finditer(s)]
    return ct.ListType(out if n < 0 else out[:n])


# ---------------------------------------------------------------------------------------- strings
def char_at(s: Any, i: Any) -> Any:
    if not _is_str(s):
        return _err("no such overload: charAt")
    i = int(i)
    if i < 0 or i > len(s):
        return _err(f"index out of range: {i}")
    return ct.StringType(s[i] if i < len(s) else "")


def _str_index_of(s: str, sub: Any, start: Any) -> Any:
    if not _is_str(sub):
        return _err("no such overload: indexOf")
    st = 0 if start is None else int(start)
    if st < 0 or st > len(s):
        return _err(f"index out of range: {st}")
    return ct.IntType(s.find(sub, st))


def _str_last_index_of(s: str, sub: Any, start: Any) -> Any:
    if not _is_str(sub):
        return _err("no such overload: lastIndexOf")
    if start is None:
        return ct.IntType(s.rfind(sub))
    st = int(start)
    if st < 0 or st > len(s):
        return _err(f"index out of range: {st}")
    return ct.IntType(s.rfind(sub, 0, st + len(sub)))


def _ascii(s: Any, up: bool) -> Any:
    if not _is_str(s):
        return _err("no such overload")
    table = {c: c - 32 for c in range(97, 123)} if up else {c: c + 32 for c in range(65, 91)}
    return ct.StringType(s.translate(table))


def replace(s: Any, old: Any, new: Any, n: Any = -1) -> Any:
    if not (_is_str(s) and _is_str(old) and _is_str(new)):
        return _err("no such overload: replace")
    n = int(n)
    if n == 0:
        return ct.StringType(s)
    if old == "":  # Go's strings.Replace: insert at every code-point boundary
        parts = [""] + list(s) + [""]
        limit = len(parts) - 1 if n < 0 else min(n, len(parts) - 1)
        out = new.join(parts[:limit + 1]) + "".join(parts[limit + 1:])
        return ct.StringType(out)
    return ct.StringType(s.replace(old, new, n if n > 0 else -1))


def split(s: Any, sep: Any, n: Any = -1) -> Any:
    """Go's ``strings.SplitN``."""
    if not (_is_str(s) and _is_str(sep)):
        return _err("no such overload: split")
    n = int(n)
    if n == 0:
        return ct.ListType([])
    if sep == "":
        chars = list(s)
        if n > 0 and len(chars) > n:
            chars = chars[:n - 1] + ["".join(chars[n - 1:])]
        return ct.ListType([ct.StringType(c) for c in chars])
    parts = s.split(sep) if n < 0 else s.split(sep, n - 1)
    return ct.ListType([ct.StringType(p) for p in parts])


def substring(s: Any, start: Any, end: Any = None) -> Any:
    if not _is_str(s):
        return _err("no such overload: substring")
    a = int(start)
    b = len(s) if end is None else int(end)
    if a < 0 or a > len(s):
        return _err(f"index out of range: {a}")
    if b < 0 or b > len(s):
        return _err(f"index out of range: {b}")
    if a > b:
        return _err(f"invalid substring range. start: {a}, end: {b}")
    return ct.StringType(s[a:b])


def trim(s: Any) -> Any:
    if not _is_str(s):
        return _err("no such overload: trim")
    return ct.StringType(s.strip())


def join(v: Any, sep: Any = "") -> Any:
    if not _is_list(v) or not _is_str(sep) or not all(_is_str(x) for x in v):
        return _err("no such overload: join")
    return ct.StringType(str(sep).join(str(x) for x in v))


def reverse(s: Any) -> Any:
    if not _is_str(s):
        return _err("no such overload: reverse")
    return ct.StringType(s[::-1])


def quote(s: Any) -> str:
    out = ['"']
    for ch in str(s):
        out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                    "\v": "\\v", "\\": "\\\\", '"': '\\"'}.get(ch, ch))
    out.append('"')
    return "".join(out)


def _fmt_value(v: Any) -> str:
    """``%s`` of a CEL value, as cel-go prints it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, ct.DoubleType):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return repr(f).removesuffix(".0") if f == int(f) and abs(f) < 1e21 else repr(f)
    if isinstance(v, ct.BytesType):
        return bytes(v).decode("utf-8", "replace")
    if _is_list(v):
        return "[" + ", ".join(_fmt_value(x) if not _is_str(x) else quote(x) for x in v) + "]"
    if isinstance(v, dict):
        items = sorted(((_fmt_value(k) if not _is_str(k) else quote(k)), (_fmt_value(x) if not _is_str(x) else quote(x)))
                       for k, x in v.items())
        return "{" + ", ".join(f"{k}: {x}" for k, x in items) + "}"
    return str(v)


_VERB = re.compile(r"%(?:\.(\d+))?([a-zA-Z%])")


def format_(s: Any, args: Any) -> Any:
    """cel-go's ``string.format(list)``: ``%s %d %f %e %b %o %x %X %%``, ``%.Nf``/``%.Ne``."""
    if not _is_str(s) or not _is_list(args):
        return _err("no such overload: format")
    values, pos, out, last = list(args), 0, [], 0
    for m in _VERB.finditer(s):
        out.append(s[last:m.start()])
        last = m.end()
        prec, verb = m.group(1), m.group(2)
        if verb == "%":
            out.append("%")
            continue
        if pos >= len(values):
            return _err(f"index {pos} out of range")
        v = values[pos]
        pos += 1
        try:
            if verb == "s":
                out.append(_fmt_value(v))
            elif verb == "d":
                if isinstance(v, (bool, float)) or not isinstance(v, int):
                    return _err("error during formatting: decimal clause can only be used on integers")
                out.append(str(int(v)))
            elif verb in "fe":
                p = 6 if prec is None else int(prec)
                out.append(format(float(v), f".{p}{verb}"))
            elif verb in "boxX":
                if isinstance(v, str):
                    if verb in "xX":
                        h = v.encode().hex()
                        out.append(h.upper() if verb == "X" else h)
                        continue
                    return _err(f"error during formatting: only integers can be formatted with %{verb}")
                out.append(format(int(v), verb))
            else:
                return _err(f"could not parse formatting clause: unrecognized formatting clause \"{verb}\"")
        except (TypeError, ValueError):
            return _err(f"error during formatting: cannot format {v!r} with %{verb}")
    out.append(s[last:])
    return ct.StringType("".join(out))


# ---------------------------------------------------------------------------------------- sets
def _set_args(a: Any, b: Any) -> bool:
    return _is_list(a) and _is_list(b)


def sets_contains(a: Any, b: Any) -> Any:
    return ct.BoolType(all(any(x == y for y in a) for x in b)) if _set_args(a, b) else _err("no such overload: sets.contains")


def sets_equivalent(a: Any, b: Any) -> Any:
    if not _set_args(a, b):
        return _err("no such overload: sets.equivalent")
    return ct.BoolType(all(any(x == y for y in a) for x in b) and all(any(x == y for y in b) for x in a))


def sets_intersects(a: Any, b: Any) -> Any:
    return ct.BoolType(any(x == y for x in a for y in b)) if _set_args(a, b) else _err("no such overload: sets.intersects")


# ---------------------------------------------------------------------------------------- quantity
def quantity(s: Any) -> Any:
    if not _is_str(s):
        return _err("no such overload: quantity")
    try:
        _, _, fmt = _split(str(s))
        return Quantity(parse_quantity(str(s)), fmt)
    except ValueError as e:
        return _err(str(e))


def is_quantity(s: Any) -> Any:
    return ct.BoolType(_is_str(s) and not isinstance(quantity(s), Err))


def _q(v: Any) -> Fraction | None:
    if isinstance(v, Quantity):
        return v.value
    if isinstance(v, int) and not isinstance(v, bool):
        return Fraction(int(v))
    return None


def sign(q: Any) -> Any:
    if not isinstance(q, Quantity):
        return _err("no such overload: sign")
    return ct.IntType((q.value > 0) - (q.value < 0))


def is_integer(q: Any) -> Any:
    if not isinstance(q, Quantity):
        return _err("no such overload: isInteger")
    return ct.BoolType(q.value.denominator == 1 and _INT64_MIN <= q.value <= _INT64_MAX)


def as_integer(q: Any) -> Any:
    if not isinstance(q, Quantity):
        return _err("no such overload: asInteger")
    if q.value.denominator != 1 or not _INT64_MIN <= q.value <= _INT64_MAX:
        return _err("cannot convert value to integer")
    return ct.IntType(int(q.value))


def as_approximate_float(q: Any) -> Any:
    if not isinstance(q, Quantity):
        return _err("no such overload: asApproximateFloat")
    return ct.DoubleType(float(q.value))


def _arith(q: Any, other: Any, sign_: int) -> Any:
    o = _q(other)
    if not isinstance(q, Quantity) or o is None:
        return _err("no such overload: add/sub")
    return Quantity(q.value + sign_ * o, q.fmt)


def _cmp(q: Any, other: Any) -> int | None:
    if not isinstance(q, Quantity) or not isinstance(other, Quantity):
        return None
    return (q.value > other.value) - (q.value < other.value)


def is_less_than(q: Any, other: Any) -> Any:
    c = _cmp(q, other)
    return _err("no such overload: isLessThan") if c is None else ct.BoolType(c < 0)


def is_greater_than(q: Any, other: Any) -> Any:
    c = _cmp(q, other)
    return _err("no such overload: isGreaterThan") if c is None else ct.BoolType(c > 0)


def compare_to(q: Any, other: Any) -> Any:
    c = _cmp(q, other)
    return _err("no such overload: compareTo") if c is None else ct.IntType(c)


# ---------------------------------------------------------------------------------------- URLs
def _parse_url(s: str) -> URL | None:
    """Go's ``url.ParseRequestURI``: an absolute URI or an absolute path, no fragment."""
    if not s or any(ord(c) < 0x20 or c == "\x7f" or c == " " for c in s):
        return None
    try:
        parts = urlsplit(s)
        port = parts.port  # raises on a bad port
    except ValueError:
        return None
    if parts.scheme:
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*$", parts.scheme):
            return None
    elif not s.startswith("/"):
        return None
    if "#" in s:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    hostname = netloc
    if netloc.startswith("["):
        hostname = netloc[1:netloc.index("]")] if "]" in netloc else ""
    elif ":" in netloc:
        hostname = netloc.rpartition(":")[0]
    return URL(s, parts.scheme, netloc, hostname, "" if port is None else str(port), parts.path, parts.query)


def url(s: Any) -> Any:
    if not _is_str(s):
        return _err("no such overload: url")
    u = _parse_url(str(s))
    if u is None:
        return _err(f'URL parse error during conversion from string: parse "{s}": invalid URI for request')
    return u


def is_url(s: Any) -> Any:
    return ct.BoolType(_is_str(s) and _parse_url(str(s)) is not None)


def _url_attr(attr: str) -> Callable[[Any], Any]:
    def get(u: Any) -> Any:
        if not isinstance(u, URL):
            return _err(f"no such overload: {attr}")
        return ct.StringType(getattr(u, attr))
    return get


def get_query(u: Any) -> Any:
    if not isinstance(u, URL):
        return _err("no such overload: getQuery")
    q = parse_qs(u.query, keep_blank_values=True)
    return ct.MapType({ct.StringType(k): ct.ListType([ct.StringType(x) for x in v]) for k, v in q.items()})


# ---------------------------------------------------------------------------------------- IP / CIDR
def _parse_ip(s: str) -> IP | str:
    if "%" in s:
        return "IP address with zone value is not allowed"
    try:
        addr = ipaddress.ip_address(s)
    except ValueError:
        return f"IP Address {s!r} parse error during conversion from string: ParseAddr({s!r}): unable to parse IP"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return "IPv4-mapped IPv6 address is not allowed"
    return IP(addr)


def ip(v: Any) -> Any:
    if isinstance(v, CIDR):
        return IP(v.addr)
    if not _is_str(v):
        return _err("no such overload: ip")
    r = _parse_ip(str(v))
    return _err(r) if isinstance(r, str) else r


def is_ip(v: Any) -> Any:
    return ct.BoolType(_is_str(v) and isinstance(_parse_ip(str(v)), IP))


def is_canonical(ns: Any, v: Any) -> Any:
    if ns is not IP_NS or not _is_str(v):
        return _err("no such overload: isCanonical")
    r = _parse_ip(str(v))
    if isinstance(r, str):
        return _err(r)
    return ct.BoolType(str(r.addr) == v)


def family(v: Any) -> Any:
    if not isinstance(v, IP):
        return _err("no such overload: family")
    return ct.IntType(v.addr.version)


def _ip_pred(name: str, pred: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def f(v: Any) -> Any:
        if not isinstance(v, IP):
            return _err(f"no such overload: {name}")
        return ct.BoolType(pred(v.addr))
    return f


_LL_MCAST4 = ipaddress.ip_network("224.0.0.0/24")
_LL_MCAST6 = ipaddress.ip_network("ff02::/16")


def _global_unicast(a: Any) -> bool:
    """Go's ``netip.Addr.IsGlobalUnicast`` (private ranges count as global)."""
    if a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local:
        return False
    return not (a.version == 4 and a == ipaddress.IPv4Address("255.255.255.255"))


def _parse_cidr(s: str) -> CIDR | str:
    addr_s, slash, _ = s.partition("/")
    if not slash:
        return f"network address parse error during conversion from string: netip.ParsePrefix({s!r}): no '/'"
    a = _parse_ip(addr_s)
    if isinstance(a, str):
        return a
    try:
        net = ipaddress.ip_network(s, strict=False)
    except ValueError:
        return f"network address parse error during conversion from string: netip.ParsePrefix({s!r}): bad bits"
    return CIDR(a.addr, net)


def cidr(v: Any) -> Any:
    if not _is_str(v):
        return _err("no such overload: cidr")
    r = _parse_cidr(str(v))
    return _err(r) if isinstance(r, str) else r


def is_cidr(v: Any) -> Any:
    return ct.BoolType(_is_str(v) and isinstance(_parse_cidr(str(v)), CIDR))


def contains_ip(c: Any, v: Any) -> Any:
    other = ip(v) if _is_str(v) else v
    if isinstance(other, Err):
        return other
    if not isinstance(c, CIDR) or not isinstance(other, IP):
        return _err("no such overload: containsIP")
    return ct.BoolType(other.addr.version == c.net.version and other.addr in c.net)


def contains_cidr(c: Any, v: Any) -> Any:
    other = cidr(v) if _is_str(v) else v
    if isinstance(other, Err):
        return other
    if not isinstance(c, CIDR) or not isinstance(other, CIDR):
        return _err("no such overload: containsCIDR")
    return ct.BoolType(other.net.version == c.net.version and other.net.subnet_of(c.net))  # type: ignore[arg-type]


def prefix_length(c: Any) -> Any:
    return ct.IntType(c.net.prefixlen) if isinstance(c, CIDR) else _err("no such overload: prefixLength")


def masked(c: Any) -> Any:
    return CIDR(c.net.network_address, c.net) if isinstance(c, CIDR) else _err("no such overload: masked")


# ---------------------------------------------------------------------------------------- authorizer
# decide(user, attributes) -> (decision, reason, error): decision "allow" | "deny" | "noopinion"
Decide = Callable[[Any, dict[str, str]], tuple[str, str, str]]


class Authorizer(ct.MapType):
    """``authorizer`` of a ValidatingAdmissionPolicy: checks for the request's user (or, after
    ``serviceAccount``, for that account). A map so that ``authorizer.requestResource`` is a
    field selection."""

    def __init__(self, decide: Decide, user: Any, request: dict[str, str] | None = None) -> None:
        super().__init__({})
        self.decide, self.user, self.request = decide, user, dict(request or {})
        if request is not None:
            self[ct.StringType("requestResource")] = ResourceCheck(self, dict(request))


class PathCheck:
    def __init__(self, authz: Authorizer, path: str) -> None:
        self.authz, self.path = authz, path


class ResourceCheck:
    def __init__(self, authz: Authorizer, attrs: dict[str, str]) -> None:
        self.authz, self.attrs = authz, attrs

    def with_(self, key: str, value: Any) -> Any:
        if not _is_str(value):
            return _err(f"no such overload: {key}")
        return ResourceCheck(self.authz, {**self.attrs, key: str(value)})


@dataclass(frozen=True)
class Decision:
    decision: str
    reason_: str
    error_: str


def _check(target: Any, verb: Any) -> Any:
    if not _is_str(verb):
        return _err("no such overload: check")
    if isinstance(target, PathCheck):
        attrs = {"verb": str(verb), "path": target.path}
        authz = target.authz
    elif isinstance(target, ResourceCheck):
        attrs = {**target.attrs, "verb": str(verb)}
        authz = target.authz
    else:
        return _err("no such overload: check")
    try:
        decision, reason, error = authz.decide(authz.user, attrs)
    except Exception as e:  # noqa: BLE001 - an authorizer failure is the decision's error
        decision, reason, error = "noopinion", "", str(e)
    return Decision(decision, reason, error)


def _service_account(a: Any, ns: Any, name: Any) -> Any:
    if not isinstance(a, Authorizer) or not (_is_str(ns) and _is_str(name)):
        return _err("no such overload: serviceAccount")
    user = UserInfo.make(f"system:serviceaccount:{ns}:{name}",
                         ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"])
    return Authorizer(a.decide, user)


def _path(a: Any, p: Any) -> Any:
    return PathCheck(a, str(p)) if isinstance(a, Authorizer) and _is_str(p) else _err("no such overload: path")


def _group(a: Any, g: Any) -> Any:
    if isinstance(a, Authorizer) and _is_str(g):
        return ResourceCheck(a, {"group": str(g)})
    return _err("no such overload: group")


def _resource_attr(key: str) -> Callable[[Any, Any], Any]:
    def f(rc: Any, value: Any) -> Any:
        return rc.with_(key, value) if isinstance(rc, ResourceCheck) else _err(f"no such overload: {key}")
    return f


def _decision(attr: str) -> Callable[[Any], Any]:
    def f(d: Any) -> Any:
        if not isinstance(d, Decision):
            return _err(f"no such overload: {attr}")
        if attr == "allowed":
            return ct.BoolType(d.decision == "allow")
        if attr == "errored":
            return ct.BoolType(bool(d.error_))
        if attr == "reason":
            return ct.StringType(d.reason_)
        return ct.StringType(d.error_)
    return f


# ---------------------------------------------------------------------------------------- dispatch
def _dispatch(name: str, cases: list[tuple[Callable[..., bool], Callable[..., Any]]],
              fallback: Callable[..., Any] | None = None) -> Callable[..., Any]:
    def f(*args: Any) -> Any:
        for test, fn in cases:
            if test(*args):
                return fn(*args)
        if fallback is not None:
            return fallback(*args)
        return _err(f"no such overload: {name}")
    return f


def _first_is(*types: Any) -> Callable[..., bool]:
    return lambda *a: bool(a) and isinstance(a[0], types)


def _first_is_ns(ns: _Namespace) -> Callable[..., bool]:
    return lambda *a: bool(a) and a[0] is ns


def functions(builtins: dict[str, Any]) -> dict[str, Any]:
    """The library functions, to pass to ``Environment.program(..., functions=...)``;
    ``builtins`` is celpy's own table (``contains`` is both a string method and ``sets.contains``)."""
    str_contains = builtins["contains"]
    return {
        # lists
        "isSorted": is_sorted, "sum": list_sum, "max": list_max,
        "indexOf": index_of, "lastIndexOf": last_index_of,
        # regex
        "find": find, "findAll": find_all,
        # strings
        "charAt": char_at, "lowerAscii": lambda s: _ascii(s, False), "upperAscii": lambda s: _ascii(s, True),
        "replace": replace, "split": split, "substring": substring, "trim": trim, "join": join,
        "reverse": reverse, "format": format_,
        "quote": _dispatch("strings.quote", [(_first_is_ns(STRINGS), lambda _n, s: ct.StringType(quote(s)))]),
        # sets (and the string method)
        "contains": _dispatch("contains", [(_first_is_ns(SETS), lambda _n, a, b: sets_contains(a, b))],
                              lambda *a: str_contains(*a)),
        "equivalent": _dispatch("sets.equivalent", [(_first_is_ns(SETS), lambda _n, a, b: sets_equivalent(a, b))]),
        "intersects": _dispatch("sets.intersects", [(_first_is_ns(SETS), lambda _n, a, b: sets_intersects(a, b))]),
        # quantity
        "quantity": quantity, "isQuantity": is_quantity, "sign": sign, "isInteger": is_integer,
        "asInteger": as_integer, "asApproximateFloat": as_approximate_float,
        "add": lambda q, o: _arith(q, o, 1), "sub": lambda q, o: _arith(q, o, -1),
        "isLessThan": is_less_than, "isGreaterThan": is_greater_than, "compareTo": compare_to,
        # URLs
        "url": url, "isURL": is_url, "getScheme": _url_attr("scheme"), "getHost": _url_attr("netloc"),
        "getHostname": _url_attr("hostname"), "getPort": _url_attr("port"),
        "getEscapedPath": _url_attr("path"), "getQuery": get_query,
        # IP / CIDR
        "ip": ip, "isIP": is_ip, "isCanonical": is_canonical, "family": family,
        "isUnspecified": _ip_pred("isUnspecified", lambda a: a.is_unspecified),
        "isLoopback": _ip_pred("isLoopback", lambda a: a.is_loopback),
        "isLinkLocalMulticast": _ip_pred("isLinkLocalMulticast",
                                         lambda a: a in (_LL_MCAST4 if a.version == 4 else _LL_MCAST6)),
        "isLinkLocalUnicast": _ip_pred("isLinkLocalUnicast", lambda a: a.is_link_local and not a.is_multicast),
        "isGlobalUnicast": _ip_pred("isGlobalUnicast", _global_unicast),
        "cidr": cidr, "isCIDR": is_cidr, "containsIP": contains_ip, "containsCIDR": contains_cidr,
        "prefixLength": prefix_length, "masked": masked,
        # authorizer
        "path": _path, "group": _group, "serviceAccount": _service_account,
        "resource": _resource_attr("resource"), "subresource": _resource_attr("subresource"),
        "namespace": _resource_attr("namespace"), "name": _resource_attr("name"),
        "check": _check, "allowed": _decision("allowed"), "reason": _decision("reason"),
        "errored": _decision("errored"), "error": _decision("error"),
    }
