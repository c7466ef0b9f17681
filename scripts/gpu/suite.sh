#!/usr/bin/env bash
# The whole vitest suite with the gpu as the default device (TESSERA_DEFAULT_DEVICE=gpu: every op
# without a { device } option runs on the gpu, and an op not ported there fails with
# "... is not supported on device gpu"). Run it on the GPU machine from the project's root, after
# on-device.sh has unpacked Node (docs/cuda.md), e.g. with carry [".carry"]:
#   bash .carry/on-device.sh bash -c 'node_modules/.bin/cmake-js compile -d native -m -p 16 && bash scripts/gpu/suite.sh'
# Extra arguments go to vitest (file filters). Writes suite.log, suite.json (vitest's JSON report)
# and failures.txt (the counts and each failing test's first error line) under $OUT (else
# /tmp/tessera-suite) and prints failures.txt; exits with vitest's status.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd); cd "$root"
out=${OUT:-/tmp/tessera-suite}
mkdir -p "$out"
export TESSERA_DEFAULT_DEVICE=gpu
node node_modules/vitest/vitest.mjs run --reporter=dot --reporter=json --outputFile="$out/suite.json" "$@" > "$out/suite.log" 2>&1
rc=$?
node scripts/gpu/summary.mjs "$out/suite.json" > "$out/failures.txt" 2>&1 || tail -n 80 "$out/suite.log"
cat "$out/failures.txt"
exit $rc
