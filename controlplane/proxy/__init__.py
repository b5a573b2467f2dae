"""The service proxy (kube-proxy's nftables mode) and NetworkPolicy enforcement of one node:
``model`` (Services + EndpointSlices → service ports), ``rules`` and ``policy`` (nftables
text), ``proxier`` (informers, sync loop), ``hostports``. See docs/networking.md."""
