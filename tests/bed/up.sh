#!/usr/bin/env bash
# Test bed: starts Kafka, the SMTP server and the schema registry, makes the Confluent client's venv; prints
# `export` lines on stdout.
# Usage: eval "$(tests/bed/up.sh)"   (all progress goes to stderr)
# Exports RELEC_TEST_BROKERS, RELEC_TEST_KAFKA_SSL, RELEC_TEST_KAFKA_SASL_SSL, RELEC_TEST_KAFKA_TLS_DIR,
# RELEC_TEST_KAFKA_SCRAM_USER, RELEC_TEST_SMTP, RELEC_TEST_REGISTRY, RELEC_TEST_CONFLUENT_PYTHON. On failure, stops whatever it started
# (set RELEC_BED_KEEP_ON_FAILURE=1 to leave it for inspection) and exits non-zero.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

mkdir -p "$BED_DIR"
t0=$SECONDS

fail() {
    bed_log "up: $1 failed to start"
    if [[ "${RELEC_BED_KEEP_ON_FAILURE:-0}" != 1 ]]; then
        bash "$HERE/down.sh" || true
    fi
    exit 1
}

# Kafka is the slow one: start it in the background while the other two come up.
kafka_out="$BED_DIR/.up-kafka.out"
bash "$HERE/kafka.sh" start >"$kafka_out" &
kafka_job=$!

smtp_line="$(bash "$HERE/smtp.sh" start)" || { wait "$kafka_job" || true; fail smtp; }
registry_line="$(bash "$HERE/registry.sh" start)" || { wait "$kafka_job" || true; fail registry; }
confluent_line="$(bash "$HERE/confluent.sh" ensure)" || { wait "$kafka_job" || true; fail "the Confluent client's venv"; }
wait "$kafka_job" || fail kafka
# KEY=VALUE lines: KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_SSL, KAFKA_TLS_DIR, KAFKA_SCRAM_USER.
declare -A kafka
while IFS='=' read -r k v; do kafka[$k]="$v"; done <"$kafka_out"
rm -f "$kafka_out"

brokers="${kafka[KAFKA_BROKERS]:-}"
smtp="${smtp_line#SMTP_ADDR=}"
registry="${registry_line#REGISTRY_URL=}"
confluent_python="${confluent_line#CONFLUENT_PYTHON=}"
[[ -n "$brokers" && -n "$smtp" && -n "$registry" && -n "$confluent_python" ]] || fail "(unexpected output)"

bed_log "up: all services ready in $((SECONDS - t0))s"
printf 'export RELEC_TEST_BROKERS=%q\n' "$brokers"
for k in SSL SASL_SSL TLS_DIR SCRAM_USER; do
    [[ -z "${kafka[KAFKA_$k]:-}" ]] || printf 'export RELEC_TEST_KAFKA_%s=%q\n' "$k" "${kafka[KAFKA_$k]}"
done
printf 'export RELEC_TEST_SMTP=%q\n' "$smtp"
printf 'export RELEC_TEST_REGISTRY=%q\n' "$registry"
printf 'export RELEC_TEST_CONFLUENT_PYTHON=%q\n' "$confluent_python"
