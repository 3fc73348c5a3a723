#!/usr/bin/env bash
# Test bed: the venv of the Confluent client that tests/registry_interop.rs runs (tests/bed/confluent_client.py):
# Python's confluent-kafka from PyPI with its Avro serializer, pinned in confluent-requirements.txt.
# Usage: tests/bed/confluent.sh ensure
#   ensure  create ${RELEC_BED_DIR}/confluent-venv (only when it is missing or was made from other pins) and print
#           CONFLUENT_PYTHON=<its python> on stdout.
# Env: RELEC_BED_DIR (default /tmp/relec-bed).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$BED_DIR/confluent-venv"
REQUIREMENTS="$BED_SRC/confluent-requirements.txt"
STAMP="$VENV/.relec-requirements"

ensure_venv() {
    local want
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
    if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(<"$STAMP")" == "$want" ]]; then
        return 0
    fi
    bed_log "confluent: creating venv $VENV (confluent-kafka and its Avro serializer, pinned)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2 || bed_die "confluent: python3 -m venv failed (python3-venv missing?)"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2 ||
        bed_die "confluent: pip install -r $REQUIREMENTS failed"
    "$VENV/bin/python" -c 'import confluent_kafka.schema_registry.avro' >&2 ||
        bed_die "confluent: the installed client does not import"
    echo "$want" >"$STAMP"
}

case "${1:-}" in
    ensure)
        mkdir -p "$BED_DIR"
        ensure_venv
        echo "CONFLUENT_PYTHON=$VENV/bin/python"
        ;;
    *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
