"""DDQN node scorer for GPU-sharing placement (issue 6).

Modules: ``features`` (per-node feature rows, incremental fragmentation), ``model`` (dueling
Q-network and the checked weights file), ``replay`` (n-step replay of candidate sets), ``env``
(openb episodes on top of ``schedulers.sim``), ``train`` (Double DQN loop), ``scorer``
(inference), ``__main__`` (``python -m schedulers.ddqn train``). The policy/plugin is
``schedulers.plugins.ddqn``; the shipped weights are ``ddqn_openb.bin`` with ``MODEL_CARD.md``.
"""
