"""Storage layer: the one small interface the apiserver talks to (``interface.Backend``, with
its errors, value types and key layout) and its etcd implementation (``etcd.EtcdBackend`` on
``etcd_rpc``, ``etcd_batch``, ``etcd_watch``). The apiserver imports ``interface`` only; the
commands and benchmarks that build a backend import ``etcd``."""
