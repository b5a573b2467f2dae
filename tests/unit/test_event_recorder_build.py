"""EventRecorder.build/sent (an Event delivered by another request, the scheduler's Binding):
the same body, name and spam budget as a posted Event, and the aggregation bookkeeping after
delivery; build declines (None) exactly when event() would aggregate or drop instead."""

from __future__ import annotations

import pytest

from controlplane.client import events
from controlplane.client.events import EventRecorder

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                                                       "resourceVersion": "7"}}


def test_build_is_the_event_a_post_would_create():
    rec = EventRecorder(None, "default-scheduler")  # type: ignore[arg-type]  (no request is made)
    ev = rec.build(POD, "Normal", "Scheduled", "Successfully assigned ns/p to n1")
    assert ev is not None
    assert ev["metadata"]["namespace"] == "ns" and ev["metadata"]["name"].startswith("p.")
    assert ev["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u1",
                                    "resourceVersion": "7", "namespace": "ns"}
    assert (ev["reason"], ev["type"], ev["count"]) == ("Scheduled", "Normal", 1)
    assert ev["source"] == {"component": "default-scheduler"} and ev["reportingComponent"] == "default-scheduler"
    assert ev["firstTimestamp"] == ev["lastTimestamp"]
    assert rec.posted == 0
    rec.sent(ev)
    assert rec.posted == 1


@pytest.mark.parametrize("case, sent_before, spent, want_built", [
    ("new", False, 0, True),
    ("same event already sent: event() patches its count", True, 0, False),
    ("spam budget spent: event() drops it", False, events.SPAM_BURST, False),
    ("one token left", False, events.SPAM_BURST - 1, True),
])
def test_build_declines_what_event_would_aggregate_or_drop(case, sent_before, spent, want_built):
    rec = EventRecorder(None, "default-scheduler")  # type: ignore[arg-type]
    if sent_before:
        rec.sent(rec.build(POD, "Normal", "Scheduled", "m"))  # type: ignore[arg-type]
    for _ in range(spent):
        assert rec._allow("u1")
    got = rec.build(POD, "Normal", "Scheduled", "m")
    assert (got is not None) == want_built, case
    assert rec.dropped == 0  # declining is not dropping: event() decides and counts
