#!/usr/bin/env bash
# Test bed: runs registry.py, the in-memory Confluent-Schema-Registry stand-in, on loopback (Python stdlib only).
# Usage: tests/bed/registry.sh start|stop|status
#   start  start the server, wait until it answers HTTP, print REGISTRY_URL=http://127.0.0.1:PORT on stdout.
#          No-op (still prints) if already running. Every fresh start begins with no schemas.
#   stop   SIGTERM, bounded wait, SIGKILL. No-op if not running.
#   status print whether it runs; exit 0 if it does.
# Env: RELEC_BED_DIR (default /tmp/relec-bed), RELEC_REGISTRY_PORT (18081).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST=127.0.0.1
PORT="${RELEC_REGISTRY_PORT:-18081}"
STATE="$BED_DIR/registry"
PIDFILE="$STATE/registry.pid"
LOG="$STATE/registry.log"
MARKER="--bed-state=$STATE" # appears on the server's command line only (ignored by registry.py)

print_addr() {
    echo "REGISTRY_URL=http://$HOST:$PORT"
}

do_start() {
    mkdir -p "$STATE"
    if pid_running "$PIDFILE" "$MARKER"; then
        bed_log "registry: already running (pid $(<"$PIDFILE"))"
        print_addr
        return 0
    fi
    rm -f "$PIDFILE"
    if port_open "$HOST" "$PORT"; then bed_die "registry: $HOST:$PORT is already in use by another process"; fi
    : >"$LOG"
    bed_log "registry: starting on $HOST:$PORT"
    start_daemon "$PIDFILE" "$LOG" \
        python3 -u "$BED_SRC/registry.py" --host "$HOST" --port "$PORT" "$MARKER"
    if ! wait_port "$HOST" "$PORT" 20 "$PIDFILE" "$MARKER"; then
        show_log_tail "$LOG" 40
        stop_daemon registry "$PIDFILE" "$MARKER" 5 || true
        bed_die "registry: did not start"
    fi
    bed_log "registry: ready (pid $(<"$PIDFILE"), log $LOG)"
    print_addr
}

case "${1:-}" in
    start) do_start ;;
    stop) stop_daemon registry "$PIDFILE" "$MARKER" 10 ;;
    status) status_daemon registry "$PIDFILE" "$MARKER" "$HOST" "$PORT" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
