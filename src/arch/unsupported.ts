import table from "./llama-cpp-converters.json" with { type: "json" };

/** HF class -> GGUF architectures along llama.cpp's converter class ancestry (its own first). */
const LLAMA_CPP_CONVERTERS: Readonly<Record<string, readonly string[]>> = table.converters;

/** What is supported, in the shape the refusal names it. */
export interface SupportedFamily {
  readonly gguf: string;
  readonly hfArchitectures: readonly string[];
}

/**
 * Why `name` does not convert, and where llama.cpp's converter knows the class, what it makes
 * of it and the nearest family we do convert: the first architecture along its converter's
 * ancestry that we support (llama.cpp builds SmolLM3's converter on Llama's, say). That family
 * is a hint of how close the model is, not a promise that it converts as that family.
 */
export function unsupportedArchitectureMessage(name: string, supported: readonly SupportedFamily[]): string {
  const list = supported.flatMap((family) => family.hfArchitectures).join(", ");
  const base = `architecture ${name} is not supported; supported: ${list}`;
  const chain = Object.hasOwn(LLAMA_CPP_CONVERTERS, name) ? LLAMA_CPP_CONVERTERS[name]! : undefined;
  if (!chain) return base;
  const nearest = chain.map((gguf) => supported.find((family) => family.gguf === gguf)).find((family) => family !== undefined);
  const made = `llama.cpp's converter makes it '${chain[0]}'`;
  if (!nearest) return `${base}; ${made}, which edgequant does not convert yet`;
  const relation = nearest.gguf === chain[0] ? "the same GGUF architecture as" : `built on its '${nearest.gguf}' converter; the nearest supported family is`;
  return `${base}; ${made}, ${relation} ${nearest.gguf} (${nearest.hfArchitectures.join(", ")})`;
}
