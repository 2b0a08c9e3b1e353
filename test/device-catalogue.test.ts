// The device catalogue's promises (formats/devices.yaml, issue 18): every device keeps a source, explains its
// budget and its bandwidth, and says what its OS's memory limit counts (a platforms entry per OS, each with its
// own sources); the devices people ask about are there; budgets sit below the memory they come out of; ids are
// unique. Figures come from loadCatalogue (which validates the file against formats/devices.schema.json); the
// platforms table and each device's `os` are read from the YAML itself, since the loader does not carry them.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { beforeAll, describe, expect, test } from "vitest";
import { loadCatalogue, type Catalogue } from "../src/fit/devices.js";
import { REPO_ROOT } from "./support/cli.js";

interface RawPlatform {
  id: string;
  name: string;
  limitCounts: string;
  basis: string;
  measure?: string;
  source: string | string[];
}
interface RawDevice {
  id: string;
  os?: string;
  source: string | string[];
}
interface RawFile {
  platforms: RawPlatform[];
  runtimes: { id: string }[];
  devices: RawDevice[];
}

const raw = parse(readFileSync(join(REPO_ROOT, "formats/devices.yaml"), "utf8")) as RawFile;
const schema = JSON.parse(readFileSync(join(REPO_ROOT, "formats/devices.schema.json"), "utf8")) as {
  definitions: { limitCounts: { enum: string[] } };
};
const sources = (source: string | string[]) => [source].flat();
const HTTPS_URL = /^https:\/\/[a-z0-9.-]+\.[a-z]{2,}(\/\S*)?$/i;

let catalogue: Catalogue;
beforeAll(async () => {
  catalogue = await loadCatalogue();
});

describe("the catalogue loads and validates", () => {
  test("loadCatalogue reads every entry, and the file validates against formats/devices.schema.json as the loader compiles it", () => {
    expect(catalogue.devices.length).toBe(raw.devices.length);
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(true);
  });
});

describe("every device keeps a source", () => {
  test("each device lists at least one https URL, and every source is a URL or a named document", () => {
    for (const device of catalogue.devices) {
      expect(device.source.some((s) => HTTPS_URL.test(s)), device.id).toBe(true);
      for (const s of device.source) expect(s, device.id).toMatch(/^(https:\/\/\S+|\S.{9,})$/);
    }
  });
});

describe("every device explains its budget and its bandwidth", () => {
  test("availableBasis and bandwidthBasis are real sentences, and so is each GPU's budget basis", () => {
    for (const device of catalogue.devices) {
      expect(device.memory.availableBasis.trim().length, device.id).toBeGreaterThan(20);
      expect(device.bandwidthBasis?.trim().length ?? 0, device.id).toBeGreaterThan(10);
      if (device.memory.gpuWorkingSet !== undefined) expect(device.memory.gpuWorkingSetBasis?.length ?? 0, device.id).toBeGreaterThan(20);
      if (device.gpu?.available !== undefined) {
        expect(device.gpu.availableBasis?.length ?? 0, device.id).toBeGreaterThan(20);
        expect(device.gpu.bandwidth, device.id).toBeGreaterThan(0);
        expect(device.gpu.bandwidthBasis?.length ?? 0, device.id).toBeGreaterThan(10);
      }
    }
  });
});

describe("every device says what its memory limit counts", () => {
  const platforms = new Map(raw.platforms.map((p) => [p.id, p]));

  test("each device names a platform the file defines", () => {
    for (const device of raw.devices) {
      expect(device.os, `${device.id} has no os`).toBeDefined();
      expect(platforms.has(device.os!), `${device.id}: os '${device.os}' is not a platforms entry`).toBe(true);
    }
  });

  test("iOS, Android, Linux, macOS and Windows each have a platform, with a limit-semantics value, a basis and https sources", () => {
    expect([...platforms.keys()]).toEqual(expect.arrayContaining(["ios", "android", "linux", "macos", "windows"]));
    for (const p of raw.platforms) {
      expect(schema.definitions.limitCounts.enum, p.id).toContain(p.limitCounts);
      expect(p.basis.length, p.id).toBeGreaterThan(200);
      expect(sources(p.source).length, p.id).toBeGreaterThan(0);
      for (const s of sources(p.source)) expect(s, p.id).toMatch(HTTPS_URL);
    }
  });

  test("the built-in OSes all count resident memory; 'peak' stays available for targets whose limit counts mapped pages", () => {
    for (const id of ["ios", "android", "linux", "macos", "windows"]) expect(platforms.get(id)!.limitCounts, id).toBe("resident");
    expect(schema.definitions.limitCounts.enum).toEqual(["resident", "peak"]);
    expect(raw.platforms.some((p) => p.limitCounts === "peak")).toBe(true);
  });

  test("devices sit on the platform their kind and runtimes imply", () => {
    const os = new Map(raw.devices.map((d) => [d.id, d.os]));
    for (const device of catalogue.devices) {
      if (device.id.startsWith("iphone")) expect(os.get(device.id), device.id).toBe("ios");
      if (device.id.startsWith("pixel") || device.id.startsWith("galaxy")) expect(os.get(device.id), device.id).toBe("android");
      if (device.soc?.startsWith("Apple M")) expect(os.get(device.id), device.id).toBe("macos");
      if (device.id.startsWith("raspberry-pi") || device.id.startsWith("jetson")) expect(os.get(device.id), device.id).toBe("linux");
    }
  });
});

