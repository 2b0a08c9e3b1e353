// The pre-tokenizer tables in src/tokenizer/*.json are facts about llama.cpp. This test
// re-extracts them from the llama.cpp source bundled with node-llama-cpp and fails if they drift.
// Regenerate after a node-llama-cpp upgrade with:
//   EDGEQUANT_UPDATE_TOKENIZER_TABLES=1 npx vitest run test/tokenizer-tables.test.ts

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import knownHashes from "../src/tokenizer/known-pre-hashes.json" with { type: "json" };
import preTokenizers from "../src/tokenizer/llama-pre-tokenizers.json" with { type: "json" };
import { llamaSourceCommit, llamaSourceFile } from "./support/llama-source.js";

const TABLES = join(import.meta.dirname, "..", "src", "tokenizer");

function llamaCppSource() {
  const info = JSON.parse(readFileSync(join(import.meta.dirname, "..", "node_modules", "node-llama-cpp", "llama", "llama.cpp.info.json"), "utf8")) as { tag: string; llamaCppGithubRepo: string };
  return { repository: info.llamaCppGithubRepo, tag: info.tag, bundleCommit: llamaSourceCommit(), via: "node-llama-cpp llama/gitRelease.bundle" };
}

function between(text: string, start: string, end: string): string {
  const from = text.indexOf(start);
  const to = text.indexOf(end, from);
  if (from < 0 || to < 0) throw new Error(`markers ${JSON.stringify(start)} .. ${JSON.stringify(end)} not found`);
  return text.slice(from + start.length, to);
}

/** Python string-literal body -> string (the escapes conversion/base.py uses). */
function unescapePython(body: string): string {
  return body.replace(/\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|.)/g, (_, e: string) => {
    if (e.length > 1) return String.fromCodePoint(Number.parseInt(e.slice(1), 16));
    return ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[e] ?? e;
  });
}

/** C++ string-literal body -> string. */
function unescapeCpp(body: string): string {
  return body.replace(/\\(.)/g, (_, e: string) => ({ n: "\n", t: "\t", r: "\r" } as Record<string, string>)[e] ?? e);
}

/** Removes // and /* comments outside string literals, keeping line structure. */
function stripCppComments(source: string): string {
  let out = "";
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '"') {
      const end = endOfCppString(source, i);
      out += source.slice(i, end + 1);
      i = end;
    } else if (source.startsWith("//", i)) {
      i = source.indexOf("\n", i) - 1;
    } else if (source.startsWith("/*", i)) {
      i = source.indexOf("*/", i) + 1;
    } else out += c;
  }
  return out;
}

function endOfCppString(source: string, open: number): number {
  for (let i = open + 1; i < source.length; i++) {
    if (source[i] === "\\") i++;
    else if (source[i] === '"') return i;
  }
  throw new Error("unterminated string literal");
}

/** The string literals of a `{ "a", "b", }` initializer starting at `open` (the brace). */
function stringList(source: string, open: number): string[] {
  const strings: string[] = [];
  for (let i = open + 1; source[i] !== "}"; i++) {
    if (source[i] === '"') {
      const end = endOfCppString(source, i);
      strings.push(unescapeCpp(source.slice(i + 1, end)));
      i = end;
    }
  }
  return strings;
}

