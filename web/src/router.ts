// Every view has a URL (history mode: shareable, the back button works); the dashboard's
// server answers index.html for all of them. Views other than the first ones are loaded on
// demand, so the first view ships little JavaScript.
import { createRouter, createWebHistory } from "vue-router";
import { identity, checked, loadSession } from "./session";
import Overview from "./views/Overview.vue";
import ResourceList from "./views/ResourceList.vue";
import SignIn from "./views/SignIn.vue";
import { NAMESPACES } from "./api/resources";

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/signin", component: SignIn, meta: { public: true, title: "Sign in" } },
    { path: "/", component: Overview, meta: { title: "Overview" } },
    { path: "/namespaces", component: ResourceList, props: { fixed: NAMESPACES }, meta: { title: "Namespaces" } },
    { path: "/r/:group/:version/:resource", component: ResourceList, meta: { title: "List" } },
    { path: "/r/:group/:version/:resource/:namespace/:name", component: () => import("./views/ObjectDetail.vue"), meta: { title: "Detail" } },
    { path: "/create", component: () => import("./views/CreateYaml.vue"), meta: { title: "Create" } },
    { path: "/crds", component: () => import("./views/CustomResources.vue"), meta: { title: "Custom resources" } },
    { path: "/gitops", component: () => import("./views/GitOps.vue"), meta: { title: "GitOps" } },
    { path: "/scheduling", component: () => import("./views/Scheduling.vue"), meta: { title: "Scheduling" } },
    { path: "/:pathMatch(.*)*", component: () => import("./views/NotFound.vue"), meta: { title: "Not found" } },
  ],
});

router.beforeEach(async (to) => {
  if (!checked.value) await loadSession();
  if (!to.meta.public && !identity.value) return { path: "/signin", query: to.fullPath !== "/" ? { next: to.fullPath } : {} };
  return true;
});

router.afterEach((to) => {
  const p = to.params;
  const what = p.name ? `${p.resource} ${p.name}` : p.resource ? String(p.resource) : String(to.meta.title ?? "");
  document.title = `${what} · controlplane dashboard`;
});
