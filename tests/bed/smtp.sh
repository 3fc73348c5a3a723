#!/usr/bin/env bash
# Test bed: a real SMTP server (Python aiosmtpd, see smtp_server.py) on loopback that stores mail as .eml files.
# Usage: tests/bed/smtp.sh start|stop|status
#   start  create the venv ${RELEC_BED_DIR}/venv with aiosmtpd (once), start the server, wait until it accepts
#          connections, print SMTP_ADDR=127.0.0.1:PORT on stdout. No-op (still prints) if already running.
#          The inbox ${RELEC_BED_DIR}/smtp/inbox is emptied on every fresh start.
#   stop   SIGTERM, bounded wait, SIGKILL. No-op if not running.
#   status print whether it runs; exit 0 if it does.
# Env: RELEC_BED_DIR (default /tmp/relec-bed), RELEC_SMTP_PORT (12525), RELEC_SMTP_USER (relec),
#      RELEC_SMTP_PASSWORD (relec-test), RELEC_SMTP_AUTH_REQUIRED (0; 1 = reject MAIL before AUTH).
set -euo pipefail

AIOSMTPD_VERSION="1.4.6"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST=127.0.0.1
PORT="${RELEC_SMTP_PORT:-12525}"
STATE="$BED_DIR/smtp"
INBOX="$STATE/inbox"
PIDFILE="$STATE/smtp.pid"
LOG="$STATE/smtp.log"
VENV="$BED_DIR/venv"
MARKER="$INBOX" # appears on the server's command line only

ensure_venv() {
    if "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('aiosmtpd') != '$AIOSMTPD_VERSION')" \
        >/dev/null 2>&1; then
        return 0
    fi
    bed_log "smtp: creating venv $VENV with aiosmtpd==$AIOSMTPD_VERSION"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" >&2 ||
        bed_die "smtp: pip install aiosmtpd==$AIOSMTPD_VERSION failed"
}

print_addr() {
    echo "SMTP_ADDR=$HOST:$PORT"
}

do_start() {
    mkdir -p "$STATE"
    if pid_running "$PIDFILE" "$MARKER"; then
        bed_log "smtp: already running (pid $(<"$PIDFILE"))"
        print_addr
        return 0
    fi
    rm -f "$PIDFILE"
    if port_open "$HOST" "$PORT"; then bed_die "smtp: $HOST:$PORT is already in use by another process"; fi
    ensure_venv
    rm -rf "$INBOX"
    mkdir -p "$INBOX"
    : >"$LOG"
    bed_log "smtp: starting on $HOST:$PORT (inbox $INBOX)"
    start_daemon "$PIDFILE" "$LOG" \
        "$VENV/bin/python" -u "$BED_SRC/smtp_server.py" --host "$HOST" --port "$PORT" --inbox "$INBOX"
    if ! wait_port "$HOST" "$PORT" 30 "$PIDFILE" "$MARKER"; then
        show_log_tail "$LOG" 40
        stop_daemon smtp "$PIDFILE" "$MARKER" 5 || true
        bed_die "smtp: did not start"
    fi
    bed_log "smtp: ready (pid $(<"$PIDFILE"), log $LOG)"
    print_addr
}

case "${1:-}" in
    start) do_start ;;
    stop) stop_daemon smtp "$PIDFILE" "$MARKER" 10 ;;
    status) status_daemon smtp "$PIDFILE" "$MARKER" "$HOST" "$PORT" ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
