import { describe, expect, it } from "vitest";
import { closeStdinFrame, decode, execQuery, exitStatus, frame, resizeFrame, STDIN, STDOUT } from "../src/lib/channel";

const enc = (s: string) => new TextEncoder().encode(s);

describe("the channel.k8s.io protocol", () => {
  it("frames stdin with its channel byte", () => {
    expect([...frame(STDIN, "ls\n")]).toEqual([0, ...enc("ls\n")]);
  });
  it("resizes with Width/Height on channel 4", () => {
    const f = resizeFrame(80, 24);
    expect(f[0]).toBe(4);
    expect(JSON.parse(new TextDecoder().decode(f.subarray(1)))).toEqual({ Width: 80, Height: 24 });
  });
  it("closes stdin with v5's close channel", () => expect([...closeStdinFrame()]).toEqual([255, 0]));
  it("decodes a stdout message", () => {
    const d = decode(new Uint8Array([STDOUT, ...enc("hi")]))!;
    expect(d.channel).toBe(1);
    expect(new TextDecoder().decode(d.data)).toBe("hi");
    expect(decode(new Uint8Array([]))).toBeNull();
  });
  it.each([
    ['{"metadata":{},"status":"Success"}', true, 0, ""],
    ['{"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}', false, 3, "command terminated with non-zero exit code: exit status 3"],
    ['{"status":"Failure","message":"pods \\"x\\" is forbidden","reason":"Forbidden","code":403}', false, null, 'pods "x" is forbidden'],
    ["not json", false, null, "not json"],
  ])("exit status of %s", (raw, success, code, message) => {
    const st = exitStatus(enc(raw));
    expect(st.success).toBe(success);
    expect(st.exitCode).toBe(code);
    expect(st.message).toBe(message);
  });
  it("builds the exec query as kubectl does", () => {
    expect(execQuery(["sh", "-c", "echo a"], { container: "c", tty: true })).toBe("command=sh&command=-c&command=echo+a&container=c&stdin=true&stdout=true&stderr=false&tty=true");
  });
});
