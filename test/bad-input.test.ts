import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "../src/errors.js";
import { writeAtomically } from "../src/writers/atomic-file.js";
import { StagingFolder } from "../src/writers/staging-folder.js";
import { TINY_LLAMA, copyFixture, listFiles, runCli, tempDir } from "./support/cli.js";

/** Builds safetensors bytes from a header given verbatim, so the header can be broken on purpose. */
function rawSafetensors(header: string | object, dataBytes: number, declaredLength?: bigint): Buffer {
  const json = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(declaredLength ?? BigInt(json.length));
  return Buffer.concat([length, json, Buffer.alloc(dataBytes)]);
}

/** A model folder: the tiny Llama's config and tokenizer with the given weights file. */
function modelWith(weights: Buffer): string {
  const dir = copyFixture(TINY_LLAMA);
  writeFileSync(join(dir, "model.safetensors"), weights);
  return dir;
}

const outDir = tempDir();
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

/** Converts and checks the promise every bad input shares: exit 2, one message, nothing at the destination. */
function expectRejected(source: string, expected: RegExp, extraArgs: string[] = []) {
  const output = join(outDir, `out-${Math.random().toString(36).slice(2)}.gguf`);
  const result = runCli(["convert", source, "--to", "gguf", "--scheme", "f32", "-o", output, "--no-progress", ...extraArgs]);
  expect(result.stderr).toMatch(expected);
  expect(result.stderr).toMatch(/^error: /);
  expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace for user errors
  expect(result.code).toBe(2);
  expect(existsSync(output)).toBe(false);
  expect(listFiles(outDir).filter((name) => name.includes(".partial"))).toEqual([]);
  return result;
}

const tensor = (dtype: string, shape: number[], offsets: [number, number]) => ({ dtype, shape, data_offsets: offsets });

describe("a malformed safetensors file is refused with the file, tensor and problem named", () => {
  it("truncated below the 8-byte length prefix", () => {
    const dir = modelWith(Buffer.from([1, 2, 3]));
    expectRejected(dir, /model\.safetensors: truncated: the file is 3 bytes/);
  });

  it("header length past the end of the file", () => {
    const dir = modelWith(rawSafetensors("{}", 0, 1_000_000n));
    expectRejected(dir, /model\.safetensors: header length 1000000 runs past the end of the file/);
  });

  it("truncated data: tensor offsets past the end of the data section", () => {
    const dir = modelWith(rawSafetensors({ "model.norm.weight": tensor("F32", [256], [0, 1024]) }, 100));
    expectRejected(dir, /model\.safetensors, tensor 'model\.norm\.weight': data_offsets \[0, 1024\] out of range: the data section is 100 bytes/);
  });

  it("overlapping tensors", () => {
    const header = { a: tensor("F32", [4], [0, 16]), b: tensor("F32", [4], [8, 24]) };
    const dir = modelWith(rawSafetensors(header, 24));
    expectRejected(dir, /tensor 'b': data overlaps tensor 'a'/);
  });

  it("shape x dtype not equal to the byte length", () => {
    const dir = modelWith(rawSafetensors({ w: tensor("BF16", [4, 4], [0, 16]) }, 16));
    expectRejected(dir, /tensor 'w': shape \[4, 4\] x BF16 needs 32 bytes but data_offsets \[0, 16\] hold 16/);
  });

  it("unknown dtype", () => {
    const dir = modelWith(rawSafetensors({ w: tensor("F12", [4], [0, 8]) }, 8));
    expectRejected(dir, /tensor 'w': unknown dtype 'F12' \(safetensors defines F64, F32, F16, BF16/);
  });

  it("a known dtype we cannot convert is named", () => {
    const dir = modelWith(rawSafetensors({ "model.norm.weight": tensor("I8", [256], [0, 256]) }, 256));
    expectRejected(dir, /tensor 'model\.norm\.weight': dtype I8 is not supported for conversion \(supported: F32, F16, BF16\)/);
  });

  it("invalid JSON header", () => {
    const dir = modelWith(rawSafetensors('{"w": {"dtype": "F32",', 0));
    expectRejected(dir, /model\.safetensors: invalid JSON header/);
  });
});

describe("a model folder that cannot be converted says why", () => {
  it("missing config.json", () => {
    const dir = copyFixture(TINY_LLAMA);
    rmSync(join(dir, "config.json"));
    expectRejected(dir, /config\.json: missing config\.json/);
  });

  it("unsupported architecture lists the supported ones", () => {
    const dir = copyFixture(TINY_LLAMA);
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, architectures: ["GPTBigCodeForCausalLM"] }));
    const result = expectRejected(dir, /architecture GPTBigCodeForCausalLM is not supported; supported: /);
    for (const supported of ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"]) {
      expect(result.stderr).toContain(supported);
    }
  });

  it("a folder with only pytorch_model.bin is refused without unpickling, with a way forward", () => {
    const dir = copyFixture(TINY_LLAMA);
    rmSync(join(dir, "model.safetensors"));
    writeFileSync(join(dir, "pytorch_model.bin"), "not read");
    const result = expectRejected(dir, /only PyTorch pickle weights found \(pytorch_model\.bin\)\. edgequant never loads pickle files/);
    expect(result.stderr).toMatch(/safe_serialization=True/);
  });

  it("a shard named by the index but missing", () => {
    const dir = copyFixture(TINY_LLAMA);
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { "model.norm.weight": "model-00002-of-00002.safetensors" } }));
    expectRejected(dir, /model\.safetensors\.index\.json: shard 'model-00002-of-00002\.safetensors' listed in the index is missing/);
  });
});

