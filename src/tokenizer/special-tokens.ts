// Special token ids, add-BOS/EOS flags, chat template and normalizer flags, decided the way
// llama.cpp's gguf.SpecialVocab does: tokenizer.json's post-processor first, then
// tokenizer_config.json, then config.json's *_token_id for whatever is still unset.

import { UserError } from "../errors.js";
import { isObject, type JsonComponent, type JsonObject, type ModelFiles } from "./model-files.js";
import type { AddedSpecialRole, ChatTemplate, NamedChatTemplate, SpecialTokenRole } from "./vocabulary.js";

/** "cls" has no GGUF key, but tokenizer configs use it where llama.cpp wants bos. */
type ConfigRole = SpecialTokenRole | "cls";

const CONFIG_ROLES: readonly ConfigRole[] = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
const ADDABLE_ROLES: ReadonlySet<string> = new Set<AddedSpecialRole>(["bos", "eos", "sep"]);

interface SpecialTokenSettings {
  readonly specialTokenIds: Partial<Record<SpecialTokenRole, number>>;
  readonly addSpecialTokens: Partial<Record<AddedSpecialRole, boolean>>;
  readonly chatTemplate?: ChatTemplate;
  readonly normalizer: { lowercase?: boolean; stripAccents?: boolean };
  readonly warnings: string[];
}

/**
 * `tokens` resolves token names that tokenizer.json's added tokens do not list (for example a
 * tokenizer.model-only folder); `vocabLimit` drops ids the GGUF vocabulary will not have.
 */
export function readSpecialTokenSettings(files: ModelFiles, tokens: readonly string[], vocabLimit: number | undefined): SpecialTokenSettings {
  const state = new SpecialTokenState(files, tokens, vocabLimit);
  const tokenizerJson = files.tokenizerJson?.value;
  if (tokenizerJson?.post_processor) state.readPostProcessor(tokenizerJson.post_processor);
  const chatTemplate = state.readTokenizerConfig();
  state.readModelConfig();
  return {
    specialTokenIds: state.ids,
    addSpecialTokens: state.add,
    ...(chatTemplate === undefined ? {} : { chatTemplate }),
    normalizer: normalizerFlags(tokenizerJson?.normalizer),
    warnings: state.warnings,
  };
}

class SpecialTokenState {
  readonly ids: Partial<Record<SpecialTokenRole, number>> = {};
  readonly add: Partial<Record<AddedSpecialRole, boolean>> = {};
  readonly warnings: string[] = [];
  /** eot/eom join when the post-processor's trailing token displaces the configured eos. */
  private readonly roles: ConfigRole[] = [...CONFIG_ROLES];
  /** Token names by role; the post-processor fills in names the config leaves out. */
  private readonly config: Record<string, unknown> | undefined;
  private readonly configFile: string;
  private tokenIds: Map<string, number> | undefined;

  constructor(
    private readonly files: ModelFiles,
    private readonly tokens: readonly string[],
    private readonly vocabLimit: number | undefined,
  ) {
    // special_tokens_map.json fills names tokenizer_config.json lacks, as transformers merges them.
    const merged = { ...files.specialTokensMap, ...files.tokenizerConfig };
    this.config = Object.keys(merged).length > 0 ? merged : undefined;
    this.configFile = files.tokenizerConfig ? "tokenizer_config.json" : "special_tokens_map.json";
  }

  private name(role: ConfigRole): string | undefined {
    return tokenName(this.config?.[`${role}_token`]);
  }

  private setName(role: ConfigRole, value: string | undefined): void {
    if (this.config) this.config[`${role}_token`] = value;
  }

