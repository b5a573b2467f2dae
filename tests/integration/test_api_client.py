"""The `kubernetes` Python client against the real apiserver over real etcd: CRUD, pagination,
watch resume from a resourceVersion, 410 after compaction (then relist), and an apiserver
restart during active watches with no event lost or duplicated."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.integration


def _api(kubeconfig) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))


def _ns(v1: client.CoreV1Api) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def _cm(name: str, **data: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)


def test_crud(apiserver) -> None:
    v1 = _api(apiserver.kubeconfig)
    ns = _ns(v1)
    created = v1.create_namespaced_config_map(ns, _cm("one", a="1"))
    assert created.metadata.uid and created.metadata.creation_timestamp
    rv1 = int(created.metadata.resource_version)
    got = v1.read_namespaced_config_map("one", ns)
    assert got.data == {"a": "1"} and got.metadata.resource_version == created.metadata.resource_version
    got.data["b"] = "2"
    updated = v1.replace_namespaced_config_map("one", ns, got)
    assert int(updated.metadata.resource_version) > rv1
    # a stale resourceVersion is a 409 and changes nothing
    got.data["c"] = "3"
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_config_map("one", ns, got)
    assert e.value.status == 409
    assert v1.read_namespaced_config_map("one", ns).data == {"a": "1", "b": "2"}
    patched = v1.patch_namespaced_config_map("one", ns, {"data": {"d": "4"}})
    assert patched.data == {"a": "1", "b": "2", "d": "4"}
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map(ns, _cm("one"))
    assert e.value.status == 409
    v1.delete_namespaced_config_map("one", ns)
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_config_map("one", ns)
    assert e.value.status == 404
    gen = v1.create_namespaced_config_map(ns, client.V1ConfigMap(metadata=client.V1ObjectMeta(generate_name="gen-")))
    assert gen.metadata.name.startswith("gen-") and len(gen.metadata.name) == 9


def test_create_in_missing_namespace_is_404(apiserver) -> None:
    v1 = _api(apiserver.kubeconfig)
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map("no-such-ns", _cm("x"))
    assert e.value.status == 404


def test_pagination_and_selectors(apiserver) -> None:
    v1 = _api(apiserver.kubeconfig)
    ns = _ns(v1)
    for i in range(23):
        cm = _cm(f"cm-{i:02d}")
        cm.metadata.labels = {"parity": "even" if i % 2 == 0 else "odd"}
        v1.create_namespaced_config_map(ns, cm)
    names, token, pages, rvs = [], None, 0, set()
    while True:
        res = v1.list_namespaced_config_map(ns, limit=5, _continue=token)
        pages += 1
        names += [c.metadata.name for c in res.items]
        rvs.add(res.metadata.resource_version)
        token = res.metadata._continue
        if not token:
            break
    assert names == [f"cm-{i:02d}" for i in range(23)] and pages == 5
    assert len(rvs) == 1  # every page is the same snapshot
    even = v1.list_namespaced_config_map(ns, label_selector="parity=even")
    assert len(even.items) == 12
    paged_even = v1.list_namespaced_config_map(ns, label_selector="parity=odd", limit=4)
    assert len(paged_even.items) == 4 and paged_even.metadata._continue
    by_name = v1.list_namespaced_config_map(ns, field_selector="metadata.name=cm-07")
    assert [c.metadata.name for c in by_name.items] == ["cm-07"]
    cached = v1.list_namespaced_config_map(ns, resource_version="0")
    assert len(cached.items) == 23


def test_watch_resumes_from_resource_version(apiserver) -> None:
    v1 = _api(apiserver.kubeconfig)
    ns = _ns(v1)
    first = v1.create_namespaced_config_map(ns, _cm("w0"))
    for i in range(1, 4):
        v1.create_namespaced_config_map(ns, _cm(f"w{i}"))
    v1.patch_namespaced_config_map("w1", ns, {"data": {"k": "v"}})
    v1.delete_namespaced_config_map("w2", ns)
    seen = []
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_config_map, ns, resource_version=first.metadata.resource_version,
                       timeout_seconds=2):
        seen.append((ev["type"], ev["object"].metadata.name))
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("ADDED", "w3"), ("MODIFIED", "w1"), ("DELETED", "w2")]


def _compact(etcd) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from controlplane.storage.etcd import EtcdBackend

    async def run() -> None:
        b = EtcdBackend(etcd.endpoint, **etcd.backend_kwargs())
        try:
            await b.compact(await b.current_revision())
        finally:
            await b.close()

    asyncio.run(run())


def test_watch_after_compaction_is_410_then_relist(fresh_apiserver) -> None:
    v1 = _api(fresh_apiserver.kubeconfig)
    ns = _ns(v1)
    old = v1.create_namespaced_config_map(ns, _cm("old"))
    for i in range(5):
        v1.create_namespaced_config_map(ns, _cm(f"n{i}"))
    _compact(fresh_apiserver.etcd)
    fresh_apiserver.restart()  # the new watch cache starts after the compacted revision
    v1 = _api(fresh_apiserver.kubeconfig)
    with pytest.raises(ApiException) as e:
        for _ in watch.Watch().stream(v1.list_namespaced_config_map, ns,
                                      resource_version=old.metadata.resource_version, timeout_seconds=5):
            pass
    assert e.value.status == 410
    # a paginated list pinned to the compacted revision is 410 too
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_config_map(ns, resource_version=old.metadata.resource_version,
                                      resource_version_match="Exact")
    assert e.value.status == 410
    # relist, then watch from the list's revision
    listed = v1.list_namespaced_config_map(ns)
    assert len(listed.items) == 6
    v1.create_namespaced_config_map(ns, _cm("after"))
    seen = [ev["object"].metadata.name for ev in watch.Watch().stream(
        v1.list_namespaced_config_map, ns, resource_version=listed.metadata.resource_version, timeout_seconds=2)]
    assert seen == ["after"]


def test_restart_during_watches_loses_and_duplicates_nothing(fresh_apiserver) -> None:
    v1 = _api(fresh_apiserver.kubeconfig)
    ns = _ns(v1)
    start = v1.list_namespaced_config_map(ns).metadata.resource_version
    total = 60
    done = threading.Event()
    received: list[list[str]] = [[], []]

    def watcher(slot: int) -> None:
        api = _api(fresh_apiserver.kubeconfig)
        w = watch.Watch()
        rv = start
        while not done.is_set() or len(received[slot]) < total:
            try:
                for ev in w.stream(api.list_namespaced_config_map, ns, resource_version=rv,
                                   allow_watch_bookmarks=True, _request_timeout=10):
                    if ev["type"] == "ADDED":
                        received[slot].append(ev["object"].metadata.name)
                    if len(received[slot]) >= total:
                        w.stop()
                        return
            except Exception:  # noqa: BLE001 - the server went away: resume from the last RV
                time.sleep(0.2)
            rv = w.resource_version or rv

    threads = [threading.Thread(target=watcher, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()

    def write(i: int) -> None:
        api = _api(fresh_apiserver.kubeconfig)
        while True:
            try:
                api.create_namespaced_config_map(ns, _cm(f"seq-{i:03d}"))
                return
            except ApiException as e:
                if e.status == 409:  # it landed before the connection dropped
                    return
                time.sleep(0.2)
            except Exception:  # noqa: BLE001 - connection refused while restarting
                time.sleep(0.2)

    for i in range(total // 2):
        write(i)
    fresh_apiserver.restart()
    for i in range(total // 2, total):
        write(i)
    done.set()
    for t in threads:
        t.join(60)
    expected = [f"seq-{i:03d}" for i in range(total)]
    for names in received:
        assert names == expected
