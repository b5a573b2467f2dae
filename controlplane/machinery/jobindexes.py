"""Completion-index interval strings of Indexed Jobs (``0-2,4,6``), shared by the apiserver's
Job validation (``successPolicy.rules[].succeededIndexes``) and the Job controller
(``status.completedIndexes``, ``status.failedIndexes``, success-policy matching). Ports of
``orderedIntervals`` (``pkg/controller/job/indexed_job_utils.go``) and ``validateIndexesFormat``
(``pkg/apis/batch/validation``) of Kubernetes 1.31. Intervals are ``(first, last)`` pairs,
inclusive, sorted and disjoint.
"""

from __future__ import annotations

from collections.abc import Iterable

Intervals = list[tuple[int, int]]


class IndexesFormatError(ValueError):
    pass


def _atoi(s: str) -> int:
    """Go's ``strconv.Atoi``: optional sign, decimal digits only."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError(s)
    return int(s)


def validate_indexes_format(text: str, completions: int) -> int:
    """The number of indexes ``text`` names; :class:`IndexesFormatError` with Kubernetes'
    message when it is malformed, unordered or names an index >= ``completions``."""
    if not text:
        return 0
    last: int | None = None
    total = 0
    for part in text.split(","):
        limits = part.split("-")
        if len(limits) > 2:
            raise IndexesFormatError(f"the fragment {_goq(part)} violates the requirement that an index interval "
                                     "can have at most two parts separated by '-'")
        try:
            x = _atoi(limits[0])
        except ValueError:
            raise IndexesFormatError(f"cannot convert string to integer for index: {_goq(limits[0])}") from None
        if x >= completions:
            raise IndexesFormatError(f"too large index: {_goq(limits[0])}")
        if last is not None and last >= x:
            raise IndexesFormatError(f"non-increasing order, previous: {last}, current: {x}")
        total += 1
        last = x
        if len(limits) > 1:
            try:
                y = _atoi(limits[1])
            except ValueError:
                raise IndexesFormatError(f"cannot convert string to integer for index: {_goq(limits[1])}") from None
            if y >= completions:
                raise IndexesFormatError(f"too large index: {_goq(limits[1])}")
            if last >= y:
                raise IndexesFormatError(f"non-increasing order, previous: {last}, current: {y}")
            total += y - x
            last = y
    return total


def _goq(s: str) -> str:
    """Go's ``%q`` for the plain strings these messages quote."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_indexes(text: str | None, completions: int) -> Intervals:
    """``parseIndexesFromString``: corrupted fragments are skipped, indexes past
    ``completions`` dropped, adjacent intervals merged."""
    out: Intervals = []
    if not text:
        return out
    for part in str(text).split(","):
        limits = part.split("-")
        try:
            first = _atoi(limits[0])
        except ValueError:
            continue
        if first >= completions:
            break
        last = first
        if len(limits) > 1:
            try:
                last = _atoi(limits[1])
            except ValueError:
                continue
            last = min(last, completions - 1)
        if out and out[-1][1] == first - 1:
            out[-1] = (out[-1][0], last)
        else:
            out.append((first, last))
    return out


def from_indexes(indexes: Iterable[int]) -> Intervals:
    """Sorted disjoint intervals covering ``indexes``."""
    out: Intervals = []
    for i in sorted(set(indexes)):
        if out and out[-1][1] == i - 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def to_indexes(intervals: Intervals) -> set[int]:
    return {i for first, last in intervals for i in range(first, last + 1)}


def total(intervals: Intervals) -> int:
    return sum(last - first + 1 for first, last in intervals)


def format_intervals(intervals: Intervals) -> str:
    """``orderedIntervals.String``: ``a-c`` for three or more, ``a,b`` for two, ``a`` for one."""
    out: list[str] = []
    for first, last in intervals:
        if first == last:
            out.append(str(first))
        elif last == first + 1:
            out.append(f"{first},{last}")
        else:
            out.append(f"{first}-{last}")
    return ",".join(out)


def count_overlap(rule: Intervals, succeeded: Intervals) -> int:
    """How many indexes of ``rule`` are in ``succeeded`` (a merge walk over both lists, as
    ``matchSucceededIndexesRule``)."""
    contains = r = s = 0
    while r < len(rule) and s < len(succeeded):
        overlap = min(rule[r][1], succeeded[s][1]) - max(rule[r][0], succeeded[s][0]) + 1
        if overlap > 0:
            contains += overlap
        if succeeded[s][1] < rule[r][1]:
            s += 1
        elif succeeded[s][1] > rule[r][1]:
            r += 1
        else:
            s += 1
            r += 1
    return contains
