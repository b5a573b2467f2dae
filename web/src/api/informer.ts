// Informers in the browser, as client-go's reflector does it: list once (in pages: the first
// page renders while the rest arrives, all pages of one snapshot), then watch from the list's
// resourceVersion, forever, through the page's multiplexed WebSocket. A watch that ends is
// resumed from the last complete resourceVersion seen (bookmarks included; resume.ts: writes may
// share a resourceVersion, repeats are dropped); only a 410 Gone (the
// resourceVersion was compacted away) lists again. No polling.
//
// Informers are shared: every view asking for the same resource, namespace and selectors gets
// the same one, and a namespaced request is served from a cluster-wide informer when one runs.
// A cluster-wide informer stays for the page's life once started (the page lists the whole
// cluster at most once); a narrower one nobody uses lingers for a minute, so going back to a
// view does not list again.
import { shallowRef, ref, type Ref, type ShallowRef } from "vue";
import { collectionPath, get, ApiError } from "./client";
import { mux } from "./mux";
import type { KList, KObj, ResourceRef, WatchEvent } from "./types";
import { keyOf } from "./types";
import { ResumePoint } from "./resume";

export const FIRST_PAGE = 500;
export const NEXT_PAGES = 5000;
const LINGER_MS = 60_000;

export interface InformerOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export const stats = { lists: 0, relists: 0, watches: 0 };

export class Informer {
  readonly ref: ResourceRef;
  readonly opts: InformerOptions;
  readonly items = new Map<string, KObj>();
  readonly version: Ref<number> = ref(0); // bumped (once per animation frame at most) on changes
  readonly synced: Ref<boolean> = ref(false);
  readonly partial: Ref<boolean> = ref(false); // the first page is in, more are coming
  readonly error: ShallowRef<ApiError | null> = shallowRef(null);
  private resume = new ResumePoint();
  users = 0;
  private streamId: string | null = null;
  private stopped = false;
  private bumpScheduled = false;
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;
  private listeners = new Set<(ev: WatchEvent) => void>();

  constructor(r: ResourceRef, opts: InformerOptions = {}) {
    this.ref = r;
    this.opts = opts;
  }

  get path(): string {
    return collectionPath(this.ref, this.opts.namespace);
  }

  private selectors(): Record<string, string> {
    const q: Record<string, string> = {};
    if (this.opts.labelSelector) q.labelSelector = this.opts.labelSelector;
    if (this.opts.fieldSelector) q.fieldSelector = this.opts.fieldSelector;
    return q;
  }

