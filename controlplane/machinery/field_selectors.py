"""Field selectors (``fieldSelector=spec.nodeName=n1,status.phase!=Failed``) with Kubernetes'
grammar: ``=``, ``==``, ``!=`` terms joined by commas (AND), ``\\`` escaping ``,`` ``=`` ``\\``.
Pure; re-exported by ``selectors.py``. The values matched come from ``fields.fields_for``.

API:
    parse_field_selector("spec.nodeName=n1,status.phase!=Failed") -> FieldSelector  # ValueError
    fsel.matches(fields: Mapping[str, str]) -> bool;  fsel.to_string();  fsel.fields() -> set[str]
    fsel.value_for(field) -> str | None   # the value of an "=" requirement (index look-ups)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="




@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    op: str  # "=", "==" or "!="
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        have = fields.get(self.field, "")
        return have != self.value if self.op == NOT_EQUALS else have == self.value


def _escape_field_value(v: str) -> str:
    return v.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = field(default=())

    @classmethod
    def parse(cls, text: str | None) -> "FieldSelector":
        return parse_field_selector(text)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            if not r.matches(fields):
                return False
        return True

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def value_for(self, name: str) -> str | None:
        for r in self.requirements:
            if r.field == name and r.op != NOT_EQUALS:
                return r.value
        return None

    def to_string(self) -> str:
        return ",".join(f"{r.field}{r.op}{_escape_field_value(r.value)}" for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(v: str, whole: str) -> str:
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            if i + 1 >= len(v) or v[i + 1] not in "\\,=!":
                raise ValueError(f"invalid field selector {whole!r}: invalid escape sequence in {v!r}")
            out.append(v[i + 1])
            i += 2
        else:
            if v[i] in ",=":
                raise ValueError(f"invalid field selector {whole!r}: unescaped {v[i]!r} in value {v!r}")
            out.append(v[i])
            i += 1
    return "".join(out)


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse ``field=value,field!=value,…`` (``\\`` escapes ``,`` ``=`` ``!`` ``\\``)."""
    text = (text or "").strip()
    if not text:
        return FieldSelector(())
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        term = term.strip()
        if not term:
            raise ValueError(f"invalid field selector {text!r}: empty term")
        for op in (NOT_EQUALS, DOUBLE_EQUALS, EQUALS):
            idx = _find_unescaped(term, op)
            if idx >= 0:
                name = term[:idx].strip()
                if not name:
                    raise ValueError(f"invalid field selector {text!r}: missing field name in {term!r}")
                reqs.append(FieldRequirement(name, op, _unescape(term[idx + len(op):], text)))
                break
        else:
            raise ValueError(f"invalid selector: {text!r}; can't understand {term!r}")
    return FieldSelector(tuple(reqs))
