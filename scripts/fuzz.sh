#!/usr/bin/env bash
# Fuzzes decode → STFT (fuzz/fuzz_targets/decode_stft.rs) for a bounded time.
#
#   scripts/fuzz.sh [SECONDS]      # default 300
#
# Needs a nightly toolchain (cargo-fuzz builds with sanitizers); installs cargo-fuzz if it is
# missing. The corpus starts from the shipped samples and tests/data, and grows in
# fuzz/corpus/decode_stft; crashes land in fuzz/artifacts/decode_stft/, and the script exits
# non-zero if there is one. Reproduce one with
#   cargo +nightly fuzz run decode_stft fuzz/artifacts/decode_stft/<file>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); the stable" >&2
    echo "counterpart is: cargo test --release --test it hostile" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

corpus=fuzz/corpus/decode_stft
mkdir -p "$corpus"
# Seeds: a byte for the extension hint (0 wav, 1 flac), then a real file.
if [ -z "$(ls -A "$corpus")" ]; then
    for f in samples/*.flac; do
        { printf '\001'; head -c 65536 "$f"; } >"$corpus/seed-$(basename "$f")"
    done
    # A small WAV: the first 64 KiB of the sample's decode is not needed; any WAV header will do.
    printf '\000RIFF\044\000\000\000WAVEfmt \020\000\000\000\001\000\001\000\100\037\000\000\200\076\000\000\002\000\020\000data\000\000\000\000' \
        >"$corpus/seed-empty.wav"
fi

# -O: optimised, without debug assertions, as the release binary runs. FUZZ_CHECKS=1 turns
# on debug assertions and overflow checks too: stricter, but then symphonia 0.6.1's known
# overflow in its WAV fmt parser (tests/it/hostile.rs, regression_wav_channel_count_...) is
# found again within minutes.
mode=(-O)
if [ "${FUZZ_CHECKS:-0}" = 1 ]; then mode=(-a); fi
cargo +nightly fuzz run "${mode[@]}" decode_stft "$corpus" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 -max_len=262144 \
    -timeout=20