  onEvent(l: (ev: WatchEvent) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private bump(): void {
    if (this.bumpScheduled) return;
    this.bumpScheduled = true;
    const run = () => {
      this.bumpScheduled = false;
      this.version.value++;
    };
    if (typeof requestAnimationFrame === "function" && !document.hidden) requestAnimationFrame(run);
    else setTimeout(run, 0);
  }

  start(): void {
    this.stopped = false;
    void this.list();
  }

  private async list(): Promise<void> {
    stats.lists++;
    const fresh = new Map<string, KObj>();
    let cont = "";
    let first = true;
    try {
      do {
        const page = await get<KList>(this.path, {
          query: { ...this.selectors(), limit: first ? FIRST_PAGE : NEXT_PAGES, continue: cont || undefined },
        });
        if (this.stopped) return;
        for (const o of page.items) fresh.set(keyOf(o), o);
        this.resume.reset(page.metadata.resourceVersion ?? this.resume.rv);
        cont = page.metadata.continue ?? "";
        if (first && cont) {
          // render the first page at once (it is the first part of the snapshot)
          this.items.clear();
          for (const [k, v] of fresh) this.items.set(k, v);
          this.partial.value = true;
          this.bump();
        }
        first = false;
      } while (cont);
    } catch (e) {
      if (this.stopped) return;
      if (e instanceof ApiError && e.code === 410) {
        stats.relists++;
        setTimeout(() => void this.list(), 0);
        return;
      }
      this.error.value = e instanceof ApiError ? e : new ApiError(0, String(e), null);
      this.synced.value = true;
      this.bump();
      return;
    }
    this.items.clear();
    for (const [k, v] of fresh) this.items.set(k, v);
    this.error.value = null;
    this.partial.value = false;
    this.synced.value = true;
    this.bump();
    this.watch();
  }

  private watch(): void {
    if (this.stopped) return;
    stats.watches++;
    const q = new URLSearchParams({
      ...this.selectors(),
      resourceVersion: this.resume.rv,
      allowWatchBookmarks: "true",
      timeoutSeconds: String(300 + Math.floor(Math.random() * 300)),
    });
    this.streamId = mux.open("watch", this.path, q.toString(), {
      onEvents: (evs) => this.apply(evs),
      onEnd: (end) => {
        this.streamId = null;
        if (this.stopped) return;
        if (end.status?.code === 410) return this.relist();
        if (end.status && end.status.code && end.status.code >= 400) {
          this.error.value = new ApiError(end.status.code, end.status.message ?? "watch refused", end.status);
          this.bump();
          setTimeout(() => this.watch(), 5000);
          return;
        }
        setTimeout(() => this.watch(), end.disconnected || end.error ? mux.retryDelay() : 0);
      },
    });
  }

  private relist(): void {
    stats.relists++;
    void this.list();
  }

  apply(evs: WatchEvent[]): void {
    let changed = false;
    for (const ev of evs) {
      if (ev.type === "ERROR") {
        const st = ev.object;
        if (st?.code === 410) {
          if (this.streamId) mux.cancel(this.streamId);
          this.streamId = null;
          this.relist();
          return;
        }
        continue;
      }
      const o = ev.object as KObj;
      if (ev.type === "BOOKMARK") {
        this.resume.bookmark(o?.metadata?.resourceVersion);
        continue;
      }
      const k = keyOf(o);
      if (!this.resume.event(o?.metadata?.resourceVersion, k)) continue; // a resumed stream's repeat
      if (ev.type === "DELETED") this.items.delete(k);
      else this.items.set(k, o);
      changed = true;
      for (const l of this.listeners) l(ev);
    }
    if (changed) this.bump();
  }

  // where the next watch starts
  get rv(): string {
    return this.resume.rv;
  }

  stop(): void {
    this.stopped = true;
    if (this.streamId) mux.cancel(this.streamId);
    this.streamId = null;
  }

  acquire(): void {
    this.users++;
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
  }

  // cluster-wide informers without selectors are kept for the page's life (the cluster is
  // listed once per page); narrower ones linger a minute after their last user
  get keepForever(): boolean {
    return !this.opts.namespace && !this.opts.labelSelector && !this.opts.fieldSelector;
  }

  release(onIdle: () => void): void {
    this.users--;
    if (this.users > 0 || this.keepForever) return;
    this.lingerTimer = setTimeout(() => {
      if (this.users === 0) {
        this.stop();
        onIdle();
      }
    }, LINGER_MS);
  }
}

// A view of an informer restricted to one namespace (served by a cluster-wide informer).
export interface InformerView {
  informer: Informer;
  namespace?: string;
  list(): KObj[];
  get(namespace: string | undefined, name: string): KObj | undefined;
  release(): void;
}

const informers = new Map<string, Informer>();

function key(r: ResourceRef, o: InformerOptions): string {
  return [r.group, r.version, r.resource, o.namespace ?? "", o.labelSelector ?? "", o.fieldSelector ?? ""].join("|");
}

export function acquire(r: ResourceRef, opts: InformerOptions = {}): InformerView {
  const ns = r.namespaced ? opts.namespace : undefined;
  let inf: Informer | undefined;
  let filterNs: string | undefined;
  if (ns && !opts.labelSelector && !opts.fieldSelector) {
    const all = informers.get(key(r, {}));
    if (all && !all.error.value) {
      inf = all;
      filterNs = ns;
    }
  }
  if (!inf) {
    const o = { ...opts, namespace: ns };
    const k = key(r, o);
    inf = informers.get(k);
    if (!inf) {
      inf = new Informer(r, o);
      informers.set(k, inf);
      inf.start();
    }
  }
  const the = inf;
  the.acquire();
  let released = false;
  return {
    informer: the,
    namespace: filterNs,
    list() {
      const out: KObj[] = [];
      for (const o of the.items.values()) if (!filterNs || o.metadata.namespace === filterNs) out.push(o);
      return out;
    },
    get(namespace, name) {
      return the.items.get(namespace ? `${namespace}/${name}` : name);
    },
    release() {
      if (released) return;
      released = true;
      the.release(() => {
        for (const [k, v] of informers) if (v === the) informers.delete(k);
      });
    },
  };
}

// One object, live: served by an informer already holding its namespace (or the whole
// cluster) when one runs, else by a watch of just that object (fieldSelector metadata.name).
export function acquireObject(r: ResourceRef, namespace: string | undefined, name: string): InformerView {
  const ns = r.namespaced ? namespace : undefined;
  for (const o of [{}, { namespace: ns }]) {
    const inf = informers.get(key(r, o));
    if (inf && !inf.error.value) return acquire(r, ns ? { namespace: ns } : {});
  }
  return acquire(r, { namespace: ns, fieldSelector: `metadata.name=${name}` });
}

export function activeInformers(): { key: string; users: number; items: number }[] {
  return [...informers.entries()].map(([k, v]) => ({ key: k, users: v.users, items: v.items.size }));
}
