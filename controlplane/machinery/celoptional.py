"""cel-go's optional types for the ``celpy`` engine of ``machinery/cel.py``.

Kubernetes 1.32 compiles CRD validation rules and ValidatingAdmissionPolicy expressions with
cel-go's ``OptionalTypes`` on: ``self.?spec.replicas.orValue(1)``, ``m[?'key']``,
``optional.of(x)``, ``optional.none()``, ``optional.ofNonZeroValue(x)``, ``.hasValue()``,
``.value()``, ``.or(o)``, ``.orValue(v)``, optional list elements ``[?x]`` and optional map /
message entries ``{?k: v}``. PyPI ``cel-python`` 0.5 has neither the syntax nor the type, and no
other Python package provides them, so this module adds them without changing cel-python:

- the grammar: cel-python's own ``cel.lark`` plus Lark ``%override`` rules for the new forms,
  built by ``OptionalParser`` (a ``CELParser`` with its own Lark instance: cel-python's parser
  is a class-wide singleton that other users of celpy in the process keep using unchanged);
- the evaluation: ``OptionalEvaluator``, a subclass of celpy's ``Evaluator`` run by
  ``OptionalRunner`` (an ``Environment(runner_class=...)``), with methods for the new parse
  nodes and select/index on optional values; plain selects and indexes still go through
  celpy's own code;
- the type ``OptionalValue`` and the functions (``optional.of``, ``hasValue``, ...).

Semantics as cel-go's ``ext``/``interpreter`` (checked against the cel-spec optional-types
proposal): ``a.?f`` is ``optional.none()`` when ``a`` has no field/key ``f`` and
``optional.of(a.f)`` otherwise; once a select chain is optional every later select or index in
it is "if present" (``a.?b.c`` is none when ``c`` is missing), and a select or index on an
optional value is too; ``or``/``orValue`` evaluate their argument only when the receiver is
none; ``value()`` of none is the error ``optional.none() dereference``; an optional list element
or map/message entry whose value is not an optional is an error. Not done: cel-go's static type
check (a non-optional value given to ``[?x]`` is an evaluation error here, a compile error in
cel-go), ``optional.unwrap``/``optMap``/``optFlatMap`` (cel-go ``ext`` versions after the one
Kubernetes 1.32 enables) and ``type()`` of an optional (``optional_type``).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import celpy
import lark
from celpy import celtypes as ct
from celpy.celparser import CELParseError, CELParser
from celpy.evaluation import CELEvalError, Evaluator
from lark.exceptions import LexError, ParseError, UnexpectedCharacters, UnexpectedToken

from controlplane.machinery import celcost

# Rules added to (``%override``: replacing) those of cel-python's ``cel.lark``; the syntax is
# cel-go's ``CEL.g4``: ``member '.' '?' IDENT``, ``member '[' '?' expr ']'``, ``optExpr`` in list
# and map literals, ``optField`` in message literals.
GRAMMAR_EXTENSION = r"""
%override member : member_dot | member_dot_opt | member_dot_arg | member_index | member_index_opt
                 | member_object | primary
member_dot_opt   : member "." "?" IDENT
member_index_opt : member "[" "?" expr "]"

%override list_lit : "[" [listinit] "]"
listinit         : listelem ("," listelem)*
?listelem        : expr | opt_expr
opt_expr         : "?" expr

%override mapinits : mapkey ":" expr ("," mapkey ":" expr)*
?mapkey          : expr | opt_expr

%override fieldinits : fieldname ":" expr ("," fieldname ":" expr)*
?fieldname       : IDENT | opt_field
opt_field        : "?" IDENT
"""

_CONSTRUCTORS = {"of", "none", "ofNonZeroValue"}  # optional.<name>(...)


# ---------------------------------------------------------------------------------------- value
class OptionalValue:
    """cel-go's ``types.Optional``: ``optional.none()`` or ``optional.of(value)``."""

    __slots__ = ("has_value", "value")

    def __init__(self, has_value: bool, value: Any = None) -> None:
        self.has_value, self.value = has_value, value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OptionalValue) or self.has_value != other.has_value:
            return False
        return not self.has_value or bool(self.value == other.value)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.has_value, self.value if self.has_value else None))

    def __repr__(self) -> str:
        return f"optional.of({self.value!r})" if self.has_value else "optional.none()"


