"""CEL's runtime cost limit and budget (``machinery/celcost.py`` through ``cel.evaluate``),
table-driven: what is charged, that the limit stops an evaluation even inside the macros that
swallow errors, and that a budget is shared and checked before the result."""

from __future__ import annotations

import pytest

from controlplane.machinery import cel, celcost


def run(expr, limit=None, budget=None, **values):
    return cel.evaluate(expr, {k: cel.to_cel(v) for k, v in values.items()}, budget, limit)


def cost_of(expr, **values):
    budget = celcost.Budget(10**9)
    run(expr, budget=budget, **values)
    return 10**9 - budget.remaining


@pytest.mark.parametrize("expr,values,low,high", [
    ("1 == 1", {}, 1, 5),
    ("x.a + 1 == 2", {"x": {"a": 1}}, 3, 10),
    # a comprehension's body is charged once per element
    ("l.all(e, e >= 0)", {"l": list(range(100))}, 200, 800),
    ("l.all(e, e >= 0)", {"l": list(range(1000))}, 2000, 8000),
    # building a long string or list is charged by its size
    ("size(s + s) > 0", {"s": "x" * 10000}, 2000, 2100),
])
def test_costs(expr, values, low, high):
    assert low <= cost_of(expr, **values) <= high


@pytest.mark.parametrize("expr", [
    "l.all(x, l.all(y, x + y >= 0))",
    # exists/all turn errors into values: the limit must still end the evaluation
    "l.exists(x, l.exists(y, x == y + 1000))",
    "l.map(x, l + l).size() > 0",
])
def test_limit_stops_the_evaluation(expr):
    with pytest.raises(cel.CELCostError) as e:
        run(expr, limit=5000, l=list(range(200)))
    assert str(e.value) == "operation cancelled: actual cost limit exceeded"
    assert not e.value.out_of_budget


def test_budget_is_shared_and_checked_before_the_result():
    budget = celcost.Budget(1000)
    assert run("l.all(x, x >= 0)", budget=budget, l=list(range(100))) is True
    left = budget.remaining
    assert 0 < left < 1000
    # the next evaluation costs more than what is left: out of budget, even though it is true
    with pytest.raises(cel.CELCostError) as e:
        run("l.all(x, x >= 0)", budget=budget, l=list(range(1000)))
    assert e.value.out_of_budget
    assert str(e.value) == ("validation failed due to running out of cost budget, "
                            "no further validation rules will be run")
    assert budget.remaining < 0


def test_errors_other_than_cost_are_unchanged():
    with pytest.raises(cel.CELError) as e:
        run("1 / x == 1", x=0)
    assert not isinstance(e.value, cel.CELCostError)
