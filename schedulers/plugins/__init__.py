"""Scheduler plugins, one file each. The openb GPU-sharing policies (``openb_random``,
``dot_prod``, ``gpu_clustering``, ``gpu_packing``, ``best_fit``, ``fgd``) are vectorised score
policies over ``schedulers.sim.state.GpuNodeState``; the offline simulator calls them directly
and the live framework wraps them (``gpushare``). The Kubernetes plugins implement the
framework's extension points (``schedulers.framework.interface``)."""