NONE = OptionalValue(False)


def of(value: Any) -> OptionalValue:
    return OptionalValue(True, value)


def _is_zero(v: Any) -> bool:
    """cel-go's ``IsZeroValue``: null, false, 0, 0u, 0.0, '', b'', [], {}, a zero duration,
    a timestamp at Go's zero time."""
    if v is None:
        return True
    if isinstance(v, ct.TimestampType):
        return (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond) == (1, 1, 1, 0, 0, 0, 0)
    if isinstance(v, ct.DurationType):
        return not v
    if isinstance(v, (ct.BoolType, ct.IntType, ct.UintType, ct.DoubleType)):
        return float(v) == 0.0  # celpy's own == refuses int/double mixes
    if isinstance(v, (str, bytes, list, tuple, dict)):
        return len(v) == 0
    return False


def _err(msg: str, tree: lark.Tree | None = None) -> CELEvalError:
    return CELEvalError(msg, tree=tree)


def _opt_field(target: Any, field: str, tree: lark.Tree | None) -> Any:
    """``target.?field`` (also ``target.field`` on an optional): of/none, or an error."""
    if isinstance(target, CELEvalError):
        return target
    if isinstance(target, OptionalValue):
        if not target.has_value:
            return NONE
        target = target.value
    if isinstance(target, ct.MapType):  # maps and messages (a MessageType is a MapType)
        key = ct.StringType(field)
        return of(target[key]) if key in target else NONE
    return _err(f"{target!r} with type: '{type(target)}' does not support field selection", tree)


def _opt_index(target: Any, index: Any, tree: lark.Tree | None) -> Any:
    """``target[?index]`` (also ``target[index]`` on an optional): of/none, or an error."""
    if isinstance(target, CELEvalError):
        return target
    if isinstance(index, CELEvalError):
        return index
    if isinstance(target, OptionalValue):
        if not target.has_value:
            return NONE
        target = target.value
    if isinstance(target, ct.MapType):
        try:
            return of(target[index]) if index in target else NONE
        except TypeError:
            return _err(f"found no matching overload for _[?_] applied to '({type(target)}, {type(index)})'", tree)
    if isinstance(target, ct.ListType):
        if isinstance(index, ct.BoolType) or not isinstance(index, (ct.IntType, ct.UintType)):
            return _err(f"found no matching overload for _[?_] applied to '({type(target)}, {type(index)})'", tree)
        i = int(index)
        return of(target[i]) if 0 <= i < len(target) else NONE
    return _err(f"found no matching overload for _[?_] applied to '({type(target)}, {type(index)})'", tree)


def _entry_optional(v: Any, what: str) -> Any:
    """The optional given for an optional list element or map/message entry, or an error (also
    when the value is not an optional, as cel-go's interpreter says)."""
    if isinstance(v, CELEvalError):
        return v
    if not isinstance(v, OptionalValue):
        return _err(f"cannot initialize optional {what} from non-optional value {v}")
    return v


# ---------------------------------------------------------------------------------------- functions
def _has_value(o: Any) -> Any:
    return ct.BoolType(o.has_value) if isinstance(o, OptionalValue) else _err("no such overload: hasValue")


def _value(o: Any) -> Any:
    if not isinstance(o, OptionalValue):
        return _err("no such overload: value")
    return o.value if o.has_value else _err("optional.none() dereference")


FUNCTIONS: dict[str, Any] = {
    "optional.of": of,
    "optional.none": lambda: NONE,
    "optional.ofNonZeroValue": lambda v: NONE if _is_zero(v) else of(v),
    "hasValue": _has_value,
    "value": _value,
}


