"""Label and field selectors with Kubernetes' grammar and semantics (pure, no I/O).

Used by the apiserver (``labelSelector`` / ``fieldSelector`` query parameters, the watch
cache's filtering), and by controllers, the scheduler and node agents (workload selectors,
affinity). Field values come from ``controlplane.machinery.fields.fields_for``.

API:
    parse_label_selector("app=web,tier in (a,b),!canary") -> LabelSelector   # ValueError on bad syntax
    LabelSelector.from_dict({"matchLabels": {...}, "matchExpressions": [...]})  # None -> nothing
    LabelSelector.nothing()
    sel.matches(labels: Mapping[str, str] | None) -> bool
    sel.to_string() -> str           # canonical (requirements sorted by key)
    sel.empty -> bool                # matches everything
    parse_field_selector("spec.nodeName=n1,status.phase!=Failed") -> FieldSelector
    fsel.matches(fields: Mapping[str, str]) -> bool;  fsel.to_string();  fsel.fields() -> set[str]
    fsel.value_for(field) -> str | None   # the value of an "=" requirement (index look-ups)
    (field selectors live in ``field_selectors.py`` and are re-exported here)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def validate_label_key(key: str) -> None:
    """ValueError unless ``key`` is a qualified name (``[prefix/]name``)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.match(prefix)):
        raise ValueError(f"invalid label key {key!r}: prefix part must be a DNS-1123 subdomain")
    if not name or len(name) > 63 or not _NAME_RE.match(name):
        raise ValueError(
            f"invalid label key {key!r}: name part must consist of alphanumeric characters, '-', '_' "
            "or '.', must start and end with an alphanumeric character, and be at most 63 characters"
        )


def validate_label_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME_RE.match(value)):
        raise ValueError(
            f"invalid label value {value!r}: must be 63 characters or less and consist of alphanumeric "
            "characters, '-', '_' or '.', starting and ending with an alphanumeric character"
        )


# operator names (as Kubernetes' selection.Operator)
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
IN, NOT_IN, EXISTS, DOES_NOT_EXIST, GT, LT = "in", "notin", "exists", "!", "gt", "lt"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_EQUALS, NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GT, LT):
            if self.key not in labels:
                return False
            try:
                have = int(labels[self.key])
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if op == GT else have < want
        raise AssertionError(op)

    def to_string(self) -> str:
        op = self.op
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({','.join(sorted(self.values))})"
        if op == GT:
            return f"{self.key}>{self.values[0]}"
        if op == LT:
            return f"{self.key}<{self.values[0]}"
        return f"{self.key}{op}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of requirements. ``match_nothing`` is the nil selector of Kubernetes."""

    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    @classmethod
    def nothing(cls) -> "LabelSelector":
        return cls((), True)

    @classmethod
    def parse(cls, text: str | None) -> "LabelSelector":
        return parse_label_selector(text)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "LabelSelector":
        """From a metav1.LabelSelector; ``None`` matches nothing, ``{}`` everything."""
        if d is None:
            return cls.nothing()
        reqs: list[Requirement] = []
        for k, v in (d.get("matchLabels") or {}).items():
            validate_label_key(k)
            v = "" if v is None else str(v)
            validate_label_value(v)
            reqs.append(Requirement(k, EQUALS, (v,)))
        for expr in d.get("matchExpressions") or []:
            key, op, values = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
            validate_label_key(key)
            if op in ("In", "NotIn"):
                if not values:
                    raise ValueError(f"for 'in', 'notin' operators, values set can't be empty (key {key!r})")
                for v in values:
                    validate_label_value(str(v))
                reqs.append(Requirement(key, IN if op == "In" else NOT_IN, tuple(sorted({str(v) for v in values}))))
            elif op in ("Exists", "DoesNotExist"):
                if values:
                    raise ValueError(f"values set must be empty for exists and does not exist (key {key!r})")
                reqs.append(Requirement(key, EXISTS if op == "Exists" else DOES_NOT_EXIST))
            else:
                raise ValueError(f"{op!r} is not a valid label selector operator")
        return cls(tuple(sorted(reqs, key=lambda r: r.key)))

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.match_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        labels = labels or {}
        for r in self.requirements:
            if not r.matches(labels):
                return False
        return True

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()


_OPERATOR_TOKENS = ("!=", "==", "=", "!", "(", ")", ",", "<", ">")
_SPECIAL = set("!=(),<>")


def _tokenize(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, text): kind is the operator itself, "in", "notin" or "id"."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c in _SPECIAL:
            two = text[i:i + 2]
            tok = two if two in ("!=", "==") else c
            out.append((tok, tok))
            i += len(tok)
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in _SPECIAL:
            j += 1
        word = text[i:j]
        out.append((word if word in ("in", "notin") else "id", word))
        i = j
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.pos] if self.pos < len(self.toks) else ("end", "")

    def take(self) -> tuple[str, str]:
        t = self.peek()
        self.pos += 1
        return t

    def error(self, what: str) -> ValueError:
        return ValueError(f"unable to parse requirement: {what} in label selector {self.text!r}")

    def key(self) -> str:
        kind, word = self.take()
        if kind != "id":
            raise self.error(f"found {word or 'end of string'!r}, expected: identifier")
        validate_label_key(word)
        return word

    def value(self) -> str:
        kind, word = self.peek()
        if kind in (",", "end", ")"):
            return ""  # "a=" selects the empty value
        if kind != "id":
            raise self.error(f"found {word!r}, expected: identifier")
        self.pos += 1
        validate_label_value(word)
        return word

    def value_set(self) -> tuple[str, ...]:
        kind, word = self.take()
        if kind != "(":
            raise self.error(f"found {word or 'end of string'!r}, expected: '('")
        values = {self.value()}
        while True:
            kind, word = self.take()
            if kind == ")":
                return tuple(sorted(values))
            if kind != ",":
                raise self.error(f"found {word or 'end of string'!r}, expected: ',' or ')'")
            values.add(self.value())

    def requirement(self) -> Requirement:
        kind, _ = self.peek()
        if kind == "!":
            self.pos += 1
            return Requirement(self.key(), DOES_NOT_EXIST)
        key = self.key()
        kind, word = self.peek()
        if kind in (",", "end"):
            return Requirement(key, EXISTS)
        self.pos += 1
        if kind in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
            return Requirement(key, kind, (self.value(),))
        if kind in ("in", "notin"):
            return Requirement(key, IN if kind == "in" else NOT_IN, self.value_set())
        if kind in ("<", ">"):
            k2, w2 = self.take()
            if k2 != "id" or not re.fullmatch(r"-?\d+", w2):
                raise self.error(f"for 'Gt', 'Lt' operators, the value must be an integer, got {w2!r}")
            return Requirement(key, GT if kind == ">" else LT, (w2,))
        raise self.error(f"found {word!r}, expected: in, notin, =, ==, !=, gt, lt")

    def parse(self) -> LabelSelector:
        reqs: list[Requirement] = []
        if self.peek()[0] == "end":
            return LabelSelector(())
        while True:
            reqs.append(self.requirement())
            kind, word = self.take()
            if kind == "end":
                break
            if kind != ",":
                raise self.error(f"found {word!r}, expected: ','")
        return LabelSelector(tuple(sorted(reqs, key=lambda r: r.key)))


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a label selector string; the empty string selects everything."""
    return _Parser(text or "").parse()


from controlplane.machinery.field_selectors import (  # noqa: E402,F401  (re-exported)
    FieldRequirement,
    FieldSelector,
    parse_field_selector,
)
