#!/usr/bin/env bash
# Fuzzes every decoder of hostile input, one target after the other, and prints a table
# of executions, time and crashes per target.
#
#   fuzz/run.sh [RUNS|SECONDSs] [TARGET...]
#
# RUNS is libFuzzer's -runs (default 1000000: the dedicated run the README records under Fuzzing);
# "600s" runs each target for ten minutes instead. New corpus entries land in
# fuzz/corpus/<target>/ (shrink them again with `cargo fuzz cmin <target>`); a crash
# leaves its input in fuzz/artifacts/<target>/ and the script goes on with the next
# target. Needs a nightly toolchain (rustup's, or RUSTC_BOOTSTRAP=1 with the stable one)
# and installs cargo-fuzz from crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

budget=${1:-1000000}
shift || true
all=(avro_single_object avro_confluent json_events csv_import rule_metadata subscriptions)
targets=("${@:-${all[@]}}")
if [[ $budget == *s ]]; then
  limit=(-runs=-1 "-max_total_time=${budget%s}")
else
  limit=("-runs=$budget")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  fuzz=(cargo +nightly fuzz)
else
  export RUSTC_BOOTSTRAP=1 # cargo-fuzz passes -Z flags; stable rustc takes them so
  fuzz=(cargo fuzz)
fi
# Sanitizer builds in a target directory of their own, so they never invalidate the
# workspace's debug build.
target_dir=${FUZZ_TARGET_DIR:-target/fuzz}

if [[ ! -d fuzz/corpus/${targets[0]} ]]; then
  cargo run -q -p relec-fuzz-harness --example seeds -- fuzz/corpus
fi

mkdir -p fuzz/logs
nice -n 10 "${fuzz[@]}" build --target-dir "$target_dir" # every target, sharing one build

rows=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/artifacts/$t"
  before=$(find "fuzz/artifacts/$t" -type f | wc -l)
  start=$(date +%s)
  status=0
  # -timeout: an input running 10 s is a finding (the rule sandbox cuts scripts off at
  # 50 ms); -rss_limit_mb: no input may need 2 GB.
  nice -n 10 "${fuzz[@]}" run --target-dir "$target_dir" "$t" "fuzz/corpus/$t" -- \
    "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"fuzz/logs/$t.log" 2>&1 || status=$?
  seconds=$(($(date +%s) - start))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "fuzz/logs/$t.log" | tail -1)
  crashes=$(($(find "fuzz/artifacts/$t" -type f | wc -l) - before))
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  rows+=("| $t | ${executions:-?} | $seconds | $crashes | $corpus | $status |")
  echo "$t: ${executions:-?} executions in ${seconds}s, $crashes crashes (exit $status, log fuzz/logs/$t.log)" >&2
done

echo "| target | executions | seconds | crashes | corpus files | exit |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