  /** Which special tokens the tokenizer adds around a sequence, and under which roles. */
  readPostProcessor(postProcessor: JsonComponent): void {
    let bos = this.name("bos");
    let cls = this.name("cls");
    let eos = this.name("eos");
    let sep = this.name("sep");
    if (!bos && cls && this.config) this.setName("bos", (bos = cls));
    if (!eos && sep && this.config) this.setName("eos", (eos = sep));
    const processors = Array.isArray(postProcessor["processors"]) ? (postProcessor["processors"] as unknown[]) : [postProcessor];
    for (const processor of processors.filter(isObject)) {
      if (processor["type"] === "RobertaProcessing") {
        this.add.bos = this.add.eos = this.add.sep = true;
        if (!cls && this.config) this.setName("cls", (cls = firstString(processor["cls"]) ?? bos));
        if (!sep && this.config) this.setName("sep", (sep = firstString(processor["sep"]) ?? eos));
      } else if (processor["type"] === "TemplateProcessing") {
        // Crude on purpose, like llama.cpp's: only simple [bos] A [eos] templates are understood.
        const single = arrayOf(processor["single"]);
        const pair = arrayOf(processor["pair"]);
        let first: string | undefined;
        let last: string | undefined;
        if (single.length > 1) {
          first = specialTokenId(single[0]);
          if (first) {
            if (!this.config) bos = first;
            else if (first !== bos && first !== cls) {
              if (!bos) this.setName("bos", (bos = first));
              if (!cls) this.setName("cls", (cls = first));
            }
            this.add.bos = first === bos || first === cls;
            if (!this.add.bos) this.warnings.push(`tokenizer.json: unknown leading special token ${JSON.stringify(first)} in the post-processor template`);
          }
          last = specialTokenId(single[single.length - 1]);
          if (last) {
            if (!this.config) eos = last;
            else if (last !== eos) {
              // The template's trailing token is the real end of sequence; keep the configured one as end of turn.
              const spare = (["eot", "eom"] as const).find((role) => !this.roles.includes(role));
              if (spare) {
                this.roles.push(spare);
                this.setName(spare, eos);
              } else this.warnings.push(`tokenizer.json: eos ${JSON.stringify(eos)} replaced by ${JSON.stringify(last)} with no eot/eom role left for it`);
              this.setName("eos", (eos = last));
            }
            this.add.eos = last === eos;
          }
        }
        this.readPairTemplate(pair, first, last, sep, eos);
      }
    }
  }

  /** A [sep] or [eos] between the two sequences of a pair means llama.cpp should add sep. */
  private readPairTemplate(pair: readonly unknown[], first: string | undefined, last: string | undefined, sep: string | undefined, eos: string | undefined): void {
    if (pair.length === 0) return;
    const start = first && specialTokenId(pair[0]) === first ? 1 : 0;
    const stop = last && specialTokenId(pair[pair.length - 1]) === last ? pair.length - 1 : pair.length;
    const body = pair.slice(start, stop);
    if (body.length === 0 || sequenceId(body[0]) !== "A" || sequenceId(body[body.length - 1]) !== "B") return;
    const middle = body.slice(1, -1);
    if (middle.length === 0) return;
    let addSep = false;
    const entry = specialTokenId(middle[0]);
    if (entry && (entry === sep || entry === eos) && !last) addSep = true;
    if (middle.length === 2) {
      const second = specialTokenId(middle[1]);
      if (second && (second === sep || second === eos)) addSep = true;
    }
    this.add.sep = addSep;
    if (addSep && !sep && this.config) this.setName("sep", eos);
  }

  /** Returns the chat template; sets add_* flags and ids named in tokenizer_config.json. */
  readTokenizerConfig(): ChatTemplate | undefined {
    if (!this.config) return undefined;
    const chatTemplate = this.chatTemplate();
    for (const role of this.roles) {
      const addEntry = this.config[`add_${role}_token`];
      if (typeof addEntry === "boolean" && ADDABLE_ROLES.has(role)) this.add[role as AddedSpecialRole] = addEntry;
      const name = this.name(role);
      if (name !== undefined) this.set(role, this.idOf(name), this.configFile);
    }
    return chatTemplate;
  }

  /** config.json's <role>_token_id (or text_config's, for multimodal models) for roles still unset. */
  readModelConfig(): void {
    const config = this.files.config;
    if (!config) return;
    const textConfig = isObject(config["text_config"]) ? config["text_config"] : undefined;
    for (const role of this.roles) {
      const key = `${role}_token_id`;
      this.set(role, config[key] ?? textConfig?.[key], "config.json");
    }
  }

