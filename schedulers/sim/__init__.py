"""Offline openb GPU-sharing simulator: ``python -m schedulers.sim openb ...``.

Modules: ``traces`` (CSV loading), ``state`` (numpy cluster state + filter), ``typical``
(FGD's typical pods), ``registry`` (policy registry), ``openb`` (the protocol runner)."""
