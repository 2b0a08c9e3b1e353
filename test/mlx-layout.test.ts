// Acceptance 3 of the MLX writer: the folder we write for test/fixtures/tiny-llama is the one
// mlx-lm's convert writes, tensor for tensor, and every quantized tensor holds exactly what
// MLX's quantizer computes (checked against test/support/mlx-reference.ts).
//
// The rules this test states independently of src/, with where mlx-lm / MLX fix them
// (ml-explore/mlx-lm d78bf58, ml-explore/mlx 846d176):
//  R1 Names: Hugging Face names are kept; mlx_lm/models/llama.py, qwen2.py, qwen3.py declare
//     model.embed_tokens, model.layers.N.self_attn.{q,k,v,o}_proj, .mlp.{gate,up,down}_proj,
//     the norms and lm_head; sanitize() drops self_attn.rotary_emb.inv_freq, and lm_head.weight
//     when tie_word_embeddings is true.
//  R2 Which tensors are quantized: every module with to_quantized (nn.Linear and nn.Embedding,
//     mlx/python/mlx/nn/layers/quantized.py `quantize`) whose input dimension the group size
//     divides (mlx_lm/utils.py quantize_model: `module.weight.shape[-1] % group_size != 0` -> not
//     quantized). Norms and biases stay float.
//  R3 Shapes and dtypes (mlx/ops.cpp affine_quantize): X.weight uint32 [out, in * bits / 32],
//     X.scales and X.biases [out, in / group_size] in the weight's dtype; X.bias unchanged.
//  R4 Float dtype: mlx_lm/convert.py casts every float to config torch_dtype (bfloat16 here).
//  R5 config.json (mlx_lm/utils.py quantize_model / save_config): "quantization" =
//     {"group_size", "bits", "mode": "affine"}, plus, when a predicate returns a dict (the
//     mixed recipes), an entry per quantized module path; "quantization_config" is a copy.
//  R6 Mixed recipes (mlx_lm/convert.py mixed_quant_predicate_builder): lm_head and the v_proj /
//     down_proj of layers with use_more_bits get the high bits, where use_more_bits(i) =
//     i < n//8 or i >= 7n//8 or (i - n//8) % 3 == 2; everything else the low bits.
//  R7 Files (mlx_lm/utils.py save_model / make_shards): shards of at most 5 GiB named
//     model-0000i-of-0000n.safetensors, or model.safetensors alone; metadata {"format": "mlx"};
//     model.safetensors.index.json with metadata.total_size = sum of tensor bytes and a sorted
//     weight_map; generation_config.json and the tokenizer files beside them.

import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertToMlx, type MlxReport } from "../src/convert/mlx.js";
import { TINY_LLAMA, tempDir } from "./support/cli.js";
import { readMlxFolder, referenceQuantizeMatrix, wordValues, type MlxFolder, type StoredTensor } from "./support/mlx-reference.js";
import { SafetensorsFile } from "./support/safetensors.js";

const LINEAR_OR_EMBEDDING = /^(model\.embed_tokens|model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)|lm_head)\.weight$/;

interface Expected {
  name: string;
  dtype: string;
  shape: number[];
}

interface Variant {
  label: string;
  bits: 3 | 4;
  groupSize?: 32 | 64;
  mixed?: "3_6";
  bitsOf: (module: string) => number;
}

const LAYERS = 6;
const useMoreBits = (i: number) => {
  const eighth = Math.floor(LAYERS / 8);
  return i < eighth || i >= Math.floor((7 * LAYERS) / 8) || (((i - eighth) % 3) + 3) % 3 === 2;
};
/** R6 for this 6-layer model: layers 2 and 5 (n//8 = 0, 7n//8 = 5, (i - 0) % 3 == 2). */
const mixed36 = (module: string) => {
  if (module === "lm_head") return 6;
  const layer = /^model\.layers\.(\d+)\./.exec(module);
  const index = layer ? Number(layer[1]) : 0;
  if ((module.endsWith("v_proj") || module.endsWith("down_proj")) && useMoreBits(index)) return 6;
  return 3;
};

const VARIANTS: Variant[] = [
  { label: "4-bit g64", bits: 4, bitsOf: () => 4 },
  { label: "3-bit g32", bits: 3, groupSize: 32, bitsOf: () => 3 },
  { label: "mixed 3_6", bits: 3, mixed: "3_6", bitsOf: mixed36 },
];

