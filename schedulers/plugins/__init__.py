"""The in-tree scheduler plugins, one file each, every one a framework plugin
(``schedulers.framework.interface``) registered under its name. This package declares its
built-in modules to the framework's registry (``PLUGINS.provide``), as kube-scheduler's
``plugins/registry.go`` does; profiles name plugins, the registry imports the modules on the
first lookup. The GPU policies the GPU score plugins wrap live in ``schedulers.gpu``."""

from schedulers.framework.registry import PLUGINS

BUILTIN = (
    "node_name", "node_unschedulable", "node_resources_fit", "balanced_allocation", "node_affinity",
    "taint_toleration", "inter_pod_affinity", "pod_topology_spread", "node_ports", "image_locality",
    "priority_sort", "default_preemption", "default_binder", "random_score", "fifo", "gpu_aware", "disk_io",
    "network_latency", "gpushare", "gpu_policy_score", "ddqn", "volume_binding",
)

PLUGINS.provide(__name__, BUILTIN)
