"""schedulers: the scheduling framework, its plugins and profiles, the offline openb
simulator and the DDQN scorer. The live scheduler talks to the cluster only through
``controlplane.client``; the simulator uses the same filter and score code without an API."""
