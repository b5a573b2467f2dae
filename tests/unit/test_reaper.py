"""The orphan reaper's choices (``controlplane.runtime.reaper``): which zombie children of a
subreaper it reaps and when, from ``/proc/<pid>/status``."""

from __future__ import annotations

import pytest

from controlplane.runtime.reaper import Zombie, parse_status, to_reap

STATUS = "Name:\tsleep\nState:\t{state}\nTgid:\t{pid}\nPid:\t{pid}\nPPid:\t1\n{nspid}VmPeak:\t0 kB\n"


@pytest.mark.parametrize("state,nspid,expected", [
    ("Z (zombie)", "NSpid:\t4321\t7\n", ("Z", 2)),          # a container's process
    ("Z (zombie)", "NSpid:\t4321\n", ("Z", 1)),              # one of our namespace
    ("S (sleeping)", "NSpid:\t4321\t1\t9\n", ("S", 3)),      # nested twice
    ("R (running)", "", ("R", 1)),                           # an old kernel without NSpid
], ids=["zombie-nested", "zombie-host", "sleeping-nested-twice", "no-nspid"])
def test_parse_status(state, nspid, expected):
    assert parse_status(STATUS.format(state=state, pid=4321, nspid=nspid)) == expected


def test_parse_status_of_nothing():
    assert parse_status("") == ("", 1)


@pytest.mark.parametrize("zombies,seen,now,host_age,reap,seen_after", [
    # a container's orphan: at once, whatever the age rule
    ([Zombie(10, True)], {}, 100.0, 5.0, [10], {10: 100.0}),
    ([Zombie(10, True)], {}, 100.0, None, [10], {10: 100.0}),
    # one of our namespace: first seen now, not yet
    ([Zombie(11, False)], {}, 100.0, 5.0, [], {11: 100.0}),
    # still a zombie 5 s later: reaped
    ([Zombie(11, False)], {11: 95.0}, 100.0, 5.0, [11], {11: 95.0}),
    # never, with host_age None (a process whose Popen children are polled later)
    ([Zombie(11, False)], {11: 0.0}, 100.0, None, [], {11: 0.0}),
    # a pid that is no longer a zombie is forgotten (its pid may be reused)
    ([], {12: 90.0}, 100.0, 5.0, [], {}),
    ([Zombie(13, False), Zombie(14, True)], {12: 1.0, 13: 99.0}, 100.0, 5.0, [14], {13: 99.0, 14: 100.0}),
], ids=["nested", "nested-no-host-age", "host-young", "host-old", "host-never", "forget", "mixed"])
def test_to_reap(zombies, seen, now, host_age, reap, seen_after):
    seen = dict(seen)
    assert to_reap(zombies, seen, now, host_age) == reap
    assert seen == seen_after