  private chatTemplate(): ChatTemplate | undefined {
    const { chatTemplateJinja, additionalChatTemplates, chatTemplateJson } = this.files;
    let fallback: unknown;
    if (chatTemplateJinja !== undefined) {
      fallback = additionalChatTemplates.length > 0 ? [{ name: "default", template: chatTemplateJinja }, ...additionalChatTemplates] : chatTemplateJinja;
    } else fallback = chatTemplateJson?.["chat_template"];
    const value = this.config && "chat_template" in this.config ? this.config["chat_template"] : fallback;
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.filter(isObject).flatMap(namedTemplate);
    this.warnings.push(`${this.configFile}: chat_template is neither a string nor a list; ignored`);
    return undefined;
  }

  /** Like llama.cpp, tokenizer.json's added tokens first; then the vocabulary itself. */
  private idOf(name: string): number | undefined {
    const added = this.files.tokenizerJson?.value.added_tokens?.find((token) => token.content === name);
    if (added) return added.id;
    if (!this.tokenIds) {
      this.tokenIds = new Map();
      this.tokens.forEach((token, id) => {
        if (!this.tokenIds!.has(token)) this.tokenIds!.set(token, id);
      });
    }
    return this.tokenIds.get(name);
  }

  /** The first source to name a role wins. */
  private set(role: ConfigRole, id: unknown, file: string): void {
    if (typeof id !== "number" || !Number.isInteger(id)) return;
    if (id < 0) throw new UserError(`invalid ${role} token id ${id}`, { file: `${this.files.directory}/${file}` });
    if (this.vocabLimit !== undefined && id >= this.vocabLimit) {
      this.warnings.push(`${file}: ${role} token id ${id} is outside the ${this.vocabLimit}-token vocabulary; not written`);
      return;
    }
    if (role !== "cls") this.ids[role] ??= id;
  }
}

function namedTemplate(entry: Readonly<Record<string, unknown>>): NamedChatTemplate[] {
  const template = entry["template"];
  const name = entry["name"];
  return typeof template === "string" ? [{ name: typeof name === "string" ? name : "", template }] : [];
}

/** tokenizer_config.json names a token as a string or as an AddedToken object. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (isObject(value) && typeof value["content"] === "string") return value["content"];
  return undefined;
}

function specialTokenId(piece: unknown): string | undefined {
  const special = isObject(piece) ? piece["SpecialToken"] : undefined;
  return isObject(special) && typeof special["id"] === "string" && special["id"] !== "" ? special["id"] : undefined;
}

function sequenceId(piece: unknown): string | undefined {
  const sequence = isObject(piece) ? piece["Sequence"] : undefined;
  return isObject(sequence) && typeof sequence["id"] === "string" ? sequence["id"] : undefined;
}

function firstString(value: unknown): string | undefined {
  return Array.isArray(value) && typeof value[0] === "string" ? value[0] : undefined;
}

function arrayOf(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Lowercase / StripAccents normalizers map to llama.cpp's normalizer flags. */
function normalizerFlags(normalizer: JsonComponent | null | undefined): { lowercase?: boolean; stripAccents?: boolean } {
  const flags: { lowercase?: boolean; stripAccents?: boolean } = {};
  const visit = (node: JsonObject): void => {
    switch (node["type"]) {
      case "Lowercase":
        flags.lowercase = true;
        break;
      case "StripAccents":
        flags.stripAccents = true;
        break;
      case "BertNormalizer":
        if (typeof node["lowercase"] === "boolean") flags.lowercase = node["lowercase"];
        if (typeof node["strip_accents"] === "boolean") flags.stripAccents = node["strip_accents"];
        break;
      case "Sequence":
        arrayOf(node["normalizers"]).filter(isObject).forEach(visit);
        break;
    }
  };
  if (normalizer) visit(normalizer);
  return flags;
}
