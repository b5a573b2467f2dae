import { describe, expect, it } from "vitest";
import { age, formatBytes, formatCpu, humanDuration, parseQuantity, percent } from "../src/lib/format";

describe("quantities", () => {
  it.each([
    ["100m", 0.1],
    ["2", 2],
    ["1.5", 1.5],
    ["1Ki", 1024],
    ["128Mi", 128 * 1024 ** 2],
    ["1G", 1e9],
    ["1e3", 1000],
    ["250000n", 0.00025],
    ["", 0],
  ])("%s = %d", (q, want) => {
    expect(parseQuantity(q)).toBeCloseTo(want, 9);
  });
  it("is NaN for garbage", () => expect(parseQuantity("12 apples")).toBeNaN());
  it.each([
    [0.25, "250m"],
    [2, "2"],
    [1.234, "1.23"],
    [0, "0"],
  ])("cpu %d -> %s", (v, s) => expect(formatCpu(v)).toBe(s));
  it.each([
    [512, "512B"],
    [2048, "2.0Ki"],
    [300 * 1024 ** 2, "300Mi"],
  ])("bytes %d -> %s", (v, s) => expect(formatBytes(v)).toBe(s));
  it("percent", () => {
    expect(percent(1, 4)).toBe("25%");
    expect(percent(1, 0)).toBe("-");
  });
});

describe("kubectl's HumanDuration", () => {
  it.each([
    [5, "5s"],
    [119, "119s"],
    [150, "2m30s"],
    [600, "10m"],
    [3 * 3600 + 120, "3h2m"],
    [10 * 3600, "10h"],
    [50 * 3600, "2d2h"],
    [30 * 86400, "30d"],
    [3 * 365 * 86400, "3y"],
  ])("%ds -> %s", (s, want) => expect(humanDuration(s)).toBe(want));
  it("ages from timestamps", () => {
    expect(age("2026-01-01T00:00:00Z", Date.parse("2026-01-01T00:01:00Z"))).toBe("60s");
    expect(age(undefined)).toBe("<unknown>");
  });
});
