#!/usr/bin/env bash
# Fuzzes demix's readers of untrusted files for a bounded time, one cargo-fuzz target after
# the other (fuzz/fuzz_targets/):
#
#   decode_stft     any bytes → audio::decode → STFT of every channel
#   templates_load  any bytes → Templates::load (.npz) and formats::npy::read_npy
#   report_load     any bytes → batch::Report::load, and a loaded report written back and
#                   loaded again
#   midi_read       any bytes → formats::midi::read_midi, and the notes written back
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   # SECONDS per target, default 300; default: all
#   scripts/fuzz.sh 600 decode_stft         # what `scripts/fuzz.sh 600` did before there
#                                           # were several targets
#
# Needs a nightly toolchain (cargo-fuzz builds with sanitizers); installs cargo-fuzz if it is
# missing. Each corpus grows in fuzz/corpus/TARGET and starts from real files: the shipped
# samples, tests/data, and tests/data/fuzz/TARGET (seeds, and the inputs of past findings,
# which `cargo test --release` replays on stable Rust: tests/it/fuzz_regressions.rs). Crashes
# land in fuzz/artifacts/TARGET/; every target runs its time, and the script then exits
# non-zero naming those that found one. Reproduce one with
#   cargo +nightly fuzz run -O TARGET fuzz/artifacts/TARGET/<file>
# and once fixed, copy it to tests/data/fuzz/TARGET/ as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
all=(decode_stft templates_load report_load midi_read)
seconds="${1:-300}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=("${all[@]}"); fi
for target in "${targets[@]}"; do
    if [ ! -f "fuzz/fuzz_targets/$target.rs" ]; then
        echo "fuzz.sh: no target '$target' (targets: ${all[*]})" >&2
        exit 2
    fi
done

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain (rustup toolchain install nightly); the stable" >&2
    echo "counterparts are: cargo test --release --test it hostile fuzz_regressions" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi
# The fuzz workspace's lock file is not committed; starting it from demix's own means the
# dependencies fuzzed (zip, midly, serde_json, symphonia) are the versions demix ships with.
if [ ! -f fuzz/Cargo.lock ]; then
    cp Cargo.lock fuzz/Cargo.lock
fi

# Seeds the corpus of one target, without overwriting what it has grown.
seed() {
    local target="$1" corpus="fuzz/corpus/$1"
    mkdir -p "$corpus"
    if [ -d "tests/data/fuzz/$target" ]; then
        cp -n "tests/data/fuzz/$target"/* "$corpus"/ 2>/dev/null || true
    fi
    case "$target" in
    decode_stft)
        # A byte for the extension hint (0 wav, 1 flac), then a real file.
        for f in samples/*.flac; do
            local out="$corpus/seed-$(basename "$f")"
            [ -e "$out" ] || { printf '\001'; head -c 65536 "$f"; } >"$out"
        done
        # A WAV header with no data.
        [ -e "$corpus/seed-empty.wav" ] ||
            printf '\000RIFF\044\000\000\000WAVEfmt \020\000\000\000\001\000\001\000\100\037\000\000\200\076\000\000\002\000\020\000data\000\000\000\000' \
                >"$corpus/seed-empty.wav"
        ;;
    templates_load)
        # The shipped templates (110 KB each), and .npy files for read_npy.
        cp -n samples/*.npz "$corpus"/
        cp -n tests/data/sklearn_mu/cost_*.npy "$corpus"/
        ;;
    esac
}

# -O: optimised, without debug assertions, as the release binary runs. FUZZ_CHECKS=1 turns
# on debug assertions and overflow checks too: stricter, but then symphonia 0.6.1's known
# overflow in its WAV fmt parser (tests/it/hostile.rs, regression_wav_channel_count_...) is
# found again within minutes by decode_stft.
mode=(-O)
if [ "${FUZZ_CHECKS:-0}" = 1 ]; then mode=(-a); fi
failed=()
for target in "${targets[@]}"; do
    seed "$target"
    case "$target" in
    decode_stft | templates_load) max_len=262144 ;;
    *) max_len=65536 ;;
    esac
    echo "fuzz.sh: $target for $seconds s" >&2
    if ! cargo +nightly fuzz run "${mode[@]}" "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=512 \
        -max_len="$max_len" -timeout=20 -print_final_stats=1; then
        failed+=("$target")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: found something in: ${failed[*]} (see fuzz/artifacts/)" >&2
    exit 1
fi
