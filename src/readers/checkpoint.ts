import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { HfConfig } from "../arch/config.js";
import { UserError } from "../errors.js";
import { checkRegularFile } from "./regular-file.js";
import { SafetensorsFile, type TensorInfo } from "./safetensors.js";

const INDEX_FILE = "model.safetensors.index.json";
const PICKLE_WEIGHTS = /^(pytorch_model.*\.bin|.*\.pt|.*\.pth|.*\.ckpt)$/;

/** A tensor of the checkpoint and the shard that holds it. */
export interface CheckpointTensor extends TensorInfo {
  readonly file: SafetensorsFile;
}

/** A Hugging Face checkpoint on disk: config plus safetensors shards, headers validated, data not yet read. */
export interface Checkpoint {
  readonly directory: string;
  readonly config: HfConfig;
  readonly configFile: string;
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  close(): Promise<void>;
}

/** Opens a model folder or a single .safetensors file (its folder must hold config.json). */
export async function openCheckpoint(source: string): Promise<Checkpoint> {
  const path = resolve(source);
  if (!existsSync(path)) throw new UserError("no such file or folder", { file: source });
  const isFile = statSync(path).isFile();
  const directory = isFile ? dirname(path) : path;
  const shardPaths = isFile ? [path] : await findShards(directory);
  const { config, configFile } = await readConfig(directory);

  const shards: SafetensorsFile[] = [];
  try {
    for (const shard of shardPaths) shards.push(await SafetensorsFile.open(shard));
    const tensors = new Map<string, CheckpointTensor>();
    for (const file of shards) {
      for (const info of file.tensors.values()) {
        const other = tensors.get(info.name);
        if (other) throw new UserError(`tensor also present in ${basename(other.file.path)}`, { file: file.path, tensor: info.name });
        tensors.set(info.name, { ...info, file });
      }
    }
    return { directory, config, configFile, tensors, close: () => closeAll(shards) };
  } catch (error) {
    await closeAll(shards);
    throw error;
  }
}

async function closeAll(files: readonly SafetensorsFile[]) {
  await Promise.all(files.map((file) => file.close()));
}

async function findShards(directory: string): Promise<string[]> {
  const indexPath = join(directory, INDEX_FILE);
  if (existsSync(indexPath)) return shardsFromIndex(indexPath, directory);
  const entries = readdirSync(directory);
  const safetensors = entries.filter((name) => name.endsWith(".safetensors")).sort();
  if (safetensors.includes("model.safetensors")) return [join(directory, "model.safetensors")];
  if (safetensors.length > 0) return safetensors.map((name) => join(directory, name));
  const pickles = entries.filter((name) => PICKLE_WEIGHTS.test(name));
  if (pickles.length > 0) {
    throw new UserError(
      `only PyTorch pickle weights found (${pickles.join(", ")}). edgequant never loads pickle files: unpickling can run arbitrary code. ` +
        "Get safetensors weights instead: many Hub repos have them on a 'refs/pr/N' revision (the safetensors conversion bot), " +
        "or convert locally with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)",
      { file: directory },
    );
  }
  throw new UserError("no model.safetensors, sharded safetensors or model.safetensors.index.json in this folder", { file: directory });
}

async function shardsFromIndex(indexPath: string, directory: string): Promise<string[]> {
  const index = await readJson(indexPath);
  const weightMap = typeof index === "object" && index !== null ? (index as { weight_map?: unknown }).weight_map : undefined;
  if (typeof weightMap !== "object" || weightMap === null) throw new UserError("missing 'weight_map'", { file: indexPath });
  const files = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const file of files) {
    // A shard is a file beside the index: no paths, no "." or "..".
    if (typeof file !== "string" || file === "" || file === "." || file === ".." || file.includes("/") || file.includes("\\")) {
      throw new UserError(`invalid shard name ${JSON.stringify(file)}`, { file: indexPath });
    }
    if (!existsSync(join(directory, file))) throw new UserError(`shard '${file}' listed in the index is missing`, { file: indexPath });
  }
  return (files as string[]).sort().map((file) => join(directory, file));
}

async function readConfig(directory: string): Promise<{ config: HfConfig; configFile: string }> {
  const configFile = join(directory, "config.json");
  if (!existsSync(configFile)) {
    throw new UserError("missing config.json: edgequant needs the model's Hugging Face config to know its architecture", { file: configFile });
  }
  const config = await readJson(configFile);
  if (typeof config !== "object" || config === null || Array.isArray(config)) throw new UserError("expected a JSON object", { file: configFile });
  return { config: config as HfConfig, configFile };
}

/** Parses a JSON file, naming it in the error if it is not valid JSON. */
export async function readJson(path: string): Promise<unknown> {
  checkRegularFile(path, "JSON file");
  const text = await readFile(path, "utf8").catch((cause: NodeJS.ErrnoException) => {
    throw new UserError(`cannot read (${cause.code ?? cause.message})`, { file: path });
  });
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new UserError(`invalid JSON (${(cause as Error).message})`, { file: path });
  }
}

/** Parses a JSON file if it exists. */
export async function readOptionalJson(path: string): Promise<unknown> {
  return existsSync(path) ? readJson(path) : undefined;
}
