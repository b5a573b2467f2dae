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
