import { join } from "node:path";
import fc from "fast-check";
import { resolveSource } from "../../../src/readers/hub.js";
import { FakeHub, fixtureFiles } from "../../support/fake-hub.js";
import type { FuzzTarget } from "../target.js";
import { microModel } from "./base.js";
import { anyJson, edgeString } from "./values.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const FILES = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"];
let hub: Promise<FakeHub> | undefined;

/** A loopback Hub serving the micro model, started once per process; each case rewrites its listing. */
function fakeHub(): Promise<FakeHub> {
  hub ??= FakeHub.start([{ id: "fuzz/micro", commit: COMMIT, files: fixtureFiles(microModel()) }]);
  return hub;
}

interface HubCase {
  /** Which listing entry (by index) gets which key set to which value. */
  readonly edits: readonly { entry: number; key: "path" | "size" | "oid" | "lfs" | "type"; value: unknown }[];
}

export const hubTarget: FuzzTarget<HubCase> = {
  name: "hub",
  description: "a Hub whose tree listing names traversing paths, bad sizes and object ids, for hf: sources",
  input: fc.record({
    edits: fc.array(
      fc.record({
        entry: fc.nat({ max: 5 }),
        key: fc.constantFrom("path", "size", "oid", "lfs", "type"),
        value: fc.oneof(anyJson, edgeString, fc.constantFrom("../config.json", "/etc/hostname", "a".repeat(64), "config.json", { oid: "../../x", size: 1 })),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  async run(input, scratch) {
    const server = await fakeHub();
    // Each edit rewrites one key of the entry listed for one of the model's files.
    server.tamperListing = (entry) =>
      input.edits.filter((edit) => FILES[edit.entry % FILES.length] === entry["path"]).reduce((changed, { key, value }) => ({ ...changed, [key]: value }), entry);
    try {
      const resolved = await resolveSource("hf:fuzz/micro", { hubUrl: server.url, cacheDir: join(scratch, "cache"), progress: false, log: () => {}, env: {} });
      await resolved.dispose();
    } finally {
      server.tamperListing = undefined;
    }
  },
};