# ---------------------------------------------------------------------------------------- parser
class OptionalParser(CELParser):
    """cel-python's ``CELParser`` over the extended grammar. ``CELParser`` keeps one Lark
    instance in a class attribute that its ``parse`` names explicitly, so this class keeps its
    own and repeats ``parse``'s error wrapping."""

    LARK: lark.Lark | None = None

    def __init__(self, tree_class: type = lark.Tree) -> None:  # noqa: D107 - no super(): see above
        if OptionalParser.LARK is None:
            grammar = (Path(celpy.__file__).parent / "cel.lark").read_text() + GRAMMAR_EXTENSION
            OptionalParser.LARK = lark.Lark(
                grammar, parser="lalr", start="expr", debug=False, g_regex_flags=re.M,
                lexer_callbacks={"IDENT": CELParser.ambiguous_literals}, propagate_positions=True,
                maybe_placeholders=False, priority="invert", tree_class=tree_class)

    def parse(self, text: str) -> lark.Tree:
        assert OptionalParser.LARK is not None
        self.text = text
        try:
            tree = OptionalParser.LARK.parse(text)
        except (UnexpectedToken, UnexpectedCharacters) as ex:
            raise CELParseError(ex.get_context(text), *ex.args, line=ex.line, column=ex.column) from None
        except (LexError, ParseError) as ex:
            raise CELParseError(ex.args[0].splitlines()[0], *ex.args) from None
        _check_has_macros(tree)
        return tree


def _inner(tree: Any) -> Any:
    """The node under the single-child wrappers (expr, conditionalor, ..., member, primary)."""
    while isinstance(tree, lark.Tree) and len(tree.children) == 1 and isinstance(tree.children[0], lark.Tree) \
            and tree.data in ("expr", "conditionalor", "conditionaland", "relation", "addition",
                              "multiplication", "unary", "member", "primary"):
        tree = tree.children[0]
    return tree


def _check_has_macros(tree: lark.Tree) -> None:
    """cel-go's parser refuses ``has()`` of an optional select, whose presence it cannot test."""
    for node in tree.find_data("ident_arg"):
        if node.children and node.children[0] == "has" and len(node.children) == 2:
            args = node.children[1].children
            if len(args) == 1 and getattr(_inner(args[0]), "data", None) in ("member_dot_opt", "member_index_opt"):
                raise CELParseError("invalid argument to has() macro", line=node.meta.line, column=node.meta.column)


def _is_ident(tree: Any, name: str) -> bool:
    node = _inner(tree)
    return isinstance(node, lark.Tree) and node.data == "ident" and node.children[0] == name


# ---------------------------------------------------------------------------------------- evaluator
def _evaluated(value: Any) -> lark.Tree:
    """A parse node standing for an already evaluated operand (``OptionalEvaluator.evaluated``),
    so that celpy's own select/index code runs on it without evaluating the operand again."""
    return lark.Tree("evaluated", [value])


