"""How the HorizontalPodAutoscaler turns a metric-based recommendation into the replica count
it writes (Kubernetes' ``horizontal.go``), pure with an injected clock:

- without ``spec.behavior``: the highest recommendation of the last 5 minutes
  (``--horizontal-pod-autoscaler-downscale-stabilization``) for scale-downs, then min/max and a
  scale-up limit of ``max(2 * current, 4)`` (conditions ScaleDownStabilized / ReadyForNewScale,
  ScalingLimited with TooFewReplicas / TooManyReplicas / ScaleUpLimit / DesiredWithinRange);
- with ``spec.behavior``: stabilization windows per direction (defaults 0 s up, 300 s down)
  bound the recommendation between the lowest recent one (up) and the highest recent one
  (down); then the scale-up / scale-down policies (Pods or Percent per period, selected by
  Max, Min or Disabled) limit the change against the replicas at the start of each policy's
  period, counted from the scale events this controller made (ScaleUpLimit / ScaleDownLimit).

``default_behavior`` fills a partial ``behavior`` as the API's defaulting does
(``GenerateHPAScaleUpRules`` / ``GenerateHPAScaleDownRules``); ``set_condition`` keeps a
condition's ``lastTransitionTime`` unless its status changes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from controlplane.machinery.timestamps import rfc3339

DOWNSCALE_STABILIZATION = 300.0
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)

Cond = Callable[[str, str, str, str], None]  # type, status, reason, message


def default_behavior(behavior: dict | None) -> dict | None:
    """A behavior with every unset rule filled with Kubernetes' defaults (None stays None)."""
    if behavior is None:
        return None
    b = copy.deepcopy(behavior)
    up = b.get("scaleUp") or {}
    up.setdefault("stabilizationWindowSeconds", 0)
    up.setdefault("selectPolicy", "Max")
    if not up.get("policies"):
        up["policies"] = [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]
    down = b.get("scaleDown") or {}
    down.setdefault("selectPolicy", "Max")
    if not down.get("policies"):
        down["policies"] = [{"type": "Percent", "value": 100, "periodSeconds": 15}]
    b["scaleUp"], b["scaleDown"] = up, down
    return b


def set_condition(conditions: list[dict], ctype: str, status: str, reason: str, message: str, now: float) -> None:
    for c in conditions:
        if c.get("type") == ctype:
            if c.get("status") != status:
                c["lastTransitionTime"] = rfc3339(now)
            c.update(status=status, reason=reason, message=message)
            return
    conditions.append({"type": ctype, "status": status, "lastTransitionTime": rfc3339(now), "reason": reason,
                       "message": message})


@dataclass
class Recommendation:
    replicas: int
    t: float


@dataclass
class ScaleEvent:
    change: int
    t: float
    outdated: bool = False


