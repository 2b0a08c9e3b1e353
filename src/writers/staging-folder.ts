/**
 * A model folder written as a whole or not at all: everything goes into a
 * hidden temporary folder beside the destination, which is renamed into place
 * only when complete. A failure or Ctrl-C leaves the destination as it was.
 */

import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, stat, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UserError } from "../errors.js";
import { asOutput, isErrno, outputError } from "./atomic-file.js";
import { partialPath, removeStalePartials } from "./partial-files.js";
import { TOKENIZER_AND_GENERATION_FILES } from "../readers/side-files.js";

/**
 * Files of a Hugging Face model folder that a converted folder (MLX, ONNX) carries over as
 * they are: what tokenizer.save_pretrained writes plus generation_config.json
 * (mlx_lm/utils.py save; onnxruntime-genai's builder copies the same).
 */
const COPIED_FILES = TOKENIZER_AND_GENERATION_FILES;

/** Extensions copied whatever the file's name (tiktoken vocabularies, extra chat templates). */
const COPIED_EXTENSIONS = [".tiktoken", ".jinja"];

/** Every format's refusal of an earlier output, said the same way. */
export const EXISTING_OUTPUT = "the output already exists; choose another path, or replace it (--force; overwrite: true in the library)";

/** What sits at the destination now, for an MLX model folder. */
export function checkDestination(output: string, overwrite: boolean): void {
  if (!existsSync(output)) return;
  if (!statSync(output).isDirectory()) throw new UserError("the output must be a folder, and a file is in the way", { file: output });
  const entries = readdirSync(output);
  if (entries.length === 0) return;
  // Something that is not a model is never replaced, asked or not.
  if (!entries.includes("config.json")) {
    throw new UserError("the output folder is not empty and does not look like a model folder (no config.json); refusing to replace it", { file: output });
  }
  if (!overwrite) throw new UserError(EXISTING_OUTPUT, { file: output });
}

export class StagingFolder {
  private readonly removeOnExit = () => rmSync(this.path, { recursive: true, force: true });

  private constructor(
    readonly path: string,
    readonly destination: string,
  ) {}

  static async create(destination: string): Promise<StagingFolder> {
    const parent = dirname(destination);
    const path = partialPath(destination);
    removeStalePartials(destination);
    await mkdir(parent, { recursive: true }).catch((cause: NodeJS.ErrnoException) => {
      throw new UserError(`cannot create the output's parent folder (${cause.code ?? cause.message}); nothing was written`, { file: destination });
    });
    await rm(path, { recursive: true, force: true });
    await mkdir(path).catch((cause: NodeJS.ErrnoException) => {
      throw new UserError(`cannot write output (${cause.code ?? cause.message}); nothing was written`, { file: destination });
    });
    const folder = new StagingFolder(path, destination);
    process.once("exit", folder.removeOnExit);
    return folder;
  }

  file(name: string): string {
    return join(this.path, name);
  }

  async mkdir(name: string): Promise<void> {
    await mkdir(this.file(name), { recursive: true });
  }

  /**
   * Writes one file of the folder. The folder itself is renamed into place only when complete, so
   * the file needs no temporary of its own; a failed write is reported as the destination's.
   */
  async writeFile<T>(name: string, write: (handle: FileHandle) => Promise<T>): Promise<T> {
    const fail = (cause: unknown): never => {
      throw isErrno(cause) ? outputError(cause, this.destination) : cause;
    };
    const handle = await open(this.file(name), "w").catch(fail);
    try {
      const result = await write(asOutput(handle, this.destination));
      await handle.sync().catch(fail);
      return result;
    } finally {
      await handle.close().catch(() => {});
    }
  }

  async writeBytes(name: string, bytes: Uint8Array): Promise<void> {
    await this.writeFile(name, (handle) => handle.writeFile(bytes));
  }

  async writeText(name: string, text: string): Promise<void> {
    await this.writeFile(name, (handle) => handle.writeFile(text, "utf8"));
  }

  /** Copies the tokenizer files and generation config of `source` that exist; returns their names. */
  async copyModelFiles(source: string): Promise<string[]> {
    const names = (await readdir(source)).filter(
      (name) => (COPIED_FILES as readonly string[]).includes(name) || COPIED_EXTENSIONS.some((extension) => name.endsWith(extension)),
    );
    const copied: string[] = [];
    for (const name of names.sort()) {
      if (!(await stat(join(source, name))).isFile()) continue;
      const bytes = await readFile(join(source, name));
      await this.writeFile(name, (handle) => handle.writeFile(bytes));
      copied.push(name);
    }
    return copied;
  }

  /**
   * Moves the finished folder into place, replacing what `checkDestination` (the format's
   * destination policy, checked again now) allows to replace.
   */
  async commit(checkDestination: (destination: string) => void): Promise<void> {
    checkDestination(this.destination);
    let old: string | undefined;
    if (existsSync(this.destination)) {
      old = join(dirname(this.destination), `.${basename(this.destination)}.${process.pid}.old`);
      await rm(old, { recursive: true, force: true });
      await rename(this.destination, old);
    }
    try {
      await rename(this.path, this.destination);
    } catch (cause) {
      if (old) await rename(old, this.destination).catch(() => {});
      throw new UserError(`cannot move the finished model into place (${(cause as NodeJS.ErrnoException).code ?? String(cause)}); nothing was written`, {
        file: this.destination,
      });
    }
    process.off("exit", this.removeOnExit);
    if (old) await rm(old, { recursive: true, force: true });
  }

  async discard(): Promise<void> {
    process.off("exit", this.removeOnExit);
    await rm(this.path, { recursive: true, force: true });
  }
}
