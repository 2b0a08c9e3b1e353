// Which GGUF architecture llama.cpp's converter (conversion/*.py in the bundled source) makes of
// each Hugging Face text-model class, and the architectures of the converter classes it is built
// on. Read from the Python source, independently of src/, for the recorded table in
// src/arch/llama-cpp-converters.json (refresh: EDGEQUANT_UPDATE_LLAMA_CPP_CONVERTERS=1).

import { llamaSourceFile, llamaSourceListing } from "./llama-source.js";

interface ConverterClass {
  readonly parents: readonly string[];
  readonly modelArch: string | undefined;
  readonly registers: readonly string[];
}

function conversionModules(): string[] {
  const init = llamaSourceFile("conversion/__init__.py").toString("utf8");
  const textMap = /^TEXT_MODEL_MAP[^{]*\{([\s\S]*?)^\}/m.exec(init)?.[1];
  if (!textMap) throw new Error("llama.cpp's conversion/__init__.py has no TEXT_MODEL_MAP");
  return [...new Set([...textMap.matchAll(/"[^"]+":\s*"([^"]+)"/g)].map((m) => m[1]!))];
}

/** The HF class -> module entries of TEXT_MODEL_MAP: the classes the converter treats as text models. */
function textModelClasses(): string[] {
  const init = llamaSourceFile("conversion/__init__.py").toString("utf8");
  const textMap = /^TEXT_MODEL_MAP[^{]*\{([\s\S]*?)^\}/m.exec(init)![1]!;
  return [...textMap.matchAll(/"([^"]+)":\s*"[^"]+"/g)].map((m) => m[1]!);
}

/** Every class of a conversion module with its decorators' registered names and its model_arch. */
function parseModule(source: string, into: Map<string, ConverterClass>): void {
  const lines = source.split("\n");
  let pending: string[] = [];
  let decorator = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (decorator || line.startsWith("@ModelBase.register(")) {
      decorator += line;
      if (decorator.split("(").length === decorator.split(")").length) {
        pending.push(...[...decorator.matchAll(/"([^"]+)"/g)].map((m) => m[1]!));
        decorator = "";
      }
      continue;
    }
    const header = /^class (\w+)\(([^)]*)\):/.exec(line);
    if (!header) continue;
    let modelArch: string | undefined;
    for (let j = i + 1; j < lines.length && !/^\S/.test(lines[j]!); j++) {
      const arch = /^ {4}model_arch = gguf\.MODEL_ARCH\.(\w+)/.exec(lines[j]!);
      if (arch) {
        modelArch = arch[1];
        break;
      }
    }
    const parents = header[2]!.split(",").map((p) => p.trim()).filter(Boolean);
    into.set(header[1]!, { parents, modelArch, registers: pending });
    pending = [];
  }
}

function modelArchNames(): Map<string, string> {
  const constants = llamaSourceFile("gguf-py/gguf/constants.py").toString("utf8");
  const body = /^MODEL_ARCH_NAMES[^{]*\{([\s\S]*?)^\}/m.exec(constants)?.[1];
  if (!body) throw new Error("gguf-py constants.py has no MODEL_ARCH_NAMES");
  return new Map([...body.matchAll(/MODEL_ARCH\.(\w+):\s*"([^"]+)"/g)].map((m) => [m[1]!, m[2]!]));
}

/**
 * HF class -> the GGUF architecture names along its converter class's ancestry, its own first
 * (e.g. SmolLM3ForCausalLM -> ["smollm3", "llama"]). Classes whose architecture is set only at run
 * time (no class attribute anywhere up the chain) are left out.
 */
export function llamaCppConverterTable(): Record<string, string[]> {
  const classes = new Map<string, ConverterClass>();
  const modules = new Set(conversionModules());
  for (const path of llamaSourceListing("conversion/").filter((p) => p.endsWith(".py"))) {
    if (modules.has(path.slice("conversion/".length, -3)) || path.endsWith("base.py")) parseModule(llamaSourceFile(path).toString("utf8"), classes);
  }
  const names = modelArchNames();
  const chain = (name: string, seen: Set<string>): string[] => {
    const cls = classes.get(name);
    if (!cls || seen.has(name)) return [];
    seen.add(name);
    const own = cls.modelArch ? names.get(cls.modelArch) : undefined;
    return [...(own ? [own] : []), ...cls.parents.flatMap((parent) => chain(parent, seen))];
  };
  const table: Record<string, string[]> = {};
  const wanted = new Set(textModelClasses());
  for (const [name, cls] of classes) {
    for (const hf of cls.registers) {
      if (!wanted.has(hf)) continue;
      const archs = [...new Set(chain(name, new Set()))];
      if (archs.length > 0) table[hf] = archs;
    }
  }
  return Object.fromEntries(Object.entries(table).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