const source = new SafetensorsFile(join(TINY_LLAMA, "model.safetensors"));
const sourceConfig = JSON.parse(readFileSync(join(TINY_LLAMA, "config.json"), "utf8")) as Record<string, unknown>;

/** The tensor list mlx-lm would write, from R1-R4 and R6. */
function expectedTensors(variant: Variant): Expected[] {
  const groupSize = variant.groupSize ?? 64;
  const out: Expected[] = [];
  for (const name of source.names()) {
    if (name.includes("rotary_emb.inv_freq")) continue;
    const shape = source.shape(name);
    const module = name.slice(0, name.lastIndexOf("."));
    if (LINEAR_OR_EMBEDDING.test(name) && shape[1]! % groupSize === 0) {
      const bits = variant.bitsOf(module);
      out.push({ name: `${module}.weight`, dtype: "U32", shape: [shape[0]!, (shape[1]! * bits) / 32] });
      out.push({ name: `${module}.scales`, dtype: "BF16", shape: [shape[0]!, shape[1]! / groupSize] });
      out.push({ name: `${module}.biases`, dtype: "BF16", shape: [shape[0]!, shape[1]! / groupSize] });
    } else {
      out.push({ name, dtype: "BF16", shape });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : 1));
}

const dir = tempDir("edgequant-mlx-layout-");
const outputs = new Map<string, { report: MlxReport; folder: MlxFolder; path: string }>();

