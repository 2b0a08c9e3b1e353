// Reader for llama.cpp's tokenizer test vectors (models/ggml-vocab-*.gguf.inp / .out), parsed the
// way tests/test-tokenizer-0.cpp reads them.
//
//   .inp: test strings separated by "\n__ggml_vocab_test__\n" (the file ends with one).
//   .out: one line per test string, space-separated token ids (empty line = no tokens).
// The ids were produced with add_special = false, parse_special = false.

import { readFileSync } from "node:fs";

export interface TokenizerCase {
  text: string;
  expected: number[];
}

const SEPARATOR = "\n__ggml_vocab_test__\n";

export function readTokenizerCases(vocabGgufPath: string): TokenizerCase[] {
  const raw = readFileSync(`${vocabGgufPath}.inp`, "utf8");
  const inputs: string[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const next = raw.indexOf(SEPARATOR, pos);
    if (next === -1) {
      inputs.push(raw.slice(pos));
      break;
    }
    inputs.push(raw.slice(pos, next));
    pos = next + SEPARATOR.length;
  }
  const outText = readFileSync(`${vocabGgufPath}.out`, "utf8");
  const lines = outText.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop(); // getline() yields no line after the final "\n"
  if (lines.length !== inputs.length) {
    throw new Error(`${vocabGgufPath}: ${inputs.length} inputs but ${lines.length} output lines`);
  }
  return inputs.map((text, i) => {
    const line = lines[i]!.trim();
    return { text, expected: line === "" ? [] : line.split(" ").map((s) => Number.parseInt(s, 10)) };
  });
}
