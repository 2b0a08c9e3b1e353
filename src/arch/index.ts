import { UserError } from "../errors.js";
import type { HfConfig } from "./config.js";
import { bitnet } from "./bitnet.js";
import { llama } from "./llama.js";
import { minicpm } from "./minicpm.js";
import { qwen2 } from "./qwen2.js";
import { qwen3 } from "./qwen3.js";
import type { Architecture } from "./types.js";

export const ARCHITECTURES: readonly Architecture[] = [llama, qwen2, qwen3, bitnet, minicpm];

export function supportedHfArchitectures(): string[] {
  return ARCHITECTURES.flatMap((arch) => arch.hfArchitectures);
}

/** Picks the architecture from config.json's `architectures` list. */
export function resolveArchitecture(config: HfConfig, configFile: string): Architecture {
  const declared = config["architectures"];
  if (!Array.isArray(declared) || typeof declared[0] !== "string") {
    throw new UserError(`no 'architectures' list; supported architectures: ${supportedHfArchitectures().join(", ")}`, { file: configFile });
  }
  const name = declared[0];
  const found = ARCHITECTURES.find((arch) => arch.hfArchitectures.includes(name));
  if (!found) {
    throw new UserError(`unsupported architecture '${name}'; supported architectures: ${supportedHfArchitectures().join(", ")}`, { file: configFile });
  }
  return found;
}

/** The architecture a GGUF names in general.architecture. */
export function architectureByGgufName(name: string, file: string): Architecture {
  const found = ARCHITECTURES.find((arch) => arch.gguf === name);
  if (!found) throw new UserError(`unsupported architecture '${name}'; supported: ${ARCHITECTURES.map((a) => a.gguf).join(", ")}`, { file });
  return found;
}
