"""Validation of a JobSpec's failure and success policies (``pkg/apis/batch/validation`` of
Kubernetes 1.31-1.32): ``backoffLimitPerIndex`` / ``maxFailedIndexes`` (Indexed only, their
limits), ``podFailurePolicy`` (at most 20 rules; actions; ``onExitCodes`` with operator In /
NotIn, 1-255 ordered unique values, no 0 with In, a container name from the template;
``onPodConditions`` with qualified type and True/False/Unknown status; exactly one of the two),
``successPolicy`` (Indexed only; 1-20 rules of ``succeededIndexes`` in the interval form,
``succeededCount`` within completions) and ``podReplacementPolicy``. Messages and field paths
as Kubernetes reports them. Caller: ``batch.job_spec``.
"""

from __future__ import annotations

import json
from typing import Any

from controlplane.apiserver.meta.names import Errors, qualified_name_error
from controlplane.machinery.jobindexes import IndexesFormatError, validate_indexes_format

Obj = dict[str, Any]

MAX_FAILED_INDEXES = 100_000  # maxFailedIndexesForIndexedJob
COMPLETIONS_SOFT_LIMIT = 100_000
PARALLELISM_LIMIT_HIGH_COMPLETIONS = 10_000
MAX_FAILED_INDEXES_HIGH_COMPLETIONS = 10_000
MAX_RULES = 20  # maxPodFailurePolicyRules
MAX_EXIT_CODES = 255
MAX_CONDITION_PATTERNS = 20
MAX_SUCCEEDED_INDEXES_LEN = 64 * 1024
MAX_SUCCESS_RULES = 20
ACTIONS = ("Count", "FailIndex", "FailJob", "Ignore")  # sets.List order
OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("False", "True", "Unknown")
REPLACEMENT_POLICIES = ("Failed", "TerminatingOrFailed")


