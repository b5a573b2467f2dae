"""How API objects are stored and read back, over ``controlplane.storage.interface`` (the only
part of the storage package the apiserver imports): the stored form and key layout
(``codec``), typed CRUD with Kubernetes' errors and the read-modify-write loop (``store``),
group commit of concurrent writes (``group_commit``), the watch caches (``watchcache``,
``watchcache_events``, ``caches``) and etcd compaction (``compactor``). Above ``discovery`` and
``meta``; below everything that handles requests."""
