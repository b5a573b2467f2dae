// Kubernetes' WebSocket channel protocol for exec/attach (v4 and v5.channel.k8s.io), as
// kubectl speaks it: every binary message is one channel byte followed by data. Channels:
// 0 stdin, 1 stdout, 2 stderr, 3 error (a v1 Status in JSON once the command ends), 4 resize
// ({"Width":w,"Height":h}), and in v5 255 "close" (the byte after it names the channel to
// close: the client closes stdin that way).

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const ERROR = 3;
export const RESIZE = 4;
export const CLOSE = 255;

const enc = new TextEncoder();

export function frame(channel: number, data: string | Uint8Array): Uint8Array {
  const body = typeof data === "string" ? enc.encode(data) : data;
  const out = new Uint8Array(body.length + 1);
  out[0] = channel;
  out.set(body, 1);
  return out;
}

export function resizeFrame(cols: number, rows: number): Uint8Array {
  return frame(RESIZE, JSON.stringify({ Width: cols, Height: rows }));
}

export function closeStdinFrame(): Uint8Array {
  return new Uint8Array([CLOSE, STDIN]);
}

export interface Decoded {
  channel: number;
  data: Uint8Array;
}

export function decode(msg: ArrayBuffer | Uint8Array): Decoded | null {
  const bytes = msg instanceof Uint8Array ? msg : new Uint8Array(msg);
  if (bytes.length === 0) return null;
  return { channel: bytes[0], data: bytes.subarray(1) };
}

export interface ExitStatus {
  success: boolean;
  exitCode: number | null;
  message: string;
  code?: number;
  reason?: string;
}

// The error channel's Status: Success, or Failure with reason NonZeroExitCode and the exit
// code in details.causes (as remotecommand reports it), or any other API failure.
export function exitStatus(data: Uint8Array): ExitStatus {
  const text = new TextDecoder().decode(data);
  let st: any;
  try {
    st = JSON.parse(text);
  } catch {
    return { success: false, exitCode: null, message: text };
  }
  if (st.status === "Success") return { success: true, exitCode: 0, message: "" };
  const cause = (st.details?.causes ?? []).find((c: any) => c.reason === "ExitCode");
  return {
    success: false,
    exitCode: cause ? Number(cause.message) : null,
    message: st.message ?? text,
    code: st.code,
    reason: st.reason,
  };
}

export function execQuery(command: string[], opts: { container?: string; tty?: boolean; stdin?: boolean }): string {
  const q = new URLSearchParams();
  for (const c of command) q.append("command", c);
  if (opts.container) q.set("container", opts.container);
  q.set("stdin", String(opts.stdin ?? true));
  q.set("stdout", "true");
  q.set("stderr", String(!(opts.tty ?? true)));
  q.set("tty", String(opts.tty ?? true));
  return q.toString();
}
