"""CEL's runtime cost limit, as Kubernetes sets it on every program it runs.

kube-apiserver runs CRD validation rules and ValidatingAdmissionPolicy expressions with
cel-go's ``CostLimit(celconfig.PerCallLimit)`` (1,000,000 units per evaluation) and charges
each evaluation's actual cost to a per-request budget (``celconfig.RuntimeCELCostBudget``,
10,000,000: all the rules of one custom resource, all the expressions of one policy). Without
it, one rule such as ``self.l.all(x, self.l.all(y, self.l.all(z, x == y)))`` over a long list
keeps an apiserver worker busy for hours. cel-python has no cost accounting, so the tracker
here is charged by the evaluator (``celoptional.OptionalEvaluator``) as it walks the parse tree:

- one unit per operation node evaluated (cel-go: one per instruction; a comprehension's body
  is charged once per iteration either way). cel-python's parse tree has a node for each
  operator, call, select, index and comprehension step; the wrappers a lone operand passes
  through (``expr`` / ``conditionalor`` / ... / ``primary`` with one child) and the nodes that
  only name their parent's operator (``relation_le``, ``unary_not``, ...) are not charged, and an
  identifier is read by its parent node (no unit of its own), so a rule costs at most what
  cel-go's instruction count gives (``self.a <= self.b``: 3 units, cel-go 5), not ten times it;
- for a node that builds a string, list or map (a ``+``, a call, a literal, a macro's result),
  a tenth of its size (cel-go's ``common.StringTraversalCostFactor`` / list and map
  construction costs), so copying a long list in a loop is charged by its length.

Where that differs from cel-go: the units are close, not equal (cel-go's per-function cost
table, e.g. regular expressions by pattern and input size, is not reproduced), so a rule near
the limit may pass in one and fail in the other; rules that Kubernetes' own tests use stay far
below it. When the limit is reached the evaluation stops with cel-go's error text
``operation cancelled: actual cost limit exceeded``. Neighbours: ``cel.py`` (``evaluate`` sets
the tracker), ``celoptional.py`` (the evaluator that charges it).
"""

from __future__ import annotations

import contextvars
from typing import Any


PER_CALL_LIMIT = 1_000_000  # celconfig.PerCallLimit
RUNTIME_BUDGET = 10_000_000  # celconfig.RuntimeCELCostBudget

LIMIT_EXCEEDED = "operation cancelled: actual cost limit exceeded"
OUT_OF_BUDGET = "validation failed due to running out of cost budget, no further validation rules will be run"

# operand wrappers of cel-python's grammar: charged only when they do work (two or more children)
_WRAPPERS = frozenset({"expr", "conditionalor", "conditionaland", "relation", "addition", "multiplication",
                       "unary", "member", "primary"})
# nodes whose result may be a new string, list or map, charged by its size
_BUILDERS = frozenset({"addition", "member_dot_arg", "ident_arg", "list_lit", "map_lit"})


class CostLimitExceeded(BaseException):
    """Raised inside an evaluation when its tracker runs out. A ``BaseException``, as asyncio's
    ``CancelledError`` is, so that the evaluator's ``except Exception`` clauses (which turn
    errors into CEL error values) do not swallow the cancellation."""


class Tracker:
    """The actual cost of one evaluation, stopped at ``limit``."""

    __slots__ = ("limit", "cost", "exceeded")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = PER_CALL_LIMIT if limit is None else limit
        self.cost = 0
        self.exceeded = False

    def charge(self, units: int) -> None:
        self.cost += units
        if self.cost > self.limit:
            self.exceeded = True
            raise CostLimitExceeded(LIMIT_EXCEEDED)


class Budget:
    """What is left of a request's runtime budget, shared by its evaluations."""

    __slots__ = ("remaining",)

    def __init__(self, remaining: int | None = None) -> None:
        self.remaining = RUNTIME_BUDGET if remaining is None else remaining


CURRENT: contextvars.ContextVar[Tracker | None] = contextvars.ContextVar("cel_cost_tracker", default=None)


# the nodes that only name an operator for their parent (``relation_le`` under ``relation``,
# ``unary_not`` under ``unary``...): the parent's one unit is the operation's cost, as cel-go
# charges one unit per operator call
_OPERATORS = frozenset({"relation_lt", "relation_le", "relation_gt", "relation_ge", "relation_eq", "relation_ne",
                        "relation_in", "addition_add", "addition_sub", "multiplication_mul", "multiplication_div",
                        "multiplication_mod", "unary_not", "unary_neg"})


def node_cost(data: str, n_children: int) -> int:
    """Units charged for evaluating a parse node (before its result is known)."""
    if data in _WRAPPERS and n_children < 2 or data in _OPERATORS:
        return 0
    return 1


def result_cost(data: str, n_children: int, result: Any) -> int:
    """Units charged for a node's result: a tenth of the size of a string, list or map it
    may have built (a wrapper passing one operand through built nothing)."""
    if data not in _BUILDERS or (data in _WRAPPERS and n_children < 2):
        return 0
    # CEL's strings, bytes, lists and maps are str/bytes/list/dict subclasses, and some of
    # cel-python's operators (``+``) give the plain Python type
    if isinstance(result, (str, bytes, list, dict)):
        return len(result) // 10
    return 0
