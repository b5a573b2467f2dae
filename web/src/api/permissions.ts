// What the signed-in user may do, asked of the API with SelfSubjectAccessReview (what
// `kubectl auth can-i` sends), so RBAC alone decides which controls a view shows. Answers are
// cached for the page's life per (verb, group, resource, subresource, namespace, name) and
// concurrent questions share one request. An API without the authorization group (404) or a
// review that fails is "unknown": the control is shown and the API decides when it is used
// (its 403 message is shown then).
import { reactive } from "vue";
import { request, ApiError } from "./client";
import type { ResourceRef } from "./types";

export interface Attributes {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export type Answer = boolean | null; // null: not known yet

const answers = reactive(new Map<string, Answer>());
const inflight = new Map<string, Promise<boolean>>();
export const reviewStats = { requests: 0, unavailable: false };

function keyOf(a: Attributes): string {
  return [a.verb, a.group, a.resource, a.subresource ?? "", a.namespace ?? "", a.name ?? ""].join("|");
}

export async function review(a: Attributes): Promise<boolean> {
  const k = keyOf(a);
  const known = answers.get(k);
  if (known !== undefined && known !== null) return known;
  let p = inflight.get(k);
  if (!p) {
    p = ask(a).then((ok) => {
      answers.set(k, ok);
      inflight.delete(k);
      return ok;
    });
    inflight.set(k, p);
    answers.set(k, null);
  }
  return p;
}

async function ask(a: Attributes): Promise<boolean> {
  if (reviewStats.unavailable) return true;
  reviewStats.requests++;
  const body = {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SelfSubjectAccessReview",
    spec: {
      resourceAttributes: {
        verb: a.verb,
        group: a.group,
        resource: a.resource,
        subresource: a.subresource || undefined,
        namespace: a.namespace || undefined,
        name: a.name || undefined,
      },
    },
  };
  try {
    const r = await request<any>("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body);
    return Boolean(r?.status?.allowed);
  } catch (e) {
    if (e instanceof ApiError && (e.code === 404 || e.code === 405)) reviewStats.unavailable = true;
    return true; // unknown: allow, and let the API decide
  }
}

// A reactive answer for templates: null while asking, then true/false.
export function can(verb: string, r: ResourceRef, namespace?: string, name?: string, subresource?: string): Answer {
  const a: Attributes = { verb, group: r.group, resource: r.resource, subresource, namespace: r.namespaced ? namespace : undefined, name };
  const k = keyOf(a);
  const v = answers.get(k);
  if (v === undefined) void review(a);
  return answers.get(k) ?? null;
}

export function forgetAnswers(): void {
  answers.clear();
  inflight.clear();
  reviewStats.unavailable = false;
}
