// The actions of the detail views, each the request kubectl makes for it:
// scale (merge patch of the scale subresource), rollout restart (the
// kubectl.kubernetes.io/restartedAt annotation on the pod template), rollout undo of a
// Deployment (the previous ReplicaSet's template, by its revision annotation), cordon /
// uncordon (spec.unschedulable), drain (cordon, then evict every pod but DaemonSet-owned and
// mirror pods through pods/eviction), delete.
import { request, mergePatch, collectionPath, get } from "./api/client";
import { PODS, REPLICASETS, NODES } from "./api/resources";
import type { KList, KObj, ResourceRef } from "./api/types";

export function scale(r: ResourceRef, o: KObj, replicas: number) {
  return mergePatch(r, o.metadata.namespace, o.metadata.name, { spec: { replicas } }, "scale");
}

export function rolloutRestart(r: ResourceRef, o: KObj) {
  const at = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return mergePatch(r, o.metadata.namespace, o.metadata.name, {
    spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": at } } } },
  });
}

export function revisionOf(o: KObj): number {
  return Number(o.metadata.annotations?.["deployment.kubernetes.io/revision"] ?? 0);
}

export function ownedBy(o: KObj, owner: KObj): boolean {
  return (o.metadata.ownerReferences ?? []).some((ref) => ref.uid === owner.metadata.uid);
}

// The ReplicaSet `kubectl rollout undo` goes back to: the highest revision below the current one.
export function previousReplicaSet(deploy: KObj, replicaSets: KObj[]): KObj | null {
  const mine = replicaSets.filter((rs) => ownedBy(rs, deploy)).sort((a, b) => revisionOf(b) - revisionOf(a));
  const current = revisionOf(deploy);
  return mine.find((rs) => revisionOf(rs) < current && revisionOf(rs) > 0) ?? null;
}

export async function rollback(r: ResourceRef, deploy: KObj): Promise<KObj> {
  const list = await get<KList>(collectionPath(REPLICASETS, deploy.metadata.namespace));
  const prev = previousReplicaSet(deploy, list.items);
  if (!prev) throw new Error("no previous revision to roll back to");
  const template = structuredClone(prev.spec.template);
  if (template.metadata?.labels) delete template.metadata.labels["pod-template-hash"];
  // a merge patch would merge the maps (annotations such as restartedAt would stay): replace
  // the template wholesale, with a JSON patch (no resourceVersion to conflict on)
  return request("PATCH", `${collectionPath(r, deploy.metadata.namespace)}/${deploy.metadata.name}`, [{ op: "replace", path: "/spec/template", value: template }], {
    contentType: "application/json-patch+json",
    query: { fieldManager: "dashboard" },
  });
}

export function cordon(node: KObj, unschedulable: boolean) {
  return mergePatch(NODES, undefined, node.metadata.name, { spec: { unschedulable: unschedulable || null } });
}

export function drainable(pod: KObj): boolean {
  const owners = pod.metadata.ownerReferences ?? [];
  if (owners.some((o) => o.kind === "DaemonSet")) return false;
  if (pod.metadata.annotations?.["kubernetes.io/config.mirror"]) return false;
  return !pod.metadata.deletionTimestamp;
}

export async function drain(node: KObj, pods: KObj[], progress: (msg: string) => void): Promise<void> {
  await cordon(node, true);
  progress(`node/${node.metadata.name} cordoned`);
  const targets = pods.filter((p) => p.spec?.nodeName === node.metadata.name && drainable(p));
  for (const p of targets) {
    await request("POST", `${collectionPath(PODS, p.metadata.namespace)}/${p.metadata.name}/eviction`, {
      apiVersion: "policy/v1",
      kind: "Eviction",
      metadata: { name: p.metadata.name, namespace: p.metadata.namespace },
    });
    progress(`evicting pod ${p.metadata.namespace}/${p.metadata.name}`);
  }
  progress(`node/${node.metadata.name} drained (${targets.length} pods evicted)`);
}
