// The page's one WebSocket to the dashboard (/ws), carrying every watch and log stream
// (see controlplane/dashboard/mux.py for the frames). Streams are identified by ids; when the
// socket drops, every open stream is told (`onEnd` with `disconnected`) and its owner resumes
// it once the socket is back (informers from their last resourceVersion).
import { notifySignedOut } from "./client";
import type { Status, WatchEvent } from "./types";

export interface StreamHandler {
  onEvents?(events: WatchEvent[]): void;
  onData?(text: string): void;
  onEnd?(end: { status?: Status; error?: string; disconnected?: boolean }): void;
}

interface Frame {
  id: string | null;
  events?: WatchEvent[];
  data?: string;
  end?: boolean;
  status?: Status;
  error?: string;
}

class Mux {
  private ws: WebSocket | null = null;
  private handlers = new Map<string, StreamHandler>();
  private queue: string[] = [];
  private seq = 0;
  private backoff = 100;
  private connecting = false;

  private url(): string {
    return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  }

  private connect(): void {
    if (this.ws || this.connecting) return;
    this.connecting = true;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.connecting = false;
      this.backoff = 100;
      for (const m of this.queue.splice(0)) ws.send(m);
    };
    ws.onmessage = (ev) => this.dispatch(JSON.parse(ev.data as string) as Frame);
    ws.onclose = (ev) => {
      this.ws = null;
      this.connecting = false;
      this.queue = [];
      const hs = [...this.handlers.values()];
      this.handlers.clear();
      if (ev.code === 4401 || ev.code === 1008) notifySignedOut();
      for (const h of hs) h.onEnd?.({ disconnected: true });
    };
  }

  private dispatch(f: Frame): void {
    if (f.id === null) return;
    const h = this.handlers.get(f.id);
    if (!h) return;
    if (f.events) h.onEvents?.(f.events);
    if (f.data !== undefined) h.onData?.(f.data);
    if (f.end) {
      this.handlers.delete(f.id);
      h.onEnd?.({ status: f.status, error: f.error });
    }
  }

  // a delay before a stream that ended is resumed (grows while the socket keeps failing)
  retryDelay(): number {
    const d = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 5000);
    return d;
  }

  open(op: "watch" | "log", path: string, query: string, h: StreamHandler): string {
    const id = `s${++this.seq}`;
    this.handlers.set(id, h);
    this.send({ op, id, path, query });
    return id;
  }

  cancel(id: string): void {
    if (this.handlers.delete(id)) this.send({ op: "cancel", id });
  }

  private send(msg: unknown): void {
    const text = JSON.stringify(msg);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(text);
    else {
      this.queue.push(text);
      this.connect();
    }
  }

  close(): void {
    this.ws?.close();
  }
}

export const mux = new Mux();
