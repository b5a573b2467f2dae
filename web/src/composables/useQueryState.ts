// A piece of view state kept in the URL's query (filters, namespace, tab), so every view is
// shareable and the back button restores it.
import { computed } from "vue";
import { useRoute, useRouter } from "vue-router";

export function useQueryState(key: string, fallback = "") {
  const route = useRoute();
  const router = useRouter();
  return computed<string>({
    get: () => (typeof route.query[key] === "string" ? (route.query[key] as string) : fallback),
    set: (v: string) => {
      const query = { ...route.query };
      if (v === fallback || v === "") delete query[key];
      else query[key] = v;
      void router.replace({ query });
    },
  });
}
