"""Container runtimes behind one interface (``interface.ContainerRuntime``).

``runc.RuncRuntime`` drives real runc on OCI bundles; the scheduler's simulated agent is another
implementation of the same interface. The node agent (``controlplane.agent``) is the only caller.
"""
