"""The scheduling framework (kube-scheduler's ``framework`` and its runtime): the extension
points (``interface``), the plugin registry (``registry``), profiles of plugin instances
(``profile``), one profile's cycles (``framework``), the cluster view (``cache``, ``podinfo``),
the three-part queue (``queue``) and the live loop (``scheduler``). It imports no plugin and
nothing of the offline simulator; GPU placement comes from ``schedulers.gpu``."""
