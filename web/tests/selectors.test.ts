import { describe, expect, it } from "vitest";
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, selectorToString, SelectorError } from "../src/lib/selectors";

const labels = { app: "web", tier: "front", "example.com/team": "a" };

describe("label selectors (k8s.io/apimachinery/pkg/labels)", () => {
  it.each([
    ["", true],
    ["app=web", true],
    ["app==web", true],
    ["app!=web", false],
    ["app=db", false],
    ["app in (web, db)", true],
    ["app notin (web)", false],
    ["app notin (db)", true],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["missing!=x", true],
    ["missing", false],
    ["app=web,tier=front", true],
    ["app=web,tier=back", false],
    ["example.com/team=a", true],
    ["app in (web),!missing,tier", true],
  ])("%s matches: %s", (sel, want) => {
    expect(matchLabels(parseLabelSelector(sel), labels)).toBe(want);
  });

  it.each(["app in (", "app=web)", "in (a)", "a b", "app in ()", "-bad=1", "app=-x"])("rejects %s", (sel) => {
    expect(() => parseLabelSelector(sel)).toThrow(SelectorError);
  });

  it("renders a LabelSelector object as kubectl does", () => {
    expect(
      selectorToString({
        matchLabels: { app: "web" },
        matchExpressions: [
          { key: "tier", operator: "In", values: ["a", "b"] },
          { key: "x", operator: "Exists" },
          { key: "y", operator: "DoesNotExist" },
        ],
      }),
    ).toBe("app=web,tier in (a,b),x,!y");
  });
});

describe("field selectors", () => {
  const pod = { metadata: { name: "p", namespace: "ns" }, spec: { nodeName: "n1" }, status: { phase: "Running" } };
  it.each([
    ["status.phase=Running", true],
    ["status.phase!=Running", false],
    ["spec.nodeName==n1,metadata.namespace=ns", true],
    ["spec.nodeName=", false],
    ["spec.missing=", true],
    ["metadata.name=q", false],
  ])("%s matches: %s", (sel, want) => {
    expect(matchFields(parseFieldSelector(sel), pod)).toBe(want);
  });
  it("rejects garbage", () => {
    expect(() => parseFieldSelector("status phase")).toThrow(SelectorError);
  });
});
