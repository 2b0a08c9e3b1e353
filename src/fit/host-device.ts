/**
 * `--devices this`: the machine edgequant runs on, described from what the OS reports now
 * (memory, CPU features, an NVIDIA GPU's free memory), in the catalogue's Device shape so
 * every runtime model treats it like a catalogue entry.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { arch, cpus, freemem, platform, totalmem } from "node:os";
import type { Device, Platform } from "./devices.js";
import type { CpuRepackProfile } from "./llama-cpp.js";

export const HOST_DEVICE_ID = "this";

/** What the OS reports; each reader is a function so tests can give a machine of their own. */
export interface HostFacts {
  readonly platform: NodeJS.Platform;
  readonly arch: string;
  readonly cpuModel: string;
  readonly totalMemory: number;
  readonly availableMemory: number;
  readonly availableBasis: string;
  readonly cpuFlags: readonly string[];
  readonly nvidia?: { readonly name: string; readonly total: number; readonly free: number };
  /** Bytes per second one core copies, measured now. */
  readonly bandwidth: number;
}

/** The catalogue's platforms entry for this OS. */
const OS_PLATFORM: Partial<Record<NodeJS.Platform, string>> = { linux: "linux", darwin: "macos", win32: "windows" };

/** `platforms` says what the OS's memory limit counts (src/fit/devices.ts, formats/devices.yaml). */
export function hostDevice(platforms: ReadonlyMap<string, Platform>, facts: HostFacts = hostFactsNow()): Device {
  const os = OS_PLATFORM[facts.platform];
  const repack = repackProfile(facts);
  const apple = facts.platform === "darwin" && facts.arch === "arm64";
  const runtimes = facts.nvidia ? ["llama.cpp-cuda", "llama.cpp-cpu", "onnxruntime-cpu"] : apple ? ["llama.cpp-metal", "mlx", "llama.cpp-cpu", "onnxruntime-cpu"] : ["llama.cpp-cpu", "onnxruntime-cpu"];
  return {
    id: HOST_DEVICE_ID,
    name: `this machine (${facts.cpuModel}, ${facts.platform} ${facts.arch}), measured now`,
    kind: "host",
    memory: {
      total: facts.totalMemory,
      available: facts.availableMemory,
      availableBasis: facts.availableBasis,
      // Metal's recommendedMaxWorkingSetSize is about 75% of RAM on Apple silicon Macs; it is not readable from Node.
      ...(apple ? { gpuWorkingSet: Math.floor(facts.totalMemory * 0.75), gpuWorkingSetBasis: "assumed: 75% of RAM, Metal's usual recommendedMaxWorkingSetSize on Apple silicon" } : {}),
      unified: apple,
    },
    bandwidth: facts.bandwidth,
    bandwidthBasis: "measured now: one core copying 256 MiB (a lower bound on the memory bandwidth all cores reach)",
    cpu: { arch: facts.arch, repack },
    ...(facts.nvidia
      ? { gpu: { name: facts.nvidia.name, unified: false, memory: facts.nvidia.total, available: facts.nvidia.free, availableBasis: "nvidia-smi memory.free, now" } }
      : {}),
    runtimes,
    ...(os ? { os } : {}),
    limitCounts: (os ? platforms.get(os)?.limitCounts : undefined) ?? "peak",
    source: ["/proc/meminfo, /proc/cpuinfo and nvidia-smi on Linux; sysctl on macOS (read now)"],
    origin: "this machine",
  };
}

/** ggml-cpu's repack choice for these CPU features (ggml/src/ggml-cpu/repack.cpp). */
export function repackProfile(facts: Pick<HostFacts, "arch" | "platform" | "cpuFlags">): CpuRepackProfile {
  const has = (flag: string) => facts.cpuFlags.includes(flag);
  if (facts.arch === "x64") return has("avx512f") ? "x86-avx512" : has("avx2") ? "x86-avx2" : "none";
  if (facts.arch === "arm64") return has("i8mm") || facts.platform === "darwin" ? "arm-i8mm" : has("asimddp") ? "arm-dotprod" : "none";
  return "none";
}

let readOnce: HostFacts | undefined;

/** Read once per process: every table of one run describes the same moment. */
function hostFactsNow(): HostFacts {
  readOnce ??= readHostFacts();
  return readOnce;
}

export function readHostFacts(): HostFacts {
  const info = platform() === "linux" ? linuxMemory() : { available: freemem(), basis: "free memory now (os.freemem)" };
  const nvidia = nvidiaGpu();
  return {
    platform: platform(),
    arch: arch(),
    cpuModel: cpus()[0]?.model.trim() ?? "unknown CPU",
    totalMemory: totalmem(),
    availableMemory: info.available,
    availableBasis: info.basis,
    cpuFlags: cpuFlags(),
    ...(nvidia ? { nvidia } : {}),
    bandwidth: copyBandwidth(),
  };
}

/** MemAvailable, or the cgroup's memory.max less its usage when that is lower (a container's real budget). */
function linuxMemory(): { available: number; basis: string } {
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const kib = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo)?.[1];
  const available = kib === undefined ? freemem() : Number(kib) * 1024;
  const limit = readNumber("/sys/fs/cgroup/memory.max");
  const used = readNumber("/sys/fs/cgroup/memory.current");
  if (limit !== undefined && used !== undefined && limit - used < available) {
    return { available: limit - used, basis: "cgroup memory.max minus memory.current, now (/sys/fs/cgroup)" };
  }
  return { available, basis: "MemAvailable in /proc/meminfo, now" };
}

function readNumber(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const text = readFileSync(path, "utf8").trim();
  return /^\d+$/.test(text) ? Number(text) : undefined;
}

function cpuFlags(): string[] {
  if (platform() === "darwin") {
    // Apple silicon has every feature ggml's ARM repack needs; Intel Macs list theirs in sysctl.
    return run("sysctl", ["-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"])?.toLowerCase().split(/\s+/).filter(Boolean) ?? [];
  }
  if (!existsSync("/proc/cpuinfo")) return [];
  const line = /^(?:flags|Features)\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "";
  return line.split(/\s+/).filter(Boolean);
}

function nvidiaGpu(): HostFacts["nvidia"] {
  const out = run("nvidia-smi", ["--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"]);
  const match = out === undefined ? null : /^(.+?),\s*(\d+),\s*(\d+)\s*$/m.exec(out);
  if (!match) return undefined;
  const mib = 2 ** 20;
  return { name: match[1]!.trim(), total: Number(match[2]) * mib, free: Number(match[3]) * mib };
}

function run(command: string, args: readonly string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], timeout: 5000 });
  } catch {
    return undefined;
  }
}

/** The best of three copies of 256 MiB: read plus write bytes per second. */
function copyBandwidth(): number {
  const size = 256 * 2 ** 20;
  const from = Buffer.alloc(size, 1);
  const to = Buffer.allocUnsafe(size);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = process.hrtime.bigint();
    from.copy(to);
    best = Math.min(best, Number(process.hrtime.bigint() - start) / 1e9);
  }
  return Math.round((2 * size) / best);
}
