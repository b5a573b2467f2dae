"""Kubernetes ``resource.Quantity``: exact parsing and canonical formatting (pure).

Quantities are kept as exact ``Fraction``s so that ``100m`` + ``900m`` is exactly ``1``.
Used by the apiserver (validation, defaulting), the scheduler (requests/allocatable arithmetic),
the controllers and the node agent (cgroup limits). Neighbours: ``selectors.py``, ``fields.py``.

API:
    parse_quantity("500Mi") -> Fraction          # ValueError on bad syntax
    cpu_millis("100m") -> 100; cpu_millis("1.5") -> 1500   (rounded up, as MilliValue())
    bytes_("2Gi") -> 2147483648                   (rounded up, as Value())
    format_quantity(Fraction, fmt="DecimalSI"|"BinarySI"|"DecimalExponent") -> str
    canonical("0.5Gi") -> "512Mi"                 (keeps the format family of the input suffix)
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

BINARY_SUFFIXES = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_EXP_TO_SUFFIX = {v: k for k, v in DECIMAL_SUFFIXES.items()}
_BIN_TO_SUFFIX = {v: k for k, v in BINARY_SUFFIXES.items()}

_RE = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$")
_EXP_RE = re.compile(r"^[eE]([+-]?\d+)$")


def _split(s: str) -> tuple[Fraction, str, str]:
    """(number without suffix, suffix, format) of a quantity string."""
    if not isinstance(s, str):
        raise ValueError(f"quantity must be a string, got {type(s).__name__}")
    m = _RE.match(s)
    if not m or not s or s != s.strip():
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s!r}")
    sign, digits, suffix = m.groups()
    num = Fraction(int(digits)) if digits.isdigit() and digits.isascii() else Fraction(digits)
    if sign == "-":
        num = -num
    if suffix in BINARY_SUFFIXES:
        return num, suffix, "BinarySI"
    if suffix in DECIMAL_SUFFIXES:
        return num, suffix, "DecimalSI"
    if _EXP_RE.match(suffix):
        return num, suffix, "DecimalExponent"
    raise ValueError(f"unable to parse quantity's suffix: {s!r}")


# Parsed strings (the same few quantities recur on every pod); Fractions are immutable.
_PARSED: dict[str, Fraction] = {}
_PARSED_MAX = 4096


def parse_quantity(s: str | int | float | Fraction) -> Fraction:
    """The exact value of a quantity (CPU in cores, memory in bytes, …)."""
    if type(s) is str:
        v = _PARSED.get(s)
        if v is None:
            v = _parse_str(s)
            if len(_PARSED) >= _PARSED_MAX:
                _PARSED.clear()
            _PARSED[s] = v
        return v
    if isinstance(s, Fraction):
        return s
    if isinstance(s, bool):
        raise ValueError("quantity must not be a boolean")
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        return Fraction(repr(s))
    return _parse_str(s)


def _parse_str(s: str) -> Fraction:
    num, suffix, fmt = _split(s)
    if fmt == "BinarySI":
        return num * (1024 ** BINARY_SUFFIXES[suffix])
    if fmt == "DecimalSI":
        return num * (Fraction(10) ** DECIMAL_SUFFIXES[suffix])
    return num * (Fraction(10) ** int(suffix[1:]))


def cpu_millis(s: str | int | float | Fraction) -> int:
    """Milli-units, rounded up (``MilliValue()``): ``"1.5"`` -> 1500, ``"100m"`` -> 100."""
    return math.ceil(parse_quantity(s) * 1000)


def bytes_(s: str | int | float | Fraction) -> int:
    """Whole units, rounded up (``Value()``): ``"2Gi"`` -> 2147483648, ``"1.5k"`` -> 1500."""
    return math.ceil(parse_quantity(s))


value = bytes_


def _format_decimal(v: Fraction, exponent_style: bool) -> str:
    if v == 0:
        return "0"
    sign = "-" if v < 0 else ""
    v = abs(v)
    # largest exponent (multiple of 3 in [-9, 18]) that leaves an integer mantissa
    best: tuple[int, int] | None = None
    for exp in range(18, -12, -3):
        mant = v / (Fraction(10) ** exp)
        if mant.denominator == 1:
            best = (int(mant), exp)
            break
    if best is None:  # finer than nano: round up to nano, as Kubernetes does
        best = (math.ceil(v * 10**9), -9)
        while best[0] % 1000 == 0 and best[1] < 18:
            best = (best[0] // 1000, best[1] + 3)
    mant, exp = best
    if exponent_style:
        return f"{sign}{mant}" + (f"e{exp}" if exp else "")
    return f"{sign}{mant}{_EXP_TO_SUFFIX[exp]}"


def format_quantity(v: Fraction | int, fmt: str = "DecimalSI") -> str:
    """Canonical string of ``v`` in the given format family."""
    v = Fraction(v)
    if fmt == "BinarySI":
        if v.denominator == 1 and abs(v) >= 1024:
            n = abs(int(v))
            k = 0
            while k < 6 and n % 1024 == 0:
                n //= 1024
                k += 1
            if k:
                return f"{'-' if v < 0 else ''}{n}{_BIN_TO_SUFFIX[k]}"
            return str(int(v))
        if v.denominator == 1 and abs(v) < 1024:
            return str(int(v))
        return _format_decimal(v, False)
    return _format_decimal(v, fmt == "DecimalExponent")


def canonical(s: str) -> str:
    """Canonical form of a quantity string (``"1.5"`` -> ``"1500m"``, ``"0.5Gi"`` -> ``"512Mi"``)."""
    num, suffix, fmt = _split(s)
    return format_quantity(parse_quantity(s), fmt)
