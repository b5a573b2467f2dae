// A view's handle on a shared informer: acquired while the component lives (and re-acquired
// when its resource, namespace or selectors change), released when it goes.
import { computed, onBeforeUnmount, shallowRef, watch, type Ref } from "vue";
import { acquire, acquireObject, type InformerOptions, type InformerView } from "../api/informer";
import type { KObj, ResourceRef } from "../api/types";

export function useInformer(resource: Ref<ResourceRef | null>, opts: Ref<InformerOptions> = computed(() => ({}))) {
  const view = shallowRef<InformerView | null>(null);
  watch(
    [resource, opts],
    ([r, o]) => {
      const prev = view.value;
      view.value = r ? acquire(r, o) : null;
      prev?.release();
    },
    { immediate: true, deep: true },
  );
  onBeforeUnmount(() => view.value?.release());

  const rows = computed<KObj[]>(() => {
    const v = view.value;
    if (!v) return [];
    void v.informer.version.value; // re-run on every change
    return v.list();
  });
  const synced = computed(() => view.value?.informer.synced.value ?? false);
  const partial = computed(() => view.value?.informer.partial.value ?? false);
  const error = computed(() => view.value?.informer.error.value ?? null);
  const version = computed(() => view.value?.informer.version.value ?? 0);
  function get(namespace: string | undefined, name: string): KObj | undefined {
    void version.value;
    return view.value?.get(namespace, name);
  }
  return { view, rows, synced, partial, error, get, version };
}

// One object, live (see informer.acquireObject).
export function useObject(resource: Ref<ResourceRef | null>, namespace: Ref<string | undefined>, name: Ref<string>) {
  const view = shallowRef<InformerView | null>(null);
  watch(
    [resource, namespace, name],
    ([r, ns, n]) => {
      const prev = view.value;
      view.value = r && n ? acquireObject(r, ns, n) : null;
      prev?.release();
    },
    { immediate: true },
  );
  onBeforeUnmount(() => view.value?.release());
  const obj = computed<KObj | undefined>(() => {
    const v = view.value;
    if (!v) return undefined;
    void v.informer.version.value;
    return v.get(resource.value?.namespaced ? namespace.value : undefined, name.value);
  });
  const synced = computed(() => view.value?.informer.synced.value ?? false);
  const error = computed(() => view.value?.informer.error.value ?? null);
  return { obj, synced, error };
}
