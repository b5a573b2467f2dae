import { describe, expect, it } from "vitest";
import { Informer } from "../src/api/informer";
import { PODS } from "../src/api/resources";

const pod = (name: string, rv: string, ns = "default") => ({ metadata: { name, namespace: ns, resourceVersion: rv } });

describe("an informer applies watch events", () => {
  it("adds, modifies, deletes and follows resourceVersions (bookmarks too)", () => {
    const inf = new Informer(PODS);
    inf.apply([
      { type: "ADDED", object: pod("a", "1") },
      { type: "ADDED", object: pod("b", "2") },
      { type: "MODIFIED", object: { ...pod("a", "3"), spec: { x: 1 } } },
      { type: "DELETED", object: pod("b", "4") },
      { type: "BOOKMARK", object: { metadata: { resourceVersion: "9" } } },
    ]);
    expect([...inf.items.keys()]).toEqual(["default/a"]);
    expect(inf.items.get("default/a")?.spec).toEqual({ x: 1 });
    expect(inf.rv).toBe("9");
  });
  it("tells listeners about every change but not bookmarks", () => {
    const inf = new Informer(PODS);
    const seen: string[] = [];
    inf.onEvent((e) => seen.push(e.type));
    inf.apply([{ type: "ADDED", object: pod("a", "1") }, { type: "BOOKMARK", object: { metadata: { resourceVersion: "2" } } }]);
    expect(seen).toEqual(["ADDED"]);
  });
});