beforeAll(async () => {
  for (const variant of VARIANTS) {
    const path = join(dir, variant.label.replace(/\W+/g, "-"));
    const report = await convertToMlx({
      source: TINY_LLAMA,
      output: path,
      bits: variant.bits,
      ...(variant.groupSize ? { groupSize: variant.groupSize } : {}),
      ...(variant.mixed ? { mixed: variant.mixed } : {}),
    });
    outputs.set(variant.label, { report, folder: readMlxFolder(path), path });
  }
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(VARIANTS)("tiny-llama -> MLX, $label", (variant) => {
  const get = () => outputs.get(variant.label)!;

  it("has exactly the tensors mlx-lm writes: names, dtypes, shapes (R1-R4, R6)", () => {
    const actual = [...get().folder.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })).sort((a, b) => (a.name < b.name ? -1 : 1));
    const expected = expectedTensors(variant);
    expect(actual).toEqual(expected);
    expect(get().report.tensors).toBe(expected.length);
    expect(get().report.decisions).toEqual([]);
  });

  it("config.json carries mlx-lm's quantization block (R5, R6) and keeps the model's own keys", () => {
    const { config } = get().folder;
    const groupSize = variant.groupSize ?? 64;
    const expected: Record<string, unknown> = { group_size: groupSize, bits: variant.bits, mode: "affine" };
    if (variant.mixed) {
      for (const name of source.names()) {
        if (!LINEAR_OR_EMBEDDING.test(name)) continue;
        const module = name.slice(0, name.lastIndexOf("."));
        expected[module] = { group_size: groupSize, bits: variant.bitsOf(module), mode: "affine" };
      }
    }
    expect(config["quantization"]).toEqual(expected);
    expect(config["quantization_config"]).toEqual(expected);
    for (const [key, value] of Object.entries(sourceConfig)) expect(config[key], key).toEqual(value);
    expect(Object.keys(config)).toEqual([...Object.keys(config)].sort());
  });

  it("every quantized tensor equals MLX's quantizer on the source weights, bit for bit", () => {
    const { folder, report } = get();
    let tensors = 0;
    let values = 0;
    const groupSize = variant.groupSize ?? 64;
    for (const name of source.names()) {
      if (!LINEAR_OR_EMBEDDING.test(name)) continue;
      const module = name.slice(0, name.lastIndexOf("."));
      const weight = source.read(name);
      const bits = variant.bitsOf(module);
      const expected = referenceQuantizeMatrix(weight.data, weight.shape[1]!, groupSize, bits, "BF16");
      expect(Array.from(wordValues(folder.tensors.get(`${module}.weight`)!)), `${module}.weight`).toEqual(Array.from(expected.words));
      expect(halves(folder.tensors.get(`${module}.scales`)!), `${module}.scales`).toEqual(expected.scaleBits);
      expect(halves(folder.tensors.get(`${module}.biases`)!), `${module}.biases`).toEqual(expected.biasBits);
      tensors++;
      values += weight.data.length;
    }
    expect(tensors).toBe(6 * 7 + 2);
    console.log(`[mlx-layout] ${variant.label}: ${tensors} quantized tensors, ${values} weights bit-identical to the reference; ${report.bitsPerWeight.toFixed(3)} bits per weight`);
  });

  it("unquantized tensors are the source values in BF16, and the files are mlx-lm's (R7)", () => {
    const { folder, path } = get();
    for (const name of source.names()) {
      if (LINEAR_OR_EMBEDDING.test(name)) continue;
      expect(Buffer.from(folder.tensors.get(name)!.bytes).equals(rawBytes(name)), name).toBe(true);
    }
    expect(readdirSync(path).sort()).toEqual(
      ["config.json", "generation_config.json", "model.safetensors", "model.safetensors.index.json", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"].sort(),
    );
    for (const file of ["generation_config.json", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json"]) {
      expect(readFileSync(join(path, file)).equals(readFileSync(join(TINY_LLAMA, file))), file).toBe(true);
    }
    expect(folder.fileMetadata.get("model.safetensors")).toEqual({ format: "mlx" });
    const total = [...folder.tensors.values()].reduce((sum, t) => sum + t.bytes.length, 0);
    expect(folder.index!.metadata["total_size"]).toBe(total);
    expect(folder.index!.metadata["total_parameters"]).toBe(source.names().reduce((sum, n) => sum + source.shape(n).reduce((a, b) => a * b, 1), 0));
    expect(Object.keys(folder.index!.weight_map)).toEqual([...folder.tensors.keys()].sort());
    expect(new Set(Object.values(folder.index!.weight_map))).toEqual(new Set(["model.safetensors"]));
  });
});

describe("sharding (R7), forced with a 1 MB limit", () => {
  const path = join(dir, "sharded");
  let report: MlxReport;
  let folder: MlxFolder;
  const MAX = 1_000_000;

  beforeAll(async () => {
    report = await convertToMlx({ source: TINY_LLAMA, output: path, bits: 4, maxShardBytes: MAX });
    folder = readMlxFolder(path);
  });

  it("writes model-0000i-of-0000n.safetensors shards and an index whose sizes add up", () => {
    const shards = Object.values(folder.index!.weight_map);
    const files = [...new Set(shards)].sort();
    expect(files.length).toBeGreaterThan(2);
    expect(files).toEqual(files.map((_, i) => `model-${String(i + 1).padStart(5, "0")}-of-${String(files.length).padStart(5, "0")}.safetensors`));
    expect(readdirSync(path).filter((f) => f.endsWith(".safetensors")).sort()).toEqual(files);
    expect(existsSync(join(path, "model.safetensors"))).toBe(false);
    expect(report.shards).toBe(files.length);

    const sumOfShards = [...folder.fileDataBytes.values()].reduce((a, b) => a + b, 0);
    expect(folder.index!.metadata["total_size"]).toBe(sumOfShards);
    expect(report.bytes).toBe(sumOfShards);
    for (const [name, file] of Object.entries(folder.index!.weight_map)) expect(folder.tensors.get(name)?.file, name).toBe(file);
    for (const file of files) {
      expect(folder.fileMetadata.get(file)).toEqual({ format: "mlx" });
      // make_shards: a shard only exceeds the limit when one tensor alone does.
      const tensorsInFile = [...folder.tensors.values()].filter((t) => t.file === file);
      const modules = new Set(tensorsInFile.map((t) => t.name.slice(0, t.name.lastIndexOf("."))));
      if (modules.size > 1) expect(folder.fileDataBytes.get(file)!).toBeLessThanOrEqual(MAX);
    }
  });

  it("holds the same tensors, byte for byte, as the single-file output", () => {
    const single = outputs.get("4-bit g64")!.folder;
    expect([...folder.tensors.keys()].sort()).toEqual([...single.tensors.keys()].sort());
    for (const [name, tensor] of folder.tensors) expect(Buffer.from(tensor.bytes).equals(Buffer.from(single.tensors.get(name)!.bytes)), name).toBe(true);
  });
});

function halves(tensor: StoredTensor): number[] {
  const view = new DataView(tensor.bytes.buffer, tensor.bytes.byteOffset, tensor.bytes.byteLength);
  return Array.from({ length: tensor.bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true));
}

function rawBytes(name: string): Buffer {
  const file = readFileSync(join(TINY_LLAMA, "model.safetensors"));
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { data_offsets: [number, number] }>;
  const [begin, end] = header[name]!.data_offsets;
  return file.subarray(8 + headerLength + begin, 8 + headerLength + end);
}
