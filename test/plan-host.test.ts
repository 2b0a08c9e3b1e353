// edgequant plan --devices this, acceptance 3: the host as the OS reports it (read here from
// /proc/meminfo and the CPU flags, independently of src/), and plan's llama.cpp-cpu rows for the
// tiny model at 512/2048/8192 against llama.cpp's own buffer report on this machine (within 5%).

import { existsSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, test } from "vitest";
import { planModel, type PlanReport } from "../src/plan/plan.js";
import { TINY_LLAMA } from "./support/cli.js";
import { disposeFitLlama, hostRepackProfile, measureLlamaCpp } from "./support/fit-llama.js";
import { cachedGguf } from "./support/gguf-cache.js";

const TOLERANCE = 0.05;
const CONTEXTS = [512, 2048, 8192];

afterAll(async () => disposeFitLlama());

function meminfo(key: string): number {
  const kib = new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(readFileSync("/proc/meminfo", "utf8"))?.[1];
  if (kib === undefined) throw new Error(`/proc/meminfo has no ${key}`);
  return Number(kib) * 1024;
}

describe("--devices this is the machine as the OS reports it now", () => {
  test("memory from /proc/meminfo, the repack profile from the CPU flags", async () => {
    expect(existsSync("/proc/meminfo"), "this test runs on Linux, as CI does").toBe(true);
    const report = await planModel(TINY_LLAMA, { modelName: "tiny-llama", devices: ["this"], schemes: ["q4_k_m"], contexts: [256] });
    const host = report.manifest.devices[0]!;
    expect(host.memory.total).toBe(meminfo("MemTotal"));
    // MemAvailable moves from moment to moment; a container's cgroup limit may bind instead
    const available = meminfo("MemAvailable");
    const cgroup = existsSync("/sys/fs/cgroup/memory.max") ? readFileSync("/sys/fs/cgroup/memory.max", "utf8").trim() : "max";
    if (cgroup === "max") expect(Math.abs(host.memory.available - available) / available).toBeLessThan(0.05);
    else expect(host.memory.available).toBeLessThanOrEqual(Number(cgroup));
    expect(host.cpu.repack).toBe(hostRepackProfile());
    expect(host.memory.availableBasis).toMatch(/now/);
    console.log(`this: ${host.name}; total ${host.memory.total}, available ${host.memory.available} (MemAvailable ${available}), repack ${host.cpu.repack}, copy bandwidth ${(host.bandwidth / 1e9).toFixed(1)} GB/s`);
  });
});

describe("plan's llama.cpp-cpu rows on this machine are llama.cpp's own buffers within 5%", () => {
  let report: PlanReport;
  test.each(CONTEXTS.flatMap((context) => [false, true].map((flashAttention) => ({ context, flashAttention }))))(
    "tiny-llama Q4_K_M, context $context, flash attention $flashAttention",
    async ({ context, flashAttention }) => {
      report ??= await planModel(TINY_LLAMA, { modelName: "tiny-llama", devices: ["this"], schemes: ["q4_k_m"], contexts: CONTEXTS });
      const result = report.manifest.results.find((r) => r.kvCache === "f16" && r.flashAttention === flashAttention)!;
      expect(result.runtime).toBe("llama.cpp-cpu");
      const row = result.rows!.find((r) => r.context === context)!;
      const b = row.breakdown as Record<string, number>;
      const measured = await measureLlamaCpp(await cachedGguf(TINY_LLAMA, "tiny-llama", "q4_k_m"), { contextSize: context, flashAttention });
      const pairs: [string, number, number][] = [
        ["model (mapped)", b["modelMapped"]!, measured.modelMapped],
        ["model (repack)", b["modelRepack"]!, measured.modelRepack],
        ["KV cache", b["kvK"]! + b["kvV"]!, measured.kv],
        ["compute", b["computeBuffer"]!, measured.compute],
        ["output", b["outputBuffer"]!, measured.output],
      ];
      for (const [what, ours, theirs] of pairs) {
        console.log(`ctx ${context} fa ${flashAttention ? "on " : "off"} ${what.padEnd(15)} plan ${(ours / 2 ** 20).toFixed(2)} MiB, llama.cpp ${(theirs / 2 ** 20).toFixed(2)} MiB`);
        // llama.cpp logs MiB with two decimals: a buffer of a few KiB is known only to 0.005 MiB
        if (theirs === 0) expect(ours, what).toBe(0);
        else expect(Math.abs(ours - theirs), what).toBeLessThanOrEqual(Math.max(TOLERANCE * theirs, 0.005 * 2 ** 20));
      }
    },
    300_000,
  );
});
