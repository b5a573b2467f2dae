"""Offline openb GPU-sharing simulator: ``python -m schedulers.sim openb ...``.

Modules: ``openb`` (the protocol runner: arrivals, 1.3x tuning, the decision loop, the
allocation curve), ``table`` (the fidelity table against the published means), ``__main__``
(the CLI). The cluster state, the GPU choice, the policies and the trace reader are
``schedulers.gpu``, shared with the live scheduler; the ``ddqn`` policy is
``schedulers.ddqn.policy``."""
