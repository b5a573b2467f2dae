"""CEL (the Common Expression Language) as Kubernetes uses it in admission: compiling an
expression once (cached by its text) and evaluating it over JSON values.

The engine is PyPI ``cel-python`` (``celpy``): the standard CEL library, macros (``has``,
``all``, ``exists``, ``map``, ``filter``), string functions (``startsWith``, ``matches``, ...);
Kubernetes' extension libraries (lists, regex, strings, sets, quantities, URLs, IPs/CIDRs, the
``authorizer``) come from ``cellibs.py``; cel-go's optional types (``a.?b``, ``optional.of``,
``.orValue``, on in Kubernetes 1.32) from ``celoptional.py``, whose environment parses and
evaluates every expression. Users: the apiserver's ValidatingAdmissionPolicy and webhook ``matchConditions``
(``apiserver/admission``), its validation of those objects (the compile check).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import celpy

from controlplane.machinery import celcost, celoptional, cellibs


@lru_cache(maxsize=1)
def _env() -> Any:
    """The CEL environment, built on first use: building it (its Lark parser) takes ~0.1 s of
    CPU, which an apiserver starting with no CEL expression to compile need not spend."""
    return celoptional.OptionalEnvironment()


@lru_cache(maxsize=1)
def _functions() -> dict[str, Any]:
    return {**cellibs.functions(dict(celpy.evaluation.base_functions)), **celoptional.FUNCTIONS}


class CELError(Exception):
    """An expression that does not compile, or fails to evaluate."""


class CELCostError(CELError):
    """An evaluation stopped at the per-call cost limit (``operation cancelled: actual cost
    limit exceeded``), or one whose cost the request's budget could not pay
    (``out_of_budget``: Kubernetes then runs no further rule of the request)."""

    def __init__(self, message: str, out_of_budget: bool = False) -> None:
        super().__init__(message)
        self.out_of_budget = out_of_budget


@lru_cache(maxsize=4096)
def compile_expression(expr: str) -> Any:
    """The runnable program of ``expr`` (raises ``CELError`` with the parser's message)."""
    try:
        env = _env()
        return env.program(env.compile(expr), functions=_functions())
    except Exception as e:  # celpy raises its own parse errors (CELParseError, ...)
        raise CELError(f"compilation failed: {_one_line(e)}") from None


def compile_error(expr: Any) -> str | None:
    """Why ``expr`` does not compile, or None."""
    if not isinstance(expr, str) or not expr.strip():
        return "compilation failed: empty expression"
    try:
        compile_expression(expr)
    except CELError as e:
        return str(e)
    return None


def to_cel(value: Any) -> Any:
    """A JSON value (or a value ``evaluate`` returned, library values such as quantities and
    optionals included) as CEL sees it."""
    if isinstance(value, cellibs.LIB_TYPES) or isinstance(value, celoptional.OptionalValue):
        return value
    if isinstance(value, dict):
        return celpy.celtypes.MapType({celpy.celtypes.StringType(k): to_cel(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return celpy.celtypes.ListType([to_cel(v) for v in value])
    return celpy.json_to_cel(value)


def authorizer(decide: cellibs.Decide, user: Any, request: dict[str, str] | None) -> Any:
    """The ``authorizer`` variable of a ValidatingAdmissionPolicy (``cellibs.Authorizer``)."""
    return cellibs.Authorizer(decide, user, request)


def evaluate(expr: str, activation: dict[str, Any], budget: celcost.Budget | None = None,
             limit: int | None = None) -> Any:
    """Evaluate ``expr``; ``activation`` values already converted with ``to_cel``. The result is
    a Python value (bool, str, int, float, list, dict); raises ``CELError``.

    The evaluation stops at ``limit`` cost units (default: Kubernetes' per-call limit,
    ``celcost.PER_CALL_LIMIT``) with
    ``CELCostError``; its actual cost is then taken from ``budget`` (a request's runtime budget,
    shared by its evaluations), and a cost the budget cannot pay is ``CELCostError`` with
    ``out_of_budget`` whatever the result was, as kube-apiserver checks the cost first."""
    program = compile_expression(expr)
    tracker = celcost.Tracker(celcost.PER_CALL_LIMIT if limit is None else limit)
    token = celcost.CURRENT.set(tracker)
    try:
        out = program.evaluate({**cellibs.NAMESPACES, **activation})
    except celcost.CostLimitExceeded:
        out = None
    except Exception as e:
        out = CELError(_one_line(e))
    finally:
        celcost.CURRENT.reset(token)
    if budget is not None:
        if tracker.cost > budget.remaining:
            budget.remaining = -1
            raise CELCostError(celcost.OUT_OF_BUDGET, out_of_budget=True)
        budget.remaining -= tracker.cost
    if tracker.exceeded:
        raise CELCostError(celcost.LIMIT_EXCEEDED)
    if isinstance(out, CELError):
        raise out
    if isinstance(out, celpy.CELEvalError):
        raise CELError(_one_line(out))
    return _plain(out)


def _plain(v: Any) -> Any:
    if isinstance(v, celpy.celtypes.BoolType):
        return bool(v)
    if isinstance(v, (celpy.celtypes.IntType, celpy.celtypes.UintType)):
        return int(v)
    if isinstance(v, celpy.celtypes.DoubleType):
        return float(v)
    if isinstance(v, celpy.celtypes.StringType):
        return str(v)
    if isinstance(v, celpy.celtypes.ListType):
        return [_plain(x) for x in v]
    if isinstance(v, cellibs.Authorizer):
        return v
    if isinstance(v, celpy.celtypes.MapType):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _one_line(e: Any) -> str:
    args = getattr(e, "args", None)
    text = str(args[0]) if args else str(e)
    # celpy's "undeclared reference to 'x' (in activation '...')" dumps every variable and function
    text = text.split(" (in activation ")[0]
    return " ".join(text.split())
