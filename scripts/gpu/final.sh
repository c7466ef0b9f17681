#!/usr/bin/env bash
# One device call that checks and measures a tree on the GPU machine (docs/cuda.md): the whole
# suite with the gpu as default device (one vitest per file, 8 at a time), then bench/gpu.mjs
# (matmul, copies, the fused chain) with its same-call PyTorch ratios, then the training-step
# bench beside PyTorch and jax. Run after `bash scripts/gpu/pack.sh`, with carry [".carry"]:
#   bash .carry/on-device.sh bash scripts/gpu/final.sh
# Limits (seconds) for each part: SUITE_SECONDS (280), OPS_SECONDS (100), TRAIN_SECONDS (190),
# within a device call's 600 s. Measured 2026-12-02: the suite 239 s; bench/gpu.mjs about 60 s;
# bench/gpu_train.mjs more than 150 s (torch.compile and jax compile their steps first: it prints
# each row as it is measured, so a cut run still shows tessera's rows and the peers that finished).
set -u
cd "$(dirname "$0")/../.."
out=${OUT:-/tmp/tessera-final}
mkdir -p "$out"
start=$(date +%s)
OUT="$out/suite" SUITE_PER_FILE=8 SUITE_FILE_LIMIT=240 timeout "${SUITE_SECONDS:-280}" bash scripts/gpu/suite.sh > "$out/suite.txt" 2>&1
rc=$?
echo "suite rc $rc after $(( $(date +%s) - start )) s"
if [ "$rc" = 124 ]; then  # cut at the limit: summarise the files that finished
  node scripts/gpu/summary.mjs "$out"/suite/files/*.json > "$out/suite.txt" 2>&1
  echo "$(wc -l < "$out/suite/files.txt") files finished"
fi
head -c 3000 "$out/suite.txt"
rm -f "$out"/suite/files/*.json  # large; the logs and files.txt stay
timeout "${OPS_SECONDS:-100}" node bench/gpu.mjs > "$out/gpu.log" 2>&1
echo "gpu.mjs rc $?"; cat "$out/gpu.log"
timeout "${TRAIN_SECONDS:-190}" node bench/gpu_train.mjs --seconds 1.5 > "$out/train.log" 2>&1
echo "train rc $?"; grep -E "^(config|mlp|transformer)" "$out/train.log"
