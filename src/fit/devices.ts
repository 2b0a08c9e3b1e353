/**
 * The device catalogue: formats/devices.yaml plus an optional user file, validated against
 * formats/devices.schema.json, with sizes parsed to bytes.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Ajv, type ErrorObject } from "ajv";
import { parse } from "yaml";
import { UserError } from "../errors.js";
import { didYouMean } from "../suggest.js";
import type { ArtifactFormat } from "./artifact.js";
import { HOST_DEVICE_ID, hostDevice } from "./host-device.js";
import type { CpuRepackProfile } from "./llama-cpp.js";

const FORMATS = new URL("../../formats/", import.meta.url);
const DEVICES_FILE = new URL("devices.yaml", FORMATS);
const DEVICES_SCHEMA_FILE = new URL("devices.schema.json", FORMATS);

type RuntimeEngine = "llama.cpp" | "onnxruntime" | "mlx";
type RuntimeBackend = "cpu" | "metal" | "cuda" | "vulkan";

export interface Runtime {
  readonly id: string;
  readonly name: string;
  readonly engine: RuntimeEngine;
  readonly backend: RuntimeBackend;
  readonly formats: readonly ArtifactFormat[];
  readonly overhead: { readonly host: number; readonly device: number };
  readonly overheadBasis: string;
  readonly source: readonly string[];
}

/** What an OS's memory limit counts: only what must stay resident, or the peak resident set with mapped file pages. */
export type LimitCounts = "resident" | "peak";

export interface Platform {
  readonly id: string;
  readonly name: string;
  readonly limitCounts: LimitCounts;
  readonly basis: string;
  readonly source: readonly string[];
}

export interface Device {
  readonly id: string;
  readonly name: string;
  readonly kind?: string;
  readonly soc?: string;
  readonly memory: {
    readonly total: number;
    readonly available: number;
    readonly availableBasis: string;
    readonly withoutEntitlement?: number;
    readonly gpuWorkingSet?: number;
    readonly gpuWorkingSetBasis?: string;
    readonly unified: boolean;
  };
  readonly bandwidth: number;
  readonly bandwidthBasis?: string;
  readonly bandwidthEfficiency?: number;
  readonly cpu: { readonly arch: string; readonly repack: CpuRepackProfile };
  readonly gpu?: {
    readonly name: string;
    readonly unified: boolean;
    readonly memory?: number;
    readonly available?: number;
    readonly availableBasis?: string;
    readonly bandwidth?: number;
    readonly bandwidthBasis?: string;
  };
  readonly runtimes: readonly string[];
  /** The platforms entry naming what the device's memory limit counts (absent: read as "peak", the conservative figure). */
  readonly os?: string;
  readonly limitCounts: LimitCounts;
  readonly source: readonly string[];
  /** "built-in" or the --devices-file path. */
  readonly origin: string;
}

export interface Catalogue {
  readonly devices: readonly Device[];
  readonly runtimes: ReadonlyMap<string, Runtime>;
  readonly platforms: ReadonlyMap<string, Platform>;
}

const UNITS: Record<string, number> = {
  B: 1,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

/** "6 GiB" -> 6442450944; "51.2 GB/s" -> 51.2e9; plain numbers are bytes. */
export function parseSize(value: unknown, what: string): number {
  if (typeof value === "number") return value;
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)(?:\/s)?\s*$/.exec(String(value));
  if (!match) throw new UserError(`${what}: '${String(value)}' is not a size (e.g. 6 GiB, 512 MB)`);
  return Math.round(Number(match[1]) * UNITS[match[2]!]!);
}

let validator: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null } | undefined;

