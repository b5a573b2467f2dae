"""The node agent (our kubelet): registers a Node, heartbeats a Lease, and runs the pods bound
to it in real runc containers (``controlplane.runtime``) with images from
``controlplane.images``. ``simulated.py`` (scheduler work) is the process-less variant."""