describe("NaN and Inf weights are converted, with a warning that counts them", () => {
  it("warns with the tensor name and count, exits 0 and writes the file", () => {
    const dir = copyFixture(TINY_LLAMA);
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString());
    const start = 8 + headerLength + header["model.norm.weight"].data_offsets[0];
    bytes.writeUInt16LE(0x7fc0, start); // BF16 NaN
    bytes.writeUInt16LE(0x7f80, start + 2); // BF16 +Inf
    bytes.writeUInt16LE(0xff80, start + 4); // BF16 -Inf
    writeFileSync(path, bytes);
    const output = join(outDir, "nan.gguf");
    const result = runCli(["convert", dir, "--to", "gguf", "--scheme", "f32", "-o", output, "--no-progress"]);
    expect(result.stderr).toContain("warning: tensor 'model.norm.weight': 3 NaN/Inf values in the source");
    expect(result.code).toBe(0);
    expect(existsSync(output)).toBe(true);
  });
});

describe("an output location that cannot take the file leaves nothing behind", () => {
  it("unwritable location: a parent of the output path is a file", () => {
    // Permission bits do not stop root (CI runs as root); a file in the path stops everyone.
    const blocker = join(outDir, "a-file");
    writeFileSync(blocker, "");
    const output = join(blocker, "model.gguf");
    const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "-o", output, "--no-progress"]);
    expect(result.stderr).toMatch(/a-file\/model\.gguf: cannot write output: a parent of the output path is not a directory; nothing was written/);
    expect(result.code).toBe(2);
    expect(existsSync(output)).toBe(false);
  });

  it("full disk, for every format: the write fails midway, the message names the output, and neither output nor temp file remains", () => {
    const full = join(tempDir(), "full");
    mkdirSync(full);
    let limited: { dir: string; prefix?: string };
    try {
      // A 1 MB tmpfs gives a real ENOSPC; mounting needs root, as CI has.
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", full], { stdio: "ignore" });
      limited = { dir: full };
    } catch {
      // Without root, a file-size limit makes the kernel fail the write the same way (EFBIG).
      limited = { dir: full, prefix: "ulimit -f 1024;" };
    }
    try {
      // Every format names the destination the user gave, never its hidden temporary.
      for (const [format, name, flags] of [["gguf", "model.gguf", ["--scheme", "f32"]], ["onnx", "model-onnx", ["--bits", "32"]], ["mlx", "model-mlx", ["--bits", "8"]]] as const) {
        const output = join(limited.dir, name);
        const result = runCli(["convert", TINY_LLAMA, "--to", format, ...flags, "-o", output, "--no-progress"], { shellPrefix: limited.prefix });
        expect(result.stderr).toContain(`error: ${output}: cannot write output: `);
        expect(result.stderr).toMatch(/cannot write output: (no space left on the device|file too large for the file system); nothing was written/);
        expect(result.code).toBe(2);
        expect(listFiles(limited.dir)).toEqual([]);
      }
    } finally {
      if (!limited.prefix) execFileSync("umount", [full]);
    }
  });
});