def _go_list(values: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _int32s(values: Any) -> str:
    """Go's ``%#v`` of a ``[]int32``."""
    if values is None:
        return "[]int32(nil)"
    return "[]int32{" + ", ".join(str(v) for v in values) + "}"


def too_many(errs: Errors, path: str, n: int, limit: int) -> None:
    errs.add("FieldValueTooMany", path, f"Too many: {n}: must have at most {limit} items")


def invalid_raw(errs: Errors, path: str, raw: str, detail: str) -> None:
    errs.add("FieldValueInvalid", path, f"Invalid value: {raw}: {detail}")


def invalid_omit(errs: Errors, path: str, detail: str) -> None:
    """``field.Invalid`` with ``field.OmitValueType{}``: no value shown."""
    errs.add("FieldValueInvalid", path, f"Invalid value: {detail}")


def per_index(spec: Obj, errs: Errors, path: str) -> None:
    """``backoffLimitPerIndex`` and ``maxFailedIndexes``."""
    limit, max_failed = spec.get("backoffLimitPerIndex"), spec.get("maxFailedIndexes")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    for key, v in (("backoffLimitPerIndex", limit), ("maxFailedIndexes", max_failed)):
        if isinstance(v, int) and v < 0:
            errs.invalid(f"{path}.{key}", v, "must be greater than or equal to 0")
    if max_failed is not None and limit is None:
        errs.required(f"{path}.backoffLimitPerIndex", "when maxFailedIndexes is specified")
    if spec.get("completionMode") == "Indexed":
        if isinstance(completions, int) and isinstance(max_failed, int) and max_failed > completions:
            errs.invalid(f"{path}.maxFailedIndexes", max_failed, "must be less than or equal to completions")
        if isinstance(max_failed, int) and max_failed > MAX_FAILED_INDEXES:
            errs.invalid(f"{path}.maxFailedIndexes", max_failed, f"must be less than or equal to {MAX_FAILED_INDEXES}")
        if isinstance(completions, int) and completions > COMPLETIONS_SOFT_LIMIT and limit is not None:
            tail = f"when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
            if max_failed is None:
                errs.required(f"{path}.maxFailedIndexes",
                              f"must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}")
            if isinstance(parallelism, int) and parallelism > PARALLELISM_LIMIT_HIGH_COMPLETIONS:
                errs.invalid(f"{path}.parallelism", parallelism,
                             f"must be less than or equal to {PARALLELISM_LIMIT_HIGH_COMPLETIONS} {tail}")
            if isinstance(max_failed, int) and max_failed > MAX_FAILED_INDEXES_HIGH_COMPLETIONS:
                errs.invalid(f"{path}.maxFailedIndexes", max_failed,
                             f"must be less than or equal to {MAX_FAILED_INDEXES_HIGH_COMPLETIONS} {tail}")
    else:
        for key, v in (("backoffLimitPerIndex", limit), ("maxFailedIndexes", max_failed)):
            if v is not None:
                errs.invalid(f"{path}.{key}", v, "requires indexed completion mode")


def pod_failure_policy(spec: Obj, errs: Errors, path: str) -> None:
    """``validatePodFailurePolicy``."""
    policy = spec.get("podFailurePolicy")
    if not isinstance(policy, dict):
        return
    rules = policy.get("rules") or []
    if len(rules) > MAX_RULES:
        too_many(errs, f"{path}.rules", len(rules), MAX_RULES)
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    names = {c.get("name") for key in ("containers", "initContainers") for c in pod_spec.get(key) or []
             if isinstance(c, dict)}
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            _pfp_rule(spec, rule, errs, f"{path}.rules[{i}]", names)


def _pfp_rule(spec: Obj, rule: Obj, errs: Errors, path: str, names: set[Any]) -> None:
    action = rule.get("action")
    if not action:
        errs.required(f"{path}.action", f"valid values: {_go_list(list(ACTIONS))}")
    elif action == "FailIndex":
        if spec.get("backoffLimitPerIndex") is None:
            errs.invalid(f"{path}.action", action, "requires the backoffLimitPerIndex to be set")
    elif action not in ACTIONS:
        errs.not_supported(f"{path}.action", action, ACTIONS)
    on_exit, on_conds = rule.get("onExitCodes"), rule.get("onPodConditions")
    if on_exit is not None:
        _on_exit_codes(on_exit, errs, f"{path}.onExitCodes", names)
    if on_conds:
        _on_pod_conditions(on_conds, errs, f"{path}.onPodConditions")
    if on_exit is not None and on_conds:
        invalid_omit(errs, path, "specifying both OnExitCodes and OnPodConditions is not supported")
    if on_exit is None and not on_conds:
        invalid_omit(errs, path, "specifying one of OnExitCodes and OnPodConditions is required")


def _on_exit_codes(req: Obj, errs: Errors, path: str, names: set[Any]) -> None:
    op = req.get("operator")
    if not op:
        errs.required(f"{path}.operator", f"valid values: {_go_list(list(OPERATORS))}")
    elif op not in OPERATORS:
        errs.not_supported(f"{path}.operator", op, OPERATORS)
    name = req.get("containerName")
    if name is not None and name not in names:
        errs.invalid(f"{path}.containerName", name,
                     "must be one of the container or initContainer names in the pod template")
    values = req.get("values")
    if not values:
        invalid_raw(errs, f"{path}.values", _int32s(values), "at least one value is required")
    elif len(values) > MAX_EXIT_CODES:
        too_many(errs, f"{path}.values", len(values), MAX_EXIT_CODES)
    else:
        seen: set[int] = set()
        ordered = True
        for j, v in enumerate(values):
            if op == "In" and v == 0:
                errs.invalid(f"{path}.values[{j}]", v, "must not be 0 for the In operator")
            if v in seen:
                errs.duplicate(f"{path}.values[{j}]", v)
            seen.add(v)
            if j > 0 and values[j - 1] > v:
                ordered = False
        if not ordered:
            invalid_raw(errs, f"{path}.values", _int32s(values), "must be ordered")


def _on_pod_conditions(patterns: list[Any], errs: Errors, path: str) -> None:
    if len(patterns) > MAX_CONDITION_PATTERNS:
        too_many(errs, path, len(patterns), MAX_CONDITION_PATTERNS)
    for j, pattern in enumerate(patterns):
        if not isinstance(pattern, dict):
            continue
        ctype = pattern.get("type") or ""
        msg = qualified_name_error(ctype)
        if msg:
            errs.invalid(f"{path}[{j}].type", ctype, msg)
        status = pattern.get("status")
        if not status:
            errs.required(f"{path}[{j}].status", f"valid values: {_go_list(list(CONDITION_STATUSES))}")
        elif status not in CONDITION_STATUSES:
            errs.not_supported(f"{path}[{j}].status", status, CONDITION_STATUSES)


def success_policy(spec: Obj, errs: Errors, path: str) -> None:
    """``validateSuccessPolicy`` (Indexed Jobs only)."""
    policy = spec.get("successPolicy")
    if policy is None:
        return
    if spec.get("completionMode") != "Indexed":
        errs.invalid(path, policy, "requires indexed completion mode")
        return
    rules = (policy or {}).get("rules") or []
    if not rules:
        errs.required(f"{path}.rules", "at least one rules must be specified when the successPolicy is specified")
    if len(rules) > MAX_SUCCESS_RULES:
        too_many(errs, f"{path}.rules", len(rules), MAX_SUCCESS_RULES)
    completions = spec.get("completions")
    completions = completions if isinstance(completions, int) else 0
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            _success_rule(rule, completions, errs, f"{path}.rules[{i}]")


def _success_rule(rule: Obj, completions: int, errs: Errors, path: str) -> None:
    indexes, count = rule.get("succeededIndexes"), rule.get("succeededCount")
    total = 0
    if indexes is not None:
        if len(indexes) > MAX_SUCCEEDED_INDEXES_LEN:
            errs.add("FieldValueTooLong", f"{path}.succeededIndexes",
                     f"Too long: may not be longer than {MAX_SUCCEEDED_INDEXES_LEN}")
        try:
            total = validate_indexes_format(indexes, completions)
        except IndexesFormatError as e:
            errs.invalid(f"{path}.succeededIndexes", indexes, f"error parsing succeededIndexes: {e}")
    if count is not None:
        if isinstance(count, int) and count < 0:
            errs.invalid(f"{path}.succeededCount", count, "must be greater than or equal to 0")
        if isinstance(count, int) and count > completions:
            errs.invalid(f"{path}.succeededCount", count,
                         f"must be less than or equal to {completions} (the number of specified completions)")
        if indexes is not None and isinstance(count, int) and count > total:
            errs.invalid(f"{path}.succeededCount", count,
                         f"must be less than or equal to {total} "
                         "(the number of indexes in the specified succeededIndexes field)")
    if count is None and indexes is None:
        errs.required(path, "at least one of succeededCount or succeededIndexes must be specified")


def pod_replacement_policy(spec: Obj, errs: Errors, path: str) -> None:
    policy = spec.get("podReplacementPolicy")
    if policy is None:
        return
    if spec.get("podFailurePolicy") is not None:
        if policy != "Failed":
            errs.not_supported(path, policy, ("Failed",))
    elif policy not in REPLACEMENT_POLICIES:
        errs.not_supported(path, policy, REPLACEMENT_POLICIES)


def restart_policy_for_policies(spec: Obj, errs: Errors, path: str) -> None:
    """Only ``Never`` with a podFailurePolicy or backoffLimitPerIndex (the restart policy
    itself is checked by the template's validation)."""
    rp = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if rp != "OnFailure":
        return
    if spec.get("podFailurePolicy") is not None:
        errs.invalid(f"{path}.template.spec.restartPolicy", rp,
                     'only "Never" is supported when podFailurePolicy is specified')
    elif spec.get("backoffLimitPerIndex") is not None:
        errs.invalid(f"{path}.template.spec.restartPolicy", rp,
                     'only "Never" is supported when backoffLimitPerIndex is specified')


def immutable_fields(spec: Obj, old: Obj, errs: Errors, path: str) -> None:
    """``ValidateJobSpecUpdate``: the policies cannot change on a live Job."""
    for key in ("podFailurePolicy", "backoffLimitPerIndex", "successPolicy"):
        if spec.get(key) != old.get(key):
            errs.invalid(f"{path}.{key}", spec.get(key), "field is immutable")
