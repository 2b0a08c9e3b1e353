/**
 * Safetensors dtypes. Every dtype the format defines is recognised so that an
 * unsupported one is reported by name rather than as a parse error.
 */
export const SAFETENSORS_DTYPES = {
  F64: { bytes: 8, readable: false },
  F32: { bytes: 4, readable: true },
  F16: { bytes: 2, readable: true },
  BF16: { bytes: 2, readable: true },
  F8_E4M3: { bytes: 1, readable: false },
  F8_E5M2: { bytes: 1, readable: false },
  I64: { bytes: 8, readable: false },
  I32: { bytes: 4, readable: false },
  I16: { bytes: 2, readable: false },
  I8: { bytes: 1, readable: false },
  U64: { bytes: 8, readable: false },
  U32: { bytes: 4, readable: false },
  U16: { bytes: 2, readable: false },
  U8: { bytes: 1, readable: false },
  BOOL: { bytes: 1, readable: false },
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;
/** The float dtypes we convert from. */
export type FloatDtype = "F32" | "F16" | "BF16";

export function isSafetensorsDtype(name: string): name is SafetensorsDtype {
  return Object.hasOwn(SAFETENSORS_DTYPES, name);
}

export function isFloatDtype(dtype: SafetensorsDtype): dtype is FloatDtype {
  return dtype === "F32" || dtype === "F16" || dtype === "BF16";
}
