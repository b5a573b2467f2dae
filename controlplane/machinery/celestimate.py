"""CEL's static cost estimate: the worst-case cost of an expression, from its parse tree and the
schema of the values it reads, computed before it ever runs.

kube-apiserver refuses a CRD whose validation rule could cost more than
``celconfig.PerCallLimit`` (1,000,000) in one evaluation, or whose rules together could cost
more than ``StaticEstimatedCRDCostLimit`` (100,000,000) on one object, using cel-go's
``checker.Cost`` with apiextensions' size estimator: a list's length is its ``maxItems``, a
string's its ``maxLength``, a map's its ``maxProperties``, and where there is no bound, what the
largest request (3 MiB) could hold of the smallest serialized element. A rule's cost is then
multiplied by the cardinality of its schema node (the product of the bounds of the lists and
maps above it). ``crd/rules.check_rules`` applies both checks with this module.

The estimate here walks cel-python's parse tree (``celoptional.OptionalParser``) and must never
be below what ``celcost``'s runtime charging takes for any value the schema admits (else the
check lets through rules that then stop at the limit); it is also kept at or above cel-go's
estimate where cel-go's is higher (string functions by string length, regular expressions by
string x pattern length, ``in`` by list length, list and map literals' base costs, the loop
overhead of a comprehension), so that what Kubernetes refuses is refused here. Per node:

- the runtime units: one per operation node (``celcost.node_cost``; plus the one or two
  "evaluated" nodes ``OptionalEvaluator`` visits for a select or an index), a tenth of the
  largest string, list or map a builder node can give (``celcost.result_cost``);
- cel-go's units for the same node where they are higher; the larger of the two is charged;
- a comprehension's body (``all``, ``exists``, ``exists_one``, ``map``, ``filter``) once per
  element of the largest list or map it iterates, plus cel-go's loop overhead per element.

Written by hand: cel-go's estimator works on its type-checked AST, which cel-python does not
build. Neighbours: ``celcost.py`` (the runtime charging this bounds), ``celoptional.py`` (the
parser), ``apiserver/crd/rules.py`` (the CRD-write checks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lark

from controlplane.machinery import celcost, celoptional

Obj = dict[str, Any]

MAX_REQUEST_BYTES = 3 * 1024 * 1024  # apiservercel.DefaultMaxRequestSizeBytes
MAX_STRING = MAX_REQUEST_BYTES - 2  # estimateMaxStringLengthPerRequest: less the quotes
STATIC_CRD_COST_LIMIT = 100_000_000  # apiextensions validation.StaticEstimatedCRDCostLimit
PER_CALL_LIMIT = celcost.PER_CALL_LIMIT  # StaticEstimatedCostLimit

_MACROS = {"all", "exists", "exists_one", "map", "filter"}
# cel-go's cost of a comprehension's loop condition and step beyond the body, per element
# (all: @not_strictly_false(accu) + accu && body; map: accu + [body]; filter: body ? accu + [x] : accu)
_LOOP_OVERHEAD = {"all": 3, "exists": 4, "exists_one": 3, "map": 13, "filter": 14}
# functions giving a library value (no string, list or map: the runtime charges no size for
# it); its shape's size is that of the text it was parsed from, for the methods reading it
_LIBRARY_VALUES = frozenset({"url", "ip", "cidr", "masked"})
_WRAPPERS = ("expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
             "unary", "member", "primary")


@dataclass(frozen=True)
class Shape:
    """What the estimator knows of a value: its structural schema (None: unknown) and the
    largest ``len()`` it can have if it is a string, bytes, list or map (0: a scalar)."""

    schema: Obj | None
    size: int


UNKNOWN = Shape(None, MAX_REQUEST_BYTES)
SCALAR = Shape(None, 0)
_STRING_SCHEMA: Obj = {"type": "string"}


def _ceil(x: float) -> int:
    return int(math.ceil(x))


def _trav(size: int) -> int:
    """cel-go's cost of traversing a string of ``size`` once (``StringTraversalCostFactor``)."""
    return _ceil(size * 0.1)


def _is_map(schema: Obj) -> bool:
    return isinstance(schema.get("additionalProperties"), dict) or schema.get("additionalProperties") is True \
        or schema.get("x-kubernetes-preserve-unknown-fields") is True


