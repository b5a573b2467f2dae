"""GPU-sharing placement, below both the live scheduler's framework and the offline openb
simulator so that each runs the same code: ``state`` (cluster as numpy arrays, the GPU
filter, placing a pod), ``choice`` (which GPUs a pod takes), ``typical`` (FGD's typical
pods), ``traces`` (the openb node and pod lists), ``policy`` (the policy interface and its
registry) and ``policies`` (the six openb policies). Imports nothing else of ``schedulers``
but ``schedulers.registry``."""
