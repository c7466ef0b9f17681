#!/usr/bin/env bash
# Builds the addon with AddressSanitizer and UndefinedBehaviorSanitizer into native/build-sanitize
# and runs the test suite against it (the packed-install test builds an addon of its own, so it is
# left out). Any sanitizer report fails the run. Usage: bash scripts/sanitize.sh [vitest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/native/build-sanitize"
npx cmake-js compile -d native -O "$out" -m -p "$(nproc)" --CDTESSERA_SANITIZE=ON --CDTESSERA_CUDA=OFF > "$out.log" 2>&1 || { tail -30 "$out.log"; exit 1; }
# Node itself is not instrumented: the runtimes are preloaded so the addon's checks run inside it.
# Leak checking is off because Node does not free everything at exit.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TESSERA_ADDON="$out/Release/tessera.node"
npx vitest run --exclude "test/pack/**" "$@"