def min_size_json(schema: Any) -> int:
    """apiextensions' ``estimateMinSizeJSON``: the fewest bytes a value of ``schema`` takes in
    JSON (an object: its required properties without a default)."""
    if not isinstance(schema, dict):
        return 1
    if schema.get("x-kubernetes-int-or-string"):
        return 1
    t = schema.get("type")
    if t == "boolean":
        return 4
    if t in ("number", "integer"):
        return 1
    if t == "string":
        return 2
    if t == "array":
        return 2
    if t == "object":
        size = 2
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            prop = props.get(name)
            if isinstance(prop, dict) and "default" not in prop:
                size += len(str(name)) + min_size_json(prop) + 4
        return size
    return 1


def max_cardinality(min_size: int) -> int:
    """apiextensions' ``MaxCardinality``: how often a value of at least ``min_size`` bytes can
    occur in the largest request (one comma between two)."""
    return MAX_REQUEST_BYTES // (min_size + 1)


def max_size(schema: Any) -> int:
    """The largest ``len()`` of a value of ``schema``: ``maxLength`` / ``maxItems`` /
    ``maxProperties``, else what the largest request can hold (apiextensions'
    ``estimateMaxStringLengthPerRequest`` / ``estimateMaxArrayItemsFromMinSize`` /
    ``estimateMaxAdditionalPropertiesFromMinSize``)."""
    if not isinstance(schema, dict):
        return MAX_REQUEST_BYTES
    t = schema.get("type")
    if t == "string" or schema.get("x-kubernetes-int-or-string"):
        bound = schema.get("maxLength")
        return int(bound) if isinstance(bound, int) and bound >= 0 else MAX_STRING
    if t == "array":
        bound = schema.get("maxItems")
        if isinstance(bound, int) and bound >= 0:
            return bound
        return (MAX_REQUEST_BYTES - 2) // (min_size_json(schema.get("items")) + 1)
    if t in ("integer", "number", "boolean"):
        return 0
    bound = schema.get("maxProperties")
    if isinstance(bound, int) and bound >= 0:
        return bound
    props = schema.get("properties")
    if _is_map(schema) or schema.get("x-kubernetes-embedded-resource") or not props:
        addl = schema.get("additionalProperties")
        return (MAX_REQUEST_BYTES - 2) // (min_size_json(addl if isinstance(addl, dict) else None) + 6)
    # pruned objects hold only their properties (apiVersion, kind and metadata at a resource's root)
    return len(props) + 3


def shape_of(schema: Any) -> Shape:
    if not isinstance(schema, dict):
        return UNKNOWN
    return Shape(schema, max_size(schema))


def _field(shape: Shape, name: str) -> Shape:
    s = shape.schema
    if s is None:
        return UNKNOWN
    props = s.get("properties") or {}
    if name in props:
        return shape_of(props[name])
    if isinstance(s.get("additionalProperties"), dict):
        return shape_of(s["additionalProperties"])
    return UNKNOWN


def _element(shape: Shape) -> Shape:
    """A list's item, or a map's key (what a comprehension over it binds)."""
    s = shape.schema
    if s is None:
        return UNKNOWN
    if s.get("type") == "array":
        return shape_of(s.get("items"))
    if s.get("type") == "string":
        return UNKNOWN
    if _is_map(s) or not s.get("properties"):
        return Shape(_STRING_SCHEMA, MAX_STRING)
    return Shape(_STRING_SCHEMA, max(len(k) for k in s["properties"]) + 10)


def _index(shape: Shape) -> Shape:
    s = shape.schema
    if s is None:
        return UNKNOWN
    if s.get("type") == "array":
        return shape_of(s.get("items"))
    if isinstance(s.get("additionalProperties"), dict):
        return shape_of(s["additionalProperties"])
    return UNKNOWN


def _union(a: Shape, b: Shape) -> Shape:
    schema = a.schema if a.schema is not None and a.schema == b.schema else None
    if a.size == 0 and b.size == 0:
        return SCALAR
    return Shape(schema, max(a.size, b.size))


def _ident_name(tree: Any) -> str | None:
    node = celoptional._inner(tree)
    if isinstance(node, lark.Tree) and node.data == "ident":
        return str(node.children[0])
    return None


