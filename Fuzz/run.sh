#!/usr/bin/env bash
# Builds the libFuzzer targets (with AddressSanitizer) and runs each for a bounded time.
#
#   Fuzz/run.sh                 # every target, 60 s each (the CI smoke)
#   Fuzz/run.sh 3600            # long campaign: an hour each
#   Fuzz/run.sh 600 FuzzPacket  # one target
#
# Corpora grow in .build-fuzz/corpus/<target> (seeded from Fuzz/seeds/<target> and the Go
# captures in Tests/RumorWireTests/Fixtures). A crash stops the run with exit 1 and leaves the
# input in .build-fuzz/crashes/<target>/: turn it into a regression test, fix, rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(FuzzPacket FuzzStream FuzzReplication FuzzAPI)
scratch=.build-fuzz

for target in "${targets[@]}"; do
    swift build -c release --scratch-path "$scratch" --product "$target" \
        --sanitize fuzzer --sanitize address -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -E 'error|warning: unre|Compiling|Build' | tail -2
done
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)

python3 Fuzz/seed.py "$scratch/corpus"

export SWIFT_BACKTRACE=enable=no  # let AddressSanitizer and libFuzzer report crashes
status=0
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    crashes="$scratch/crashes/$target"
    mkdir -p "$corpus" "$crashes"
    log="$scratch/$target.log"
    echo "== $target: ${seconds}s"
    if "$bin/$target" "$corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$crashes/" >"$log" 2>&1; then
        runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
        cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}' || true)
        echo "   $target: ${runs:-?} executions, coverage ${cov:-?}, 0 crashes"
    else
        echo "   $target: CRASH (input in $crashes)"
        grep -E 'ERROR|Fatal|panic|precondition|SUMMARY' "$log" | head -10
        status=1
    fi
done
exit $status