describe("only the output's own failures are reported as the output's", () => {
  // An oversized input row once surfaced as "cannot write output: The value of "size" is out of range".
  const inputFailure = () => Object.assign(new Error("EIO: i/o error, read"), { code: "EIO", syscall: "read", errno: -5 });

  it("a file: an input read failing while the model is written stays the input's error, and nothing is left", async () => {
    const dir = tempDir();
    const path = join(dir, "model.gguf");
    await expect(writeAtomically(path, async (handle) => {
      await handle.write(new Uint8Array(16), 0, 16, 0);
      throw inputFailure();
    })).rejects.toThrow(/^EIO: i\/o error, read$/);
    expect(listFiles(dir)).toEqual([]);
  });

  it("a folder: the same, for a file of an ONNX or MLX folder", async () => {
    const dir = tempDir();
    const staging = await StagingFolder.create(join(dir, "model-mlx"));
    const failure = staging.writeFile("model.safetensors", async () => {
      throw inputFailure();
    });
    await expect(failure).rejects.toThrow(/^EIO: i\/o error, read$/);
    await expect(failure).rejects.not.toBeInstanceOf(UserError);
    await staging.discard();
    expect(listFiles(dir)).toEqual([]);
  });

  it("a Node error that is no failed system call (a too-large buffer) is not called the output's either", async () => {
    const dir = tempDir();
    const tooLarge = Object.assign(new RangeError('The value of "size" is out of range.'), { code: "ERR_OUT_OF_RANGE" });
    await expect(writeAtomically(join(dir, "model.gguf"), async () => {
      throw tooLarge;
    })).rejects.toBe(tooLarge);
  });
});

describe("bad flags exit with code 2 and say what is accepted", () => {
  const cases: [string[], RegExp][] = [
    [["convert", TINY_LLAMA, "--to", "tflite"], /argument 'tflite' is invalid\. Allowed choices are gguf, onnx, mlx/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--bits", "3"], /--bits must be one of 32, 16, 8, 4, 1\.58; got '3'/],
    [["convert", TINY_LLAMA, "--to", "onnx", "--bits", "3"], /--bits for --to onnx must be 32, 16, 8, 4 or 1\.58; got '3'/],
    [["convert", TINY_LLAMA, "--to", "mlx", "--bits", "7"], /--bits for --to mlx must be one of 2, 3, 4, 5, 6, 8, 1\.58; got '7'/],
    [["convert", TINY_LLAMA, "--to", "mlx", "--mixed", "3_5"], /--mixed must be one of/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--mixed", "3_6"], /--mixed can only be used with --to mlx/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "q9_k"], /unknown scheme 'q9_k' \(did you mean 'q2_k'\?\); schemes: f32, f16, bf16, q8_0/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--scheme", "f16", "--bits", "16"], /give --scheme or --bits, not both/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--threads", "0"], /--threads must be a positive integer, got '0'/],
    [["convert", TINY_LLAMA], /required option '--to <format>' not specified/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--frobnicate"], /unknown option '--frobnicate'/],
    [["convert", TINY_LLAMA, "--to", "gguf", "--layout", "genai"], /--layout can only be used with --to onnx/],
    [["convert", TINY_LLAMA, "--to", "onnx", "--split-max-size", "1G"], /--split-max-size can only be used with --to gguf/],
    [["convert", TINY_LLAMA, "--to", "onnx", "--scheme", "q4_k_m"], /--scheme names GGUF types; for --to onnx use --bits/],
  ];
  for (const [args, message] of cases) {
    it(args.slice(2).join(" ") || "missing --to", () => {
      const result = runCli([...args, "-o", join(outDir, "flags.gguf")]);
      expect(result.stderr).toMatch(message);
      expect(result.code).toBe(2);
      expect(existsSync(join(outDir, "flags.gguf"))).toBe(false);
    });
  }
});

describe("a GGUF destination without the .gguf extension is refused before any work", () => {
  it("-o model.bin exits 2, naming the file, and writes nothing", () => {
    const output = join(outDir, "model.bin");
    const result = runCli(["convert", TINY_LLAMA, "--to", "gguf", "-o", output, "--no-progress"]);
    expect(result.stderr).toContain(`${output}: a GGUF output's name must end in .gguf`);
    expect(result.code).toBe(2);
    expect(existsSync(output)).toBe(false);
  });
});

describe("a LongRoPE config llama.cpp could not use is refused, naming config.json and the key", () => {
  /** The tiny Llama with config.json keys replaced. */
  function configWith(changes: Record<string, unknown>): string {
    const dir = copyFixture(TINY_LLAMA);
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...changes }));
    return dir;
  }

  it("factor lists that are not half the rotary dimensions long", () => {
    const dir = configWith({ rope_scaling: { type: "longrope", long_factor: [1, 2], short_factor: [1, 1] }, original_max_position_embeddings: 64 });
    expectRejected(dir, /config\.json: rope_scaling\.long_factor must list 16 positive numbers/);
  });

  it("a partial_rotary_factor outside (0, 1]", () => {
    expectRejected(configWith({ partial_rotary_factor: 1.5 }), /config\.json: 'partial_rotary_factor' must be in \(0, 1\]/);
  });
});
