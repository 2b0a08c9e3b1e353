/**
 * The non-weight files of a Hugging Face model folder that edgequant reads or carries
 * into its outputs: what tokenizer.save_pretrained writes, plus generation_config.json.
 * One table, so the Hub download, the ONNX folder and the MLX folder agree.
 */
export const TOKENIZER_AND_GENERATION_FILES = [
  "tokenizer.json",
  "tokenizer.model",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "vocab.txt",
  "tiktoken.model",
  "chat_template.jinja",
  "chat_template.json",
  "generation_config.json",
] as const;
