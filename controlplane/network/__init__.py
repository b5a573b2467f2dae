"""The cluster's pod network on this host: addressing and names (``addressing``), the node
namespace, its link and the pods' veths through the CNI plugins (``node``, ``cni``), the
host's safety routes (``routes``) and the host tools they drive (``hostcmd``).
See docs/networking.md."""
