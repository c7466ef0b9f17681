#!/usr/bin/env bash
# The whole vitest suite with the gpu as the default device (TESSERA_DEFAULT_DEVICE=gpu: every op
# without a { device } option runs on the gpu, and an op not ported there fails with
# "... is not supported on device gpu"). Run it on the GPU machine from the project's root, after
# on-device.sh has unpacked Node (docs/cuda.md), e.g. with carry [".carry"]:
#   bash .carry/on-device.sh bash -c 'node_modules/.bin/cmake-js compile -d native -m -p 16 && bash scripts/gpu/suite.sh'
# Extra arguments go to vitest (file filters). Writes suite.log, suite.json (vitest's JSON report)
# and failures.txt (the counts and each failing test's first error line) under $OUT (else
# /tmp/tessera-suite) and prints failures.txt; exits with vitest's status.
# SUITE_PER_FILE=N runs each test file in its own vitest, N files at a time, each under a limit of
# SUITE_FILE_LIMIT seconds (default 240): a file that hangs is then named (files.txt lists each
# file's exit status and seconds; 124 = cut at the limit) instead of stalling the whole run.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
out=${OUT:-/tmp/tessera-suite}
mkdir -p "$out"
export TESSERA_DEFAULT_DEVICE=gpu
if [ -n "${SUITE_PER_FILE:-}" ]; then
  mkdir -p "$out/files"
  export out limit=${SUITE_FILE_LIMIT:-240}
  find test -name '*.test.ts' | sort | xargs -P "$SUITE_PER_FILE" -I{} bash -c '
    f={}; key=$(echo "$f" | tr / _); start=$(date +%s)
    timeout "$limit" node node_modules/vitest/vitest.mjs run --reporter=dot --reporter=json \
      --outputFile="$out/files/$key.json" "$f" > "$out/files/$key.log" 2>&1
    echo "$? $(( $(date +%s) - start ))s $f" >> "$out/files.txt"'
  node scripts/gpu/summary.mjs "$out"/files/*.json > "$out/failures.txt" 2>&1
  sort -k1,1nr "$out/files.txt" | awk '$1 != 0' | sed 's/^/file exit: /' >> "$out/failures.txt"
  cat "$out/failures.txt"
  ! awk '$1 != 0 { bad = 1 } END { exit !bad }' "$out/files.txt"
  exit $?
fi
node node_modules/vitest/vitest.mjs run --reporter=dot --reporter=json --outputFile="$out/suite.json" "$@" > "$out/suite.log" 2>&1
rc=$?
node scripts/gpu/summary.mjs "$out/suite.json" > "$out/failures.txt" 2>&1 || tail -n 80 "$out/suite.log"
cat "$out/failures.txt"
exit $rc
