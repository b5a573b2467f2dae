"""The cluster DNS (our CoreDNS): ``records`` (what a name answers, pure), ``server`` (asyncio
UDP/TCP with dnslib, cache, forwarding), ``component`` (informers, kube-dns registration).
See docs/networking.md."""