function extractKnownHashes() {
  const converter = llamaSourceFile("conversion/base.py").toString("utf8");
  const body = between(converter, "# Marker: Start get_vocab_base_pre", "# Marker: End get_vocab_base_pre");
  const checkText = /chktxt = '((?:[^'\\]|\\.)*)'/.exec(body)?.[1];
  if (checkText === undefined) throw new Error("chktxt not found");
  const hashes: Record<string, { pre: string; ref: string }> = {};
  const entries = [...body.matchAll(/if chkhsh == "([0-9a-f]{64})":\s*# ref: (\S+)\s*res = "([^"]+)"/g)];
  if (entries.length !== body.split("if chkhsh ==").length - 1) throw new Error("a hash entry has an unexpected shape");
  // The converter tests every hash with a plain `if`, so for a repeated hash the last one wins.
  for (const [, hash, ref, pre] of entries) hashes[hash!] = { pre: pre!, ref: ref! };
  return {
    description: "tokenizer.ggml.pre by sha256 of str(tokenizer.encode(checkText)), from llama.cpp's get_vocab_base_pre()",
    source: { ...llamaCppSource(), file: "conversion/base.py" },
    checkText: unescapePython(checkText),
    hashes,
  };
}

function extractPreTokenizers() {
  const vocab = stripCppComments(llamaSourceFile("src/llama-vocab.cpp").toString("utf8"));

  // llm_tokenizer_bpe's constructor: case labels, then the regex list they share.
  const constructor = between(vocab, "struct llm_tokenizer_bpe : llm_tokenizer {", "std::vector<std::string> regex_exprs;");
  const regexes: Record<string, string[]> = {};
  let pending: string[] = [];
  for (const match of constructor.matchAll(/case LLAMA_VOCAB_PRE_TYPE_(\w+):|default:|regex_exprs = \{|break;/g)) {
    if (match[1]) pending.push(match[1]);
    else if (match[0] === "default:") pending.push("DEFAULT");
    else if (match[0] === "break;") pending = [];
    else for (const type of pending) regexes[type] = stringList(constructor, match.index + match[0].length - 1);
  }

  // llama_vocab::load: the `tokenizer_pre == "name"` chain and the flags each branch sets.
  const chain = between(vocab, "if (tokenizer_pre.empty()) {", 'throw std::runtime_error(format("unknown pre-tokenizer type');
  const names = chain
    .split("} else if (")
    .slice(1)
    .map((branch) => {
      const type = /pre_type = LLAMA_VOCAB_PRE_TYPE_(\w+);/.exec(branch)?.[1];
      if (!type || !(type in regexes)) throw new Error(`no regexes for branch ${branch}`);
      const flags = Object.fromEntries([...branch.matchAll(/^\s*(\w+) = (true|false);/gm)].map(([, flag, value]) => [flag!, value === "true"]));
      return { names: [...branch.matchAll(/tokenizer_pre == "([^"]+)"/g)].map((m) => m[1]!), type, flags };
    });
  return {
    description: "llama.cpp's BPE pre-tokenizers: split regexes per LLAMA_VOCAB_PRE_TYPE_*, and the tokenizer.ggml.pre names mapped to each with the flags (overriding BPE defaults, e.g. ignore_merges=false) they set",
    source: { ...llamaCppSource(), file: "src/llama-vocab.cpp" },
    regexes,
    names,
  };
}

describe("the pre-tokenizer tables are llama.cpp's, as bundled with node-llama-cpp", () => {
  const update = process.env["EDGEQUANT_UPDATE_TOKENIZER_TABLES"] === "1";
  const check = (file: string, actual: unknown, expected: unknown) => {
    if (update) writeFileSync(join(TABLES, file), JSON.stringify(expected, null, 2) + "\n");
    else expect(actual, `${file} is stale: regenerate it (see the top of this test)`).toEqual(expected);
  };

  it("known-pre-hashes.json holds every hash the converter knows, and its check text", () => {
    const expected = extractKnownHashes();
    expect(Object.keys(expected.hashes).length).toBeGreaterThan(90);
    expect(expected.hashes["0ef9807a4087ebef797fc749390439009c3b9eda9ad1a097abbe738f486c01e5"]?.pre).toBe("llama-bpe");
    check("known-pre-hashes.json", knownHashes, expected);
  });

  it("llama-pre-tokenizers.json holds every pre name llama.cpp accepts, with its regexes", () => {
    const expected = extractPreTokenizers();
    const llama3 = expected.names.find((entry) => entry.names.includes("llama-bpe"));
    expect(llama3).toMatchObject({ type: "LLAMA3", flags: { ignore_merges: true } });
    expect(expected.regexes["LLAMA3"]?.[0]).toContain("'[sS]|'[tT]");
    // Every name the hash table can produce must be one llama.cpp accepts.
    const accepted = new Set(expected.names.flatMap((entry) => entry.names));
    const unknown = Object.values(extractKnownHashes().hashes).filter(({ pre }) => !accepted.has(pre));
    expect(unknown.map(({ pre }) => pre).sort()).toEqual(KNOWN_NON_BPE_PRE_NAMES);
    check("llama-pre-tokenizers.json", preTokenizers, expected);
  });
});

/**
 * Hash-table names that are not BPE pre-tokenizers: llama.cpp's converter detects them by hash,
 * but both are BERT embedding models: WordPiece vocabularies, whose loader ignores tokenizer.ggml.pre.
 */
const KNOWN_NON_BPE_PRE_NAMES = ["bert-bge-large", "jina-v2-en"];