describe("the devices people ask about are there", () => {
  const REQUESTED = [
    "iphone-16-pro",
    "iphone-17-pro",
    "pixel-10",
    "galaxy-s25",
    "jetson-orin-nano-super-8gb",
    "raspberry-pi-5-16gb",
    "snapdragon-x-laptop",
    "macbook-air-m4-16gb",
    "macbook-air-m4-24gb",
    "macbook-air-m5-16gb",
    "macbook-air-m5-24gb",
    "desktop-rtx-5060-8gb",
    "desktop-rtx-5090-32gb",
  ];

  test("each requested id exists with the memory its name says", () => {
    const byId = new Map(catalogue.devices.map((d) => [d.id, d]));
    for (const id of REQUESTED) expect(byId.has(id), id).toBe(true);
    const GiB = 2 ** 30;
    for (const [id, total] of [["raspberry-pi-5-16gb", 16], ["jetson-orin-nano-super-8gb", 8], ["macbook-air-m4-16gb", 16], ["macbook-air-m4-24gb", 24], ["macbook-air-m5-16gb", 16], ["macbook-air-m5-24gb", 24]] as const) {
      expect(byId.get(id)!.memory.total / GiB, id).toBe(total);
    }
    expect(byId.get("desktop-rtx-5060-8gb")!.gpu!.memory! / GiB).toBe(8);
    expect(byId.get("desktop-rtx-5090-32gb")!.gpu!.memory! / GiB).toBe(32);
    expect(byId.get("jetson-orin-nano-super-8gb")!.memory.unified).toBe(true);
    expect(byId.get("jetson-orin-nano-super-8gb")!.runtimes).toContain("llama.cpp-cuda");
    expect(byId.get("snapdragon-x-laptop")!.runtimes).toEqual(["llama.cpp-cpu", "onnxruntime-cpu"]);
    expect(byId.get("snapdragon-x-laptop")!.cpu.repack).toBe("arm-i8mm");
  });
});

describe("budgets sit below the memory they come out of", () => {
  test("memory.available < memory.total, gpuWorkingSet < total, gpu.available < gpu.memory; all positive", () => {
    for (const device of catalogue.devices) {
      const m = device.memory;
      expect(m.available, device.id).toBeGreaterThan(0);
      expect(m.available, device.id).toBeLessThan(m.total);
      if (m.withoutEntitlement !== undefined) expect(m.withoutEntitlement, device.id).toBeLessThanOrEqual(m.available);
      if (m.gpuWorkingSet !== undefined) expect(m.gpuWorkingSet, device.id).toBeLessThan(m.total);
      if (device.gpu?.available !== undefined) {
        expect(device.gpu.available, device.id).toBeGreaterThan(0);
        expect(device.gpu.available, device.id).toBeLessThan(device.gpu.memory!);
      }
      expect(device.bandwidth, device.id).toBeGreaterThan(0);
    }
  });
});

describe("ids are unique", () => {
  test("no two devices, runtimes or platforms in the file share an id, and ids are lowercase-hyphenated", () => {
    for (const list of [raw.devices, raw.runtimes, raw.platforms]) {
      const ids = list.map((entry) => entry.id);
      expect(new Set(ids).size).toBe(ids.length);
    }
    for (const device of raw.devices) expect(device.id).toMatch(/^[a-z0-9]+(-[a-z0-9.]+)*$/);
  });
});
