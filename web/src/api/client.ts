// HTTP to the dashboard's server: the Kubernetes API under /k8s (as the signed-in user) and the
// sign-in endpoints under /auth. Failures become ApiError carrying the API's Status, so views
// show the API's own message (403 Forbidden, 422 Invalid with its causes, 409 Conflict...).
import type { ResourceRef, Status } from "./types";
import { apiVersionOf } from "./types";

export class ApiError extends Error {
  code: number;
  reason: string;
  status: Status | null;
  constructor(code: number, message: string, status: Status | null) {
    super(message);
    this.code = code;
    this.reason = status?.reason ?? "";
    this.status = status;
  }
  get causes() {
    return this.status?.details?.causes ?? [];
  }
}

type Listener = () => void;
const signedOutListeners = new Set<Listener>();
export function onSignedOut(l: Listener): () => void {
  signedOutListeners.add(l);
  return () => signedOutListeners.delete(l);
}
export function notifySignedOut(): void {
  for (const l of signedOutListeners) l();
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  contentType?: string;
  accept?: string;
  raw?: boolean; // return the text
}

function qs(q: RequestOptions["query"]): string {
  if (!q) return "";
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
}

async function errorFrom(r: Response): Promise<ApiError> {
  const text = await r.text();
  let st: Status | null = null;
  try {
    const doc = JSON.parse(text);
    if (doc && doc.kind === "Status") st = doc;
  } catch {
    /* not JSON */
  }
  return new ApiError(r.status, st?.message ?? (text.trim() || `HTTP ${r.status}`), st);
}

export async function request<T = any>(method: string, path: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: opts.accept ?? "application/json" };
  let payload: string | undefined;
  if (body !== undefined) {
    headers["Content-Type"] = opts.contentType ?? "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetch(`/k8s${path}${qs(opts.query)}`, { method, headers, body: payload, credentials: "same-origin" });
  if (r.status === 401) notifySignedOut();
  if (!r.ok) throw await errorFrom(r);
  if (opts.raw) return (await r.text()) as unknown as T;
  const t = await r.text();
  return (t ? JSON.parse(t) : null) as T;
}

export const get = <T = any>(path: string, opts?: RequestOptions) => request<T>("GET", path, undefined, opts);

export function collectionPath(r: ResourceRef, namespace?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  return r.namespaced && namespace ? `${base}/namespaces/${namespace}/${r.resource}` : `${base}/${r.resource}`;
}

export function objectPath(r: ResourceRef, namespace: string | undefined, name: string, sub?: string): string {
  return `${collectionPath(r, r.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}${sub ? `/${sub}` : ""}`;
}

export function createObject(r: ResourceRef, namespace: string | undefined, obj: unknown, dryRun = false) {
  return request("POST", collectionPath(r, namespace), obj, { query: { dryRun: dryRun ? "All" : undefined, fieldValidation: "Strict", fieldManager: "dashboard" } });
}

export function replaceObject(r: ResourceRef, namespace: string | undefined, name: string, obj: unknown, dryRun = false) {
  return request("PUT", objectPath(r, namespace, name), obj, { query: { dryRun: dryRun ? "All" : undefined, fieldValidation: "Strict", fieldManager: "dashboard" } });
}

export function mergePatch(r: ResourceRef, namespace: string | undefined, name: string, patch: unknown, sub?: string) {
  return request("PATCH", objectPath(r, namespace, name, sub), patch, { contentType: "application/merge-patch+json", query: { fieldManager: "dashboard" } });
}

export function deleteObject(r: ResourceRef, namespace: string | undefined, name: string) {
  return request("DELETE", objectPath(r, namespace, name), { kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" });
}

export { apiVersionOf };

// --- sign-in ---------------------------------------------------------------------------

export interface Identity {
  username: string | null;
  groups: string[];
  uid: string | null;
  reviewed: boolean;
  credential: string;
}

async function authCall<T>(method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`/auth/${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (!r.ok) throw await errorFrom(r);
  return (await r.json()) as T;
}

export const auth = {
  login: (body: { token?: string; kubeconfig?: string; context?: string }) => authCall<Identity>("POST", "login", body),
  session: () => authCall<Identity>("GET", "session"),
  logout: () => authCall<{ signedOut: boolean }>("POST", "logout", {}),
};
