"""DDQN: the learned Double-DQN node scorer (``schedulers.ddqn``) as a live score plugin,
profile ``schedulers/profiles/ddqn.yaml`` (``schedulerName: ddqn-scheduler``, alias ``ddqn``).

It wraps the ``ddqn`` GPU policy (``schedulers.ddqn.policy``, the object the simulator's
``--policy ddqn`` runs) like the openb plugins of ``gpu_policy_score``: args ``typicalPods:
<CSV>`` and ``model: <path>``; otherwise the typical pods come from the pods the scheduler
has seen (refreshed as that set doubles). The DDQN package's inference side is a
plugin-level dependency; its training side (``env``, ``train``) is never imported here.
"""

from __future__ import annotations

import schedulers.ddqn.policy  # noqa: F401  registers the "ddqn" GPU policy
from schedulers.framework.registry import register
from schedulers.plugins.gpu_policy_score import GpuPolicyScore


@register
class DDQN(GpuPolicyScore):
    """The DDQN scorer as a live-scheduler score plugin (typical pods as for FGD)."""

    name = "DDQN"
    policy_name = "ddqn"
    needs_typical = True