@dataclass
class Normalizer:
    clock: Callable[[], float]
    downscale_window: float = DOWNSCALE_STABILIZATION
    recommendations: dict[str, list[Recommendation]] = field(default_factory=dict)
    up_events: dict[str, list[ScaleEvent]] = field(default_factory=dict)
    down_events: dict[str, list[ScaleEvent]] = field(default_factory=dict)

    def forget(self, key: str) -> None:
        self.recommendations.pop(key, None)
        self.up_events.pop(key, None)
        self.down_events.pop(key, None)

    def record_initial(self, key: str, current: int) -> None:
        if key not in self.recommendations:
            self.recommendations[key] = [Recommendation(current, self.clock())]

    # -- without behavior ---------------------------------------------------------------------
    def _stabilize(self, key: str, desired: int) -> int:
        now = self.clock()
        best = desired
        cutoff = now - self.downscale_window
        recs = self.recommendations.setdefault(key, [])
        old = -1
        for i, r in enumerate(recs):
            if r.t < cutoff:
                old = i
            elif r.replicas > best:
                best = r.replicas
        if old >= 0:
            recs[old] = Recommendation(desired, now)
        else:
            recs.append(Recommendation(desired, now))
        return best

    def normalize(self, key: str, current: int, desired: int, min_replicas: int, max_replicas: int, cond: Cond) -> int:
        stabilized = self._stabilize(key, desired)
        if stabilized != desired:
            cond("AbleToScale", "True", "ScaleDownStabilized",
                 "recent recommendations were higher than current one, applying the highest recent recommendation")
        else:
            cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        out, reason, message = convert_with_rules(current, stabilized, min_replicas, max_replicas)
        cond("ScalingLimited", "False" if out == stabilized else "True", reason, message)
        return out

    # -- with behavior ------------------------------------------------------------------------
    def normalize_with_behaviors(self, key: str, behavior: dict, current: int, desired: int, min_replicas: int,
                                 max_replicas: int, cond: Cond) -> int:
        b = default_behavior(behavior) or {}
        up, down = b["scaleUp"], b["scaleDown"]
        if down.get("stabilizationWindowSeconds") is None:
            down["stabilizationWindowSeconds"] = int(self.downscale_window)
        stabilized, reason, message = self._stabilize_with_behaviors(key, up, down, current, desired)
        if stabilized != desired:
            cond("AbleToScale", "True", reason, message)
        else:
            cond("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
        out, reason, message = self._rate_limit(key, up, down, current, stabilized, min_replicas, max_replicas)
        cond("ScalingLimited", "False" if out == stabilized else "True", reason, message)
        return out

    def _stabilize_with_behaviors(self, key: str, up: dict, down: dict, current: int, desired: int) -> tuple[int, str, str]:
        now = self.clock()
        up_cut = now - float(up.get("stabilizationWindowSeconds") or 0)
        down_cut = now - float(down.get("stabilizationWindowSeconds") or 0)
        up_rec = down_rec = desired
        old = -1
        recs = self.recommendations.setdefault(key, [])
        for i, r in enumerate(recs):
            if r.t > up_cut:
                up_rec = min(r.replicas, up_rec)
            if r.t > down_cut:
                down_rec = max(r.replicas, down_rec)
            if r.t < up_cut and r.t < down_cut:
                old = i
        rec = current
        if rec < up_rec:
            rec = up_rec
        if rec > down_rec:
            rec = down_rec
        if old >= 0:
            recs[old] = Recommendation(desired, now)
        else:
            recs.append(Recommendation(desired, now))
        if desired >= current:
            return rec, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the lowest recent recommendation"
        return rec, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the highest recent recommendation"

    def _change_in_period(self, period: float, events: list[ScaleEvent]) -> int:
        cutoff = self.clock() - period
        return sum(e.change for e in events if e.t > cutoff)

    def scale_up_limit(self, key: str, current: int, rules: dict) -> int:
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        pick: Callable[[int, int], int] = min if select == "Min" else max
        result = MAX_INT32 if select == "Min" else MIN_INT32
        for p in rules.get("policies") or []:
            added = self._change_in_period(float(p["periodSeconds"]), self.up_events.get(key, []))
            deleted = self._change_in_period(float(p["periodSeconds"]), self.down_events.get(key, []))
            start = current - added + deleted
            if p["type"] == "Pods":
                proposed = start + int(p["value"])
            else:
                proposed = math.ceil(start * (1 + int(p["value"]) / 100))
            result = pick(result, proposed)
        return result

    def scale_down_limit(self, key: str, current: int, rules: dict) -> int:
        select = rules.get("selectPolicy") or "Max"
        if select == "Disabled":
            return current
        pick: Callable[[int, int], int] = max if select == "Min" else min
        result = MIN_INT32 if select == "Min" else MAX_INT32
        for p in rules.get("policies") or []:
            added = self._change_in_period(float(p["periodSeconds"]), self.up_events.get(key, []))
            deleted = self._change_in_period(float(p["periodSeconds"]), self.down_events.get(key, []))
            start = current - added + deleted
            if p["type"] == "Pods":
                proposed = start - int(p["value"])
            else:
                proposed = int(start * (1 - int(p["value"]) / 100))
            result = pick(result, proposed)
        return result

    def _rate_limit(self, key: str, up: dict, down: dict, current: int, desired: int, min_replicas: int,
                    max_replicas: int) -> tuple[int, str, str]:
        if desired > current:
            limit = max(self.scale_up_limit(key, current, up), current)
            if max_replicas > limit:
                maximum, reason, message = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
            else:
                maximum, reason, message = max_replicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
            if desired > maximum:
                return maximum, reason, message
        elif desired < current:
            limit = min(self.scale_down_limit(key, current, down), current)
            if min_replicas < limit:
                minimum, reason, message = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
            else:
                minimum, reason, message = min_replicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
            if desired < minimum:
                return minimum, reason, message
        return desired, "DesiredWithinRange", "the desired count is within the acceptable range"

    def store_scale_event(self, behavior: dict | None, key: str, prev: int, new: int) -> None:
        if behavior is None:
            return
        b = default_behavior(behavior) or {}
        rules = b["scaleUp"] if new > prev else b["scaleDown"]
        events = (self.up_events if new > prev else self.down_events).setdefault(key, [])
        longest = max([int(p["periodSeconds"]) for p in rules.get("policies") or []] or [0])
        cutoff = self.clock() - longest
        for e in events:
            if e.t < cutoff:
                e.outdated = True
        ev = ScaleEvent(abs(new - prev), self.clock())
        old = next((i for i, e in enumerate(events) if e.outdated), -1)
        if old >= 0:
            events[old] = ev
        else:
            events.append(ev)


def convert_with_rules(current: int, desired: int, min_replicas: int, max_replicas: int) -> tuple[int, str, str]:
    """``convertDesiredReplicasWithRules`` (no behavior)."""
    up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > up_limit:
        maximum, reason, message = up_limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    else:
        maximum, reason, message = max_replicas, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > maximum:
        return maximum, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