class _Estimator:
    """One walk of a parse tree; ``visit`` gives (cost, shape) of a node."""

    def visit(self, node: Any, env: dict[str, Shape]) -> tuple[int, Shape]:
        if not isinstance(node, lark.Tree):
            return 0, UNKNOWN
        if node.data in _WRAPPERS and len(node.children) < 2:
            if not node.children:
                return 0, UNKNOWN
            return self.visit(node.children[0], env)
        handler = getattr(self, f"n_{node.data}", None)
        if handler is not None:
            return handler(node, env)
        return self.generic(node, env)

    def generic(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost = celcost.node_cost(node.data, len(node.children))
        for child in node.children:
            cost += self.visit(child, env)[0]
        return cost, UNKNOWN

    # ------------------------------------------------------------------ operators
    def n_expr(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cond = self.visit(node.children[0], env)[0]
        lc, ls = self.visit(node.children[1], env)
        rc, rs = self.visit(node.children[2], env)
        return 1 + cond + max(lc, rc), _union(ls, rs)

    def _logical(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        left = self.visit(node.children[0], env)[0]
        right = self.visit(node.children[1], env)[0]
        return 1 + left + right, SCALAR

    n_conditionalor = _logical
    n_conditionaland = _logical

    def _binary(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[str, int, Shape, int, Shape]:
        op = node.children[0]
        lc, ls = self.visit(op.children[0], env) if op.children else (0, UNKNOWN)
        rc, rs = self.visit(node.children[1], env)
        return op.data, lc, ls, rc, rs

    def n_relation(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        op, lc, ls, rc, rs = self._binary(node, env)
        ours = 1  # the relation (its operator node is free: celcost._OPERATORS)
        if op == "relation_in":
            celgo = max(1, rs.size)
        else:  # cel-go: equality and ordering of strings, bytes, lists by the smaller size
            celgo = _trav(max(1, min(ls.size, rs.size)))
        return max(ours, celgo) + lc + rc, SCALAR

    def n_addition(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        _op, lc, ls, rc, rs = self._binary(node, env)
        size = ls.size + rs.size
        ours = 1 + size // 10  # a + b may build a string or list of both sizes
        celgo = _trav(size)
        schema = ls.schema if ls.schema is not None and ls.schema.get("type") in ("string", "array") else None
        return max(ours, celgo) + lc + rc, Shape(schema, size)

    def n_multiplication(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        _op, lc, _ls, rc, _rs = self._binary(node, env)
        return 1 + lc + rc, SCALAR

    def n_unary(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost = 1  # the unary (its operator node is free)
        for child in node.children[1:]:
            cost += self.visit(child, env)[0]
        return cost, SCALAR

    # ------------------------------------------------------------------ members
    def n_ident(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        return 1, env.get(str(node.children[0]), UNKNOWN)

    def n_literal(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        token = node.children[0]
        if getattr(token, "type", "") in ("STRING_LIT", "MLSTRING_LIT", "BYTES_LIT"):
            return 1, Shape(_STRING_SCHEMA, len(str(token)))
        return 1, SCALAR

    def n_paren_expr(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, shape = self.visit(node.children[0], env)
        return 1 + cost, shape

    def n_member_dot(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, shape = self.visit(node.children[0], env)
        # the select, and on a value not known to be a map the "evaluated" node
        # OptionalEvaluator passes to celpy's select (a JSON object is a map: no such node)
        known_map = shape.schema is not None and (shape.schema.get("type") == "object" or _is_map(shape.schema))
        return (1 if known_map else 2) + cost, _field(shape, str(node.children[1]))

    def n_member_dot_opt(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, shape = self.visit(node.children[0], env)
        return 1 + cost, _field(shape, str(node.children[1]))

    def n_member_index(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        mc, ms = self.visit(node.children[0], env)
        ic, _ = self.visit(node.children[1], env)
        return 3 + mc + ic, _index(ms)  # the index and its two "evaluated" operand nodes

    def n_member_index_opt(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        mc, ms = self.visit(node.children[0], env)
        ic, _ = self.visit(node.children[1], env)
        return 1 + mc + ic, _index(ms)

    def n_member_object(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, _ = self.generic(node, env)
        return 39 + cost, UNKNOWN  # cel-go: StructCreateBaseCost (40) instead of the node's 1

    # ------------------------------------------------------------------ literals
    def _items(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, list[Shape]]:
        cost, shapes = 0, []
        for child in node.children:
            if isinstance(child, lark.Tree) and child.data in ("opt_expr", "listinit", "exprlist", "mapinits"):
                c, s = self._items(child, env)
                cost += c + 1
                shapes.extend(s)
            else:
                c, s = self.visit(child, env)
                cost += c
                shapes.append(s)
        return cost, shapes

    def n_list_lit(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, shapes = self._items(node, env)
        n = len(shapes)
        items: Obj | None = None
        if shapes and all(s.schema is not None and s.schema == shapes[0].schema for s in shapes):
            items = shapes[0].schema
        elem_size = max((s.size for s in shapes), default=0)
        schema: Obj = {"type": "array", "maxItems": n}
        if items is not None:
            schema["items"] = items
        elif elem_size == 0:
            schema["items"] = {"type": "integer"}
        return max(1 + n // 10, 10) + cost, Shape(schema, n)  # cel-go: ListCreateBaseCost

    def n_map_lit(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, shapes = self._items(node, env)
        n = len(shapes) // 2
        return max(1 + n // 10, 30) + cost, Shape(None, n)  # cel-go: MapCreateBaseCost

    # ------------------------------------------------------------------ calls
    def _args(self, node: lark.Tree, at: int, env: dict[str, Shape]) -> tuple[int, list[Shape], list[lark.Tree]]:
        if len(node.children) <= at or not isinstance(node.children[at], lark.Tree):
            return 0, [], []
        exprlist = node.children[at]
        cost, shapes = 1, []  # the exprlist node
        for child in exprlist.children:
            c, s = self.visit(child, env)
            cost += c
            shapes.append(s)
        return cost, shapes, list(exprlist.children)

    def n_member_dot_arg(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        method = str(node.children[1])
        arg_trees = list(node.children[2].children) if len(node.children) == 3 else []
        if method in _MACROS and len(arg_trees) == 2 and _ident_name(arg_trees[0]) is not None:
            return self._comprehension(node, method, arg_trees, env)
        namespace = _ident_name(node.children[0])
        if namespace in ("optional", "sets", "strings") and namespace not in env:
            target_cost, target = 1, SCALAR
        else:
            target_cost, target = self.visit(node.children[0], env)
            namespace = None
        arg_cost, args, _ = self._args(node, 2, env)
        celgo, result = _method(namespace, method, target, args)
        ours = 1 if method in _LIBRARY_VALUES else 1 + result.size // 10
        return max(ours, celgo) + target_cost + arg_cost, result

    def _comprehension(self, node: lark.Tree, method: str, arg_trees: list[lark.Tree],
                       env: dict[str, Shape]) -> tuple[int, Shape]:
        range_cost, rng = self.visit(node.children[0], env)
        var = _ident_name(arg_trees[0]) or ""
        elem = _element(rng)
        body_cost, body = self.visit(arg_trees[1], {**env, var: elem})
        n = rng.size
        cost = 1 + range_cost + n * (body_cost + _LOOP_OVERHEAD[method]) + 11  # + accu init and result
        if method == "map":
            items = body.schema if body.schema is not None else ({"type": "integer"} if body.size == 0 else None)
            schema: Obj = {"type": "array", "maxItems": n, **({"items": items} if items is not None else {})}
            return cost + n // 10, Shape(schema, n)
        if method == "filter":
            items = rng.schema.get("items") if rng.schema is not None and rng.schema.get("type") == "array" else None
            schema = {"type": "array", "maxItems": n, **({"items": items} if items is not None else {})}
            return cost + n // 10, Shape(schema, n)
        return cost, SCALAR

    def n_ident_arg(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        name = str(node.children[0])
        arg_cost, args, _ = self._args(node, 1, env)
        celgo, result = _function(name, args)
        ours = 1 if name in _LIBRARY_VALUES else 1 + result.size // 10
        return max(ours, celgo) + arg_cost, result

    def n_dot_ident_arg(self, node: lark.Tree, env: dict[str, Shape]) -> tuple[int, Shape]:
        cost, _ = self.generic(node, env)
        return cost + MAX_REQUEST_BYTES // 10, UNKNOWN


def _size(shapes: list[Shape], i: int) -> int:
    return shapes[i].size if i < len(shapes) else 0


def _function(name: str, args: list[Shape]) -> tuple[int, Shape]:
    """cel-go's cost of a global function call (beyond its arguments) and its result's shape."""
    a0 = _size(args, 0)
    if name == "has":
        return 1, SCALAR
    if name == "dyn":
        return 1, args[0] if args else UNKNOWN
    if name in ("size", "int", "uint", "double", "bool", "type", "duration", "timestamp"):
        return 1, SCALAR
    if name in ("string", "bytes"):
        return max(1, _trav(a0)), Shape(_STRING_SCHEMA, max(a0, 64))
    if name == "matches":
        return _trav(a0 + 1) * _ceil(_size(args, 1) * 0.25), SCALAR
    if name in ("quantity", "isQuantity", "url", "isURL", "ip", "isIP", "cidr", "isCIDR"):
        # a library value (not a string, list or map) remembering the size of its text
        return max(1, _trav(a0)), Shape(None, a0 if name in ("url", "ip", "cidr") else 0)
    return 1, UNKNOWN


def _method(namespace: str | None, method: str, target: Shape, args: list[Shape]) -> tuple[int, Shape]:
    """cel-go's cost of a method call (beyond its target and arguments) and its result's shape."""
    s, a0, a1 = target.size, _size(args, 0), _size(args, 1)
    string = Shape(_STRING_SCHEMA, s)
    if namespace == "optional":
        return 1, args[0] if args else SCALAR
    if namespace == "sets":
        return max(1, a0 * max(1, a1)), SCALAR
    if namespace == "strings":  # strings.quote(s): at most ten bytes (\U escapes) per character
        return max(1, _trav(a0)), Shape(_STRING_SCHEMA, 10 * a0 + 2)
    if method in ("or", "orValue"):
        return 1, _union(target, args[0]) if args else target
    if method == "value":
        return 1, target
    if method in ("size", "hasValue", "sign", "isInteger", "asInteger", "asApproximateFloat", "isLessThan",
                  "isGreaterThan", "compareTo", "add", "sub", "family", "isUnspecified", "isLoopback",
                  "isLinkLocalMulticast", "isLinkLocalUnicast", "isGlobalUnicast", "containsIP",
                  "containsCIDR", "prefixLength", "isCanonical", "getPort"):
        return max(1, _trav(a0)), SCALAR if method != "getPort" else Shape(_STRING_SCHEMA, 5)
    if method in ("masked", "ip"):
        return 1, Shape(None, 45)  # an IP or CIDR: at most 45 characters as text
    if method == "contains":
        return max(1, _trav(s) * max(1, _trav(a0))), SCALAR
    if method in ("startsWith", "endsWith"):
        return max(1, _trav(a0)), SCALAR
    if method == "matches":
        return _trav(s + 1) * _ceil(a0 * 0.25), SCALAR
    if method == "find":
        return _trav(s + 1) * _ceil(a0 * 0.25), string
    if method == "findAll":
        return _trav(s + 1) * _ceil(a0 * 0.25), Shape({"type": "array", "items": {"type": "string", "maxLength": s}}, s + 1)
    if method in ("lowerAscii", "upperAscii", "trim", "reverse", "substring"):
        return max(1, _trav(s)), string
    if method == "charAt":
        return max(1, _trav(s)), Shape(_STRING_SCHEMA, 1)
    if method in ("indexOf", "lastIndexOf"):
        if target.schema is not None and target.schema.get("type") == "array":
            return max(1, s * max(1, _trav(a0))), SCALAR
        return max(1, _trav(s) * max(1, _trav(a0))), SCALAR
    if method == "replace":
        return max(1, _trav(s)), Shape(_STRING_SCHEMA, s + (s + 1) * a1)
    if method == "split":
        return max(1, _trav(s)), Shape({"type": "array", "items": {"type": "string", "maxLength": s}}, s + 1)
    if method == "join":
        elem = max_size(target.schema.get("items")) if target.schema is not None and target.schema.get("type") == "array" \
            else MAX_STRING
        total = s * (elem + a0)
        return max(1, _trav(total)), Shape(_STRING_SCHEMA, total)
    if method in ("isSorted", "sum"):  # one comparison or addition per item
        items = target.schema.get("items") if target.schema is not None and target.schema.get("type") == "array" else None
        return max(1, s * max(1, _trav(max_size(items) if items is not None else 1))), SCALAR
    if method in ("max", "min"):
        items = target.schema.get("items") if target.schema is not None and target.schema.get("type") == "array" else None
        return max(1, s), shape_of(items) if items is not None else UNKNOWN
    if method in ("getScheme", "getHost", "getHostname", "getEscapedPath"):
        return 1, string
    if method == "getQuery":
        return 1, Shape(None, s)
    return 1, UNKNOWN


def estimate(expr: str, variables: dict[str, Shape]) -> int:
    """The worst-case cost of ``expr`` (already known to compile) with ``variables`` bound to
    values of the given shapes; identifiers not in ``variables`` are of unknown shape."""
    tree = celoptional.OptionalParser().parse(expr)
    return _Estimator().visit(tree, variables)[0]


def estimate_rule(expr: str, schema: Obj) -> int:
    """A CRD validation rule's worst-case cost at a schema node (``self`` and ``oldSelf``)."""
    shape = shape_of(schema)
    return estimate(expr, {"self": shape, "oldSelf": shape})


def cost_error_message(cost_name: str, cost: int, limit: int) -> str:
    """apiextensions' ``getCostErrorMessage``."""
    factor = cost / limit
    if factor > 100.0:
        text = "more than 100x"
    elif factor < 1.5:
        text = f"{factor:f}x"
    else:
        text = f"{factor:.1f}x"
    return (f"{cost_name} exceeds budget by factor of {text} (try simplifying the rule, or adding maxItems, "
            "maxProperties, and maxLength where arrays, maps, and strings are declared)")
