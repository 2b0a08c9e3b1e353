#!/usr/bin/env bash
# Builds the Rust kernels in kernels/ into wasm/edgequant_kernels.wasm, reproducibly:
# fixed flags, no registry, paths remapped, one codegen unit, LTO, panic=abort, stripped.
# Same toolchain + same sources => same bytes.
#
#   scripts/build-wasm.sh           build and install wasm/edgequant_kernels.wasm
#   scripts/build-wasm.sh --check   build into a temporary directory and fail if the bytes
#                                   differ from the committed wasm/edgequant_kernels.wasm
#
# Toolchain: Debian's rustc 1.63 / cargo 1.65 (/usr/bin) with the wasm32-unknown-unknown std
# (apt: rustc cargo libstd-rust-dev-wasm32 lld). Override with RUSTC=... CARGO=...; a different
# compiler version may produce different (equally correct) bytes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
crate="$root/kernels"
out="$root/wasm/edgequant_kernels.wasm"
mode="${1:-build}"

export RUSTC="${RUSTC:-/usr/bin/rustc}"
cargo="${CARGO:-/usr/bin/cargo}"
cargo_home="${CARGO_HOME:-$HOME/.cargo}"

if [[ "$mode" == "--check" ]]; then
  target_dir="$(mktemp -d)"
  trap 'rm -rf "$target_dir"' EXIT
else
  target_dir="$crate/target"
fi

# Everything that can leak into the artefact is pinned here rather than in the environment.
unset RUSTC_WRAPPER CARGO_BUILD_RUSTFLAGS CARGO_ENCODED_RUSTFLAGS
export CARGO_TARGET_DIR="$target_dir"
export CARGO_INCREMENTAL=0
export SOURCE_DATE_EPOCH=0
export RUSTFLAGS="-C target-feature=+simd128 -C link-arg=-zstack-size=262144 -C debuginfo=0 --remap-path-prefix=$crate=/edgequant/kernels --remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$target_dir=/edgequant/target"

"$RUSTC" --version >&2
"$cargo" build --quiet --release --locked --offline --target wasm32-unknown-unknown --manifest-path "$crate/Cargo.toml"
built="$target_dir/wasm32-unknown-unknown/release/edgequant_kernels.wasm"

if [[ "$mode" == "--check" ]]; then
  if cmp -s "$built" "$out"; then
    echo "wasm/edgequant_kernels.wasm is up to date ($(sha256sum "$out" | cut -d' ' -f1))"
  else
    echo "wasm/edgequant_kernels.wasm differs from a fresh build of kernels/:" >&2
    sha256sum "$built" "$out" >&2
    exit 1
  fi
else
  mkdir -p "$(dirname "$out")"
  cp "$built" "$out"
  sha256sum "$out"
fi