function validate(data: unknown, file: string): void {
  if (!validator) {
    const schema = JSON.parse(readFileSync(DEVICES_SCHEMA_FILE, "utf8")) as object;
    validator = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }
  if (!validator(data)) {
    const problems = (validator.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "(top)"} ${e.message ?? ""}`.trim());
    throw new UserError(`not a valid device file: ${problems.join("; ")}`, { file });
  }
}

interface RawRuntime {
  id: string;
  name: string;
  engine: RuntimeEngine;
  backend: RuntimeBackend;
  formats: ArtifactFormat[];
  overhead: { host: unknown; device?: unknown };
  overheadBasis?: string;
  source: string | string[];
}

interface RawDevice {
  id: string;
  name: string;
  kind?: string;
  soc?: string;
  memory: Record<string, unknown>;
  bandwidth: unknown;
  bandwidthBasis?: string;
  bandwidthEfficiency?: number;
  cpu?: { arch: string; repack?: CpuRepackProfile };
  gpu?: Record<string, unknown>;
  runtimes: string[];
  os?: string;
  source: string | string[];
}

interface RawPlatform {
  id: string;
  name: string;
  limitCounts: LimitCounts;
  basis: string;
  source: string | string[];
}

const list = (source: string | string[]): string[] => (Array.isArray(source) ? source : [source]);

function toRuntime(raw: RawRuntime): Runtime {
  const where = `runtime ${raw.id}`;
  return {
    id: raw.id,
    name: raw.name,
    engine: raw.engine,
    backend: raw.backend,
    formats: raw.formats,
    overhead: { host: parseSize(raw.overhead.host, where), device: raw.overhead.device === undefined ? 0 : parseSize(raw.overhead.device, where) },
    overheadBasis: raw.overheadBasis ?? "",
    source: list(raw.source),
  };
}

function toDevice(raw: RawDevice, origin: string, platforms: ReadonlyMap<string, Platform>): Device {
  const where = `device ${raw.id}`;
  const m = raw.memory;
  const optional = (value: unknown) => (value === undefined ? undefined : parseSize(value, where));
  const gpu = raw.gpu;
  return {
    id: raw.id,
    name: raw.name,
    ...(raw.kind ? { kind: raw.kind } : {}),
    ...(raw.soc ? { soc: raw.soc } : {}),
    memory: {
      total: parseSize(m["total"], where),
      available: parseSize(m["available"], where),
      availableBasis: String(m["availableBasis"]),
      ...(m["withoutEntitlement"] !== undefined ? { withoutEntitlement: optional(m["withoutEntitlement"])! } : {}),
      ...(m["gpuWorkingSet"] !== undefined ? { gpuWorkingSet: optional(m["gpuWorkingSet"])! } : {}),
      ...(m["gpuWorkingSetBasis"] !== undefined ? { gpuWorkingSetBasis: String(m["gpuWorkingSetBasis"]) } : {}),
      unified: Boolean(m["unified"] ?? gpu?.["unified"] ?? false),
    },
    bandwidth: parseSize(raw.bandwidth, where),
    ...(raw.bandwidthBasis ? { bandwidthBasis: raw.bandwidthBasis } : {}),
    ...(raw.bandwidthEfficiency !== undefined ? { bandwidthEfficiency: raw.bandwidthEfficiency } : {}),
    cpu: { arch: raw.cpu?.arch ?? "arm64", repack: raw.cpu?.repack ?? "none" },
    ...(gpu
      ? {
          gpu: {
            name: String(gpu["name"]),
            unified: Boolean(gpu["unified"] ?? false),
            ...(gpu["memory"] !== undefined ? { memory: optional(gpu["memory"])! } : {}),
            ...(gpu["available"] !== undefined ? { available: optional(gpu["available"])! } : {}),
            ...(gpu["availableBasis"] !== undefined ? { availableBasis: String(gpu["availableBasis"]) } : {}),
            ...(gpu["bandwidth"] !== undefined ? { bandwidth: optional(gpu["bandwidth"])! } : {}),
            ...(gpu["bandwidthBasis"] !== undefined ? { bandwidthBasis: String(gpu["bandwidthBasis"]) } : {}),
          },
        }
      : {}),
    runtimes: raw.runtimes,
    ...(raw.os ? { os: raw.os } : {}),
    limitCounts: raw.os ? (platforms.get(raw.os)?.limitCounts ?? "peak") : "peak",
    source: list(raw.source),
    origin,
  };
}

async function readCatalogueFile(file: string | URL): Promise<{ runtimes: RawRuntime[]; devices: RawDevice[]; platforms: RawPlatform[] }> {
  const label = file instanceof URL ? file.pathname : file;
  const text = await readFile(file, "utf8").catch((cause: NodeJS.ErrnoException) => {
    throw new UserError(cause.code === "ENOENT" ? "no such device file" : `cannot read the device file (${cause.message})`, { file: label });
  });
  let data: unknown;
  try {
    data = parse(text);
  } catch (cause) {
    throw new UserError(`not valid YAML (${(cause as Error).message.split("\n")[0]})`, { file: label });
  }
  validate(data, label);
  const d = data as { runtimes?: RawRuntime[]; devices?: RawDevice[]; platforms?: RawPlatform[] };
  return { runtimes: d.runtimes ?? [], devices: d.devices ?? [], platforms: d.platforms ?? [] };
}

/** The built-in catalogue, with `devicesFile`'s entries added (replacing built-in ones of the same id). */
export async function loadCatalogue(devicesFile?: string): Promise<Catalogue> {
  const builtIn = await readCatalogueFile(DEVICES_FILE);
  const user = devicesFile ? await readCatalogueFile(devicesFile) : { runtimes: [], devices: [], platforms: [] };
  const runtimes = new Map<string, Runtime>();
  for (const raw of [...builtIn.runtimes, ...user.runtimes]) runtimes.set(raw.id, toRuntime(raw));
  const platforms = new Map<string, Platform>();
  for (const raw of [...builtIn.platforms, ...user.platforms]) platforms.set(raw.id, { ...raw, source: list(raw.source) });
  const devices = new Map<string, Device>();
  for (const raw of builtIn.devices) devices.set(raw.id, toDevice(raw, "built-in", platforms));
  for (const raw of user.devices) devices.set(raw.id, toDevice(raw, devicesFile!, platforms));
  for (const device of devices.values()) {
    const file = device.origin === "built-in" ? DEVICES_FILE.pathname : device.origin;
    for (const id of device.runtimes) {
      if (!runtimes.has(id)) throw new UserError(`device ${device.id} lists runtime '${id}', which no runtimes entry defines`, { file });
    }
    if (device.os !== undefined && !platforms.has(device.os)) {
      throw new UserError(`device ${device.id} names os '${device.os}', which no platforms entry defines${didYouMean(device.os, [...platforms.keys()])}`, { file });
    }
  }
  return { devices: [...devices.values()], runtimes, platforms };
}

/** Devices by id, in the order asked ("this": the machine we run on, read now); all of them when `ids` is empty. */
export function selectDevices(catalogue: Catalogue, ids: readonly string[] | undefined): Device[] {
  if (!ids || ids.length === 0) return [...catalogue.devices];
  return ids.map((id) => {
    if (id === HOST_DEVICE_ID) return hostDevice(catalogue.platforms);
    const device = catalogue.devices.find((d) => d.id === id);
    if (!device) {
      const known = catalogue.devices.map((d) => d.id);
      throw new UserError(`unknown device '${id}'${didYouMean(id, known)}; known: ${HOST_DEVICE_ID} (this machine), ${known.join(", ")}`);
    }
    return device;
  });
}