class OptionalEvaluator(Evaluator):
    """celpy's tree-walking ``Evaluator`` with the optional forms."""

    def sub_evaluator(self, ast: lark.Tree) -> Evaluator:
        return OptionalEvaluator(ast, activation=self.activation)

    def _visit_tree(self, tree: lark.Tree) -> Any:
        """Every node's evaluation, charged to the evaluation's cost tracker if it has one
        (``celcost``: Kubernetes' per-call cost limit)."""
        tracker = celcost.CURRENT.get()
        if tracker is None:
            return super()._visit_tree(tree)
        data, n = tree.data, len(tree.children)
        tracker.charge(celcost.node_cost(data, n))
        result = super()._visit_tree(tree)
        extra = celcost.result_cost(data, n, result)
        if extra:
            tracker.charge(extra)
        return result

    def evaluated(self, tree: lark.Tree) -> Any:
        return tree.children[0]

    def member_dot(self, tree: lark.Tree) -> Any:
        member_tree, name = tree.children
        member = self.visit(member_tree)
        if isinstance(member, OptionalValue):
            return _opt_field(member, str(name), tree)
        if type(member) is ct.MapType:  # the common case, as celpy's member_dot does it
            try:
                return member[name.value]
            except KeyError:
                return CELEvalError(f"no such member in mapping: {name.value!r}", KeyError, None, tree=tree)
        return super().member_dot(lark.Tree("member_dot", [_evaluated(member), name], meta=tree.meta))

    def member_dot_opt(self, tree: lark.Tree) -> Any:
        member_tree, name = tree.children
        return _opt_field(self.visit(member_tree), str(name), tree)

    def member_index(self, tree: lark.Tree) -> Any:
        member_tree, index_tree = tree.children
        member = self.visit(member_tree)
        index = self.visit(index_tree)
        if isinstance(member, OptionalValue):
            return _opt_index(member, index, tree)
        return super().member_index(lark.Tree("member_index", [_evaluated(member), _evaluated(index)], meta=tree.meta))

    def member_index_opt(self, tree: lark.Tree) -> Any:
        member_tree, index_tree = tree.children
        member = self.visit(member_tree)
        return _opt_index(member, self.visit(index_tree), tree)

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        member_tree, method = tree.children[:2]
        args: list[Any] = list(tree.children[2].children) if len(tree.children) == 3 else []
        if method in _CONSTRUCTORS and _is_ident(member_tree, "optional"):
            # a qualified function name, as cel-go's checker resolves ``optional.of`` first
            values = self.visit(tree.children[2]) if args else ct.ListType()
            return self.function_eval(lark.Token("IDENT", f"optional.{method}"), values)
        if method in ("or", "orValue") and len(args) == 1:
            return self._or(str(method), self.visit(member_tree), args[0], tree)
        return super().member_dot_arg(tree)

    def _or(self, method: str, target: Any, alternative: lark.Tree, tree: lark.Tree) -> Any:
        """``o.or(p)`` / ``o.orValue(v)``: the argument is evaluated only when ``o`` is none."""
        if isinstance(target, CELEvalError):
            return target
        if not isinstance(target, OptionalValue):
            return _err(f"no such overload: {method}", tree)
        if target.has_value:
            return target if method == "or" else target.value
        alt = self.visit(alternative)
        if method == "or" and not isinstance(alt, (OptionalValue, CELEvalError)):
            return _err("no such overload: or", tree)
        return alt

    def listinit(self, tree: lark.Tree) -> Any:
        out: list[Any] = []
        for child in tree.children:
            if child.data == "opt_expr":
                v = _entry_optional(self.visit(child.children[0]), "list element")
                if isinstance(v, CELEvalError):
                    return v
                if v.has_value:
                    out.append(v.value)
                continue
            v = self.visit(child)
            if isinstance(v, CELEvalError):
                return v
            out.append(v)
        return ct.ListType(out)

    def mapinits(self, tree: lark.Tree) -> Any:
        pairs = list(zip(tree.children[0::2], tree.children[1::2]))
        if not any(k.data == "opt_expr" for k, _ in pairs):
            return super().mapinits(tree)
        result = ct.MapType()
        for key_node, value_node in pairs:
            optional = key_node.data == "opt_expr"
            key = self.visit(key_node.children[0] if optional else key_node)
            if isinstance(key, CELEvalError):
                return key
            value = self.visit(value_node)
            if optional:
                value = _entry_optional(value, f"entry '{key}'")
                if isinstance(value, CELEvalError):
                    return value
                if not value.has_value:
                    continue
                value = value.value
            if key in result:
                raise ValueError(f"Duplicate key {key!r}")  # celpy's primary() makes it an error value
            result[key] = value
        return result

    def fieldinits(self, tree: lark.Tree) -> Any:
        pairs = list(zip(tree.children[0::2], tree.children[1::2]))
        if not any(isinstance(f, lark.Tree) for f, _ in pairs):
            return super().fieldinits(tree)
        fields: dict[str, Any] = {}
        for field_node, value_node in pairs:
            optional = isinstance(field_node, lark.Tree)  # opt_field
            name = str(field_node.children[0] if optional else field_node)
            value = self.visit(value_node)
            if optional:
                value = _entry_optional(value, f"field '{name}'")
                if isinstance(value, CELEvalError):
                    return value
                if not value.has_value:
                    continue
                value = value.value
            if name in fields:
                raise ValueError(f"Duplicate field label {name!r}")
            fields[name] = value
        return ct.MessageType(**fields)


class OptionalRunner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return OptionalEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


class OptionalEnvironment(celpy.Environment):
    """``celpy.Environment`` with the optional syntax and runner. celpy's ``__init__`` would also
    build its stock Lark parser (~0.2 s of CPU) that this environment never uses, so the few
    attributes it sets are set here."""

    def __init__(self) -> None:  # noqa: D107 - no super(): see above
        sys.setrecursionlimit(max(sys.getrecursionlimit(), 2500))
        self.logger = logging.getLogger("celpy.Environment")
        self.package: str | None = None
        self.annotations: dict[str, Any] = dict(celpy.googleapis)
        self.runner_class = OptionalRunner
        self.cel_parser = OptionalParser()
