"""DDQN node scorer for GPU-sharing placement.

Modules: ``features`` (per-node feature rows, incremental fragmentation), ``model`` (dueling
Q-network and the checked weights file), ``replay`` (n-step replay of candidate sets), ``env``
(openb episodes on top of ``schedulers.sim``), ``train`` (Double DQN loop), ``scorer``
(inference), ``policy`` (the ``ddqn`` GPU policy), ``__main__`` (``python -m schedulers.ddqn
train``). Inference (``features``, ``model``, ``scorer``, ``policy``) stands on
``schedulers.gpu`` only and is what the live ``DDQN`` plugin (``schedulers.plugins.ddqn``)
uses; training (``env``, ``replay``, ``train``, ``__main__``) stands on the simulator. The
shipped weights are ``ddqn_openb.bin`` with ``MODEL_CARD.md``.
"""
