"""Kubernetes resource.Quantity parsing and canonical formatting (controlplane.machinery.quantity)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from controlplane.machinery.quantity import bytes_, canonical, cpu_millis, format_quantity, parse_quantity

PARSE = [
    ("0", Fraction(0)),
    ("1", Fraction(1)),
    ("1.5", Fraction(3, 2)),
    (".5", Fraction(1, 2)),
    ("100m", Fraction(1, 10)),
    ("250u", Fraction(1, 4000)),
    ("5n", Fraction(5, 10**9)),
    ("2k", Fraction(2000)),
    ("3M", Fraction(3 * 10**6)),
    ("1G", Fraction(10**9)),
    ("1T", Fraction(10**12)),
    ("1P", Fraction(10**15)),
    ("1E", Fraction(10**18)),
    ("1Ki", Fraction(1024)),
    ("500Mi", Fraction(500 * 1024**2)),
    ("2Gi", Fraction(2 * 1024**3)),
    ("32Gi", Fraction(32 * 1024**3)),
    ("1.5Gi", Fraction(3 * 1024**3, 2)),
    ("1Ti", Fraction(1024**4)),
    ("1e3", Fraction(1000)),
    ("1E3", Fraction(1000)),
    ("1.2e-3", Fraction(12, 10000)),
    ("-1", Fraction(-1)),
    ("+2", Fraction(2)),
]


@pytest.mark.parametrize("text,expected", PARSE, ids=[c[0] for c in PARSE])
def test_parse_quantity(text: str, expected: Fraction) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", " 1", "1 ", "abc", "1.2.3", "1Kb", "1KiB", "Mi", "1e", "1ee3", "--1", "1x"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


@pytest.mark.parametrize("text,millis", [("100m", 100), ("1", 1000), ("1.5", 1500), ("0.0001", 1), ("2k", 2_000_000), ("1n", 1)])
def test_cpu_millis_rounds_up(text: str, millis: int) -> None:
    assert cpu_millis(text) == millis


@pytest.mark.parametrize("text,n", [("2Gi", 2 * 1024**3), ("1.5k", 1500), ("100m", 1), ("128974848", 128974848), ("129e6", 129000000)])
def test_bytes_rounds_up(text: str, n: int) -> None:
    assert bytes_(text) == n


CANONICAL = [
    ("1.5", "1500m"),
    ("0.1", "100m"),
    ("1000", "1k"),
    ("1500", "1500"),
    ("1000000", "1M"),
    ("0.5Gi", "512Mi"),
    ("1024Mi", "1Gi"),
    ("1536Mi", "1536Mi"),
    ("1Ki", "1Ki"),
    ("1e3", "1e3"),
    ("1500e-3", "1500e-3"),
    ("100m", "100m"),
    ("0", "0"),
    ("-1.5", "-1500m"),
    ("0.0000000001", "1n"),
]


@pytest.mark.parametrize("text,expected", CANONICAL, ids=[c[0] for c in CANONICAL])
def test_canonical(text: str, expected: str) -> None:
    assert canonical(text) == expected


def test_format_round_trip_is_exact() -> None:
    for text, _ in PARSE:
        q = parse_quantity(text)
        for fmt in ("DecimalSI", "BinarySI", "DecimalExponent"):
            assert parse_quantity(format_quantity(q, fmt)) == q, (text, fmt)


@pytest.mark.parametrize("text,expected", PARSE + [("007", Fraction(7)), ("10.", Fraction(10)),
                                                   ("١٢", Fraction(12)), ("0.5Mi", Fraction(512 * 1024))],
                         ids=[c[0] for c in PARSE] + ["leading-zeros", "trailing-dot", "arabic-digits", "half-Mi"])
def test_repeated_parse_is_the_same_exact_value(text: str, expected: Fraction) -> None:
    """Parsed strings are cached: the second parse returns the same exact Fraction."""
    first, second = parse_quantity(text), parse_quantity(text)
    assert first == second == expected
    assert type(first) is Fraction and type(second) is Fraction


@pytest.mark.parametrize("bad", ["1x", "", True, None])
def test_repeated_bad_input_keeps_failing(bad: object) -> None:
    for _ in range(2):
        with pytest.raises(ValueError):
            parse_quantity(bad)  # type: ignore[arg-type]


def test_numbers_and_strings_do_not_share_cache_entries() -> None:
    assert parse_quantity("1") == 1
    with pytest.raises(ValueError):
        parse_quantity(True)
    assert parse_quantity(1.5) == Fraction(3, 2)
    assert parse_quantity("1.5") == Fraction(3, 2)
