import { UserError } from "../errors.js";
import { ConfigReader, type HfConfig } from "./config.js";
import { bitnet } from "./bitnet.js";
import { gemma3 } from "./gemma3.js";
import { granite } from "./granite.js";
import { withoutAttentionless } from "./decoder-metadata.js";
import { lfm2 } from "./lfm2.js";
import { FOREIGN_GRAPH_TRAITS } from "./llama-cpp-graphs.js";
import { llama } from "./llama.js";
import { minicpm } from "./minicpm.js";
import { phi3 } from "./phi3.js";
import { qwen2 } from "./qwen2.js";
import { qwen3 } from "./qwen3.js";
import { smollm3 } from "./smollm3.js";
import type { Architecture, LlamaCppGraphTraits, OutputFormat } from "./types.js";
import { unsupportedArchitectureMessage } from "./unsupported.js";

export const ARCHITECTURES: readonly Architecture[] = [llama, qwen2, qwen3, bitnet, minicpm, granite, smollm3, lfm2, phi3, gemma3];

export function supportedHfArchitectures(format?: OutputFormat): string[] {
  return ARCHITECTURES.filter((arch) => format === undefined || arch.formats.includes(format)).flatMap((arch) => arch.hfArchitectures);
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
    throw new UserError(unsupportedArchitectureMessage(name, ARCHITECTURES), { file: configFile });
  }
  return found;
}

/** Picks the architecture and refuses it, naming what is supported, when it does not convert to `format`. */
export function resolveArchitectureFor(format: OutputFormat, config: HfConfig, configFile: string): Architecture {
  const architecture = resolveArchitecture(config, configFile);
  if (!architecture.formats.includes(format)) {
    throw new UserError(
      `${format.toUpperCase()} output supports ${ARCHITECTURES.filter((a) => a.formats.includes(format)).map((a) => a.gguf).join(", ")} ` +
        `(${supportedHfArchitectures(format).join(", ")}); ` +
        `${architecture.hfArchitectures[0]} (${architecture.gguf}) converts to ${architecture.formats.join(", ")} only` +
        (architecture.unsupportedBecause?.[format] ? `: ${architecture.unsupportedBecause[format]}` : ""),
      { file: configFile },
    );
  }
  return architecture;
}

/** The architecture a GGUF names in general.architecture. */
export function architectureByGgufName(name: string, file: string): Architecture {
  const found = ARCHITECTURES.find((arch) => arch.gguf === name);
  if (!found) throw new UserError(`architecture '${name}' is not supported; supported: ${ARCHITECTURES.map((a) => a.gguf).join(", ")}`, { file });
  return found;
}

/** KV heads of each layer for a config.json: none in a hybrid architecture's blocks without attention. */
export function kvHeadsOfLayers(config: HfConfig, configFile: string, kvHeads: readonly number[]): number[] {
  const declared = config["architectures"];
  const architecture = Array.isArray(declared) ? ARCHITECTURES.find((arch) => arch.hfArchitectures.includes(String(declared[0]))) : undefined;
  return architecture ? withoutAttentionless(architecture, new ConfigReader(config, configFile, architecture.configDefaults), kvHeads) : [...kvHeads];
}

/** What fit's memory model needs to know of llama.cpp's graph for a GGUF's `general.architecture`. */
export function llamaCppGraphTraits(ggufArchitecture: string): LlamaCppGraphTraits {
  return ARCHITECTURES.find((arch) => arch.gguf === ggufArchitecture)?.llamaCppGraph ?? FOREIGN_GRAPH_TRAITS[ggufArchitecture] ?? {};
}
