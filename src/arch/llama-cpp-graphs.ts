import type { LlamaCppGraphTraits } from "./types.js";

/**
 * llama.cpp's graph traits for architectures edgequant does not convert but whose GGUFs (made
 * by other tools) `fit` reads. Sliding-window patterns are what llama.cpp applies when the GGUF
 * has no explicit `attention.sliding_window_pattern` (src/models/<arch>.cpp load_arch_hparams
 * -> load_swa_pattern). Converted architectures declare their own traits in their file.
 */
export const FOREIGN_GRAPH_TRAITS: Readonly<Record<string, LlamaCppGraphTraits>> = {
  gemma: { embeddingScale: true },
  gemma2: { swaPeriod: 2, defaultWindow: 4096, embeddingScale: true, attnSoftcapKey: "attn_logit_softcapping" },
  gemma3n: { embeddingScale: true },
  "gemma-embedding": { embeddingScale: true },
  cohere2: { swaPeriod: 4 },
  "gpt-oss": { swaPeriod: 2 },
  exaone4: { swaPeriod: 4, defaultWindow: 4096 },
  olmo2: { swaPeriod: 4 },
  granitemoe: { embeddingScale: true, residualScale: true, logitScale: true },
};
