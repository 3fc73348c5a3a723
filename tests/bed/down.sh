#!/usr/bin/env bash
# Test bed: stops Kafka, the SMTP server and the schema registry (no-op for those not running).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rc=0
bash "$HERE/registry.sh" stop || rc=1
bash "$HERE/smtp.sh" stop || rc=1
bash "$HERE/kafka.sh" stop || rc=1
exit "$rc"
