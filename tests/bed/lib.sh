# Shared helpers for the test-bed scripts (kafka.sh, smtp.sh, registry.sh, confluent.sh): logging, bounded port waits, pid-file daemons.
# shellcheck shell=bash disable=SC2034,SC2016
# (sourced library: its variables are used by the scripts that source it; single quotes in bash -c are intended)
# Sourced, not executed. All progress output goes to stderr so callers can eval the stdout of up.sh.

BED_DIR="${RELEC_BED_DIR:-/tmp/relec-bed}"
BED_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

bed_log() {
    printf '[bed %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

bed_die() {
    bed_log "ERROR: $*"
    exit 1
}

# port_open HOST PORT -> 0 if something accepts TCP connections there (single attempt, at most 2 s).
port_open() {
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# pid_running PIDFILE MARKER -> 0 if the pid in PIDFILE is alive and its command line contains MARKER
# (guards against a stale pid file whose pid was reused; a zombie has an empty cmdline, so counts as dead).
pid_running() {
    local pidfile="$1" marker="$2" pid
    [[ -s "$pidfile" ]] || return 1
    pid="$(<"$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF -- "$marker"
}

# wait_port HOST PORT TIMEOUT_S PIDFILE MARKER -> waits until HOST:PORT accepts connections;
# fails early if the daemon dies, fails after TIMEOUT_S seconds.
wait_port() {
    local host="$1" port="$2" timeout_s="$3" pidfile="$4" marker="$5"
    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        if ! pid_running "$pidfile" "$marker"; then
            bed_log "process from $pidfile exited before $host:$port came up"
            return 1
        fi
        if port_open "$host" "$port"; then
            return 0
        fi
        sleep 0.3
    done
    bed_log "timed out after ${timeout_s}s waiting for $host:$port"
    return 1
}

# wait_port_free HOST PORT TIMEOUT_S -> waits until nothing accepts connections on HOST:PORT.
wait_port_free() {
    local host="$1" port="$2" timeout_s="$3"
    local deadline=$((SECONDS + timeout_s))
    while ((SECONDS < deadline)); do
        port_open "$host" "$port" || return 0
        sleep 0.3
    done
    return 1
}

# start_daemon PIDFILE LOGFILE CMD [ARGS...]
# Runs CMD in its own session, detached from our stdin/stdout/stderr (so `eval "$(up.sh)"` does not hang
# on an inherited pipe), appending its output to LOGFILE. The pid written is that of CMD itself (exec).
start_daemon() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 &
    local deadline=$((SECONDS + 10))
    while [[ ! -s "$pidfile" ]] && ((SECONDS < deadline)); do sleep 0.1; done
    [[ -s "$pidfile" ]] || bed_die "daemon did not write its pid file $pidfile"
}

# stop_daemon NAME PIDFILE MARKER [TIMEOUT_S] -> SIGTERM, bounded wait, then SIGKILL. No-op if not running.
stop_daemon() {
    local name="$1" pidfile="$2" marker="$3" timeout_s="${4:-30}" pid
    if ! pid_running "$pidfile" "$marker"; then
        rm -f "$pidfile"
        bed_log "$name: not running"
        return 0
    fi
    pid="$(<"$pidfile")"
    bed_log "$name: stopping pid $pid (SIGTERM, up to ${timeout_s}s)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout_s))
    while pid_running "$pidfile" "$marker" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_running "$pidfile" "$marker"; then
        bed_log "$name: still alive after ${timeout_s}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while pid_running "$pidfile" "$marker" && ((SECONDS < deadline)); do sleep 0.2; done
    fi
    pid_running "$pidfile" "$marker" && bed_die "$name: pid $pid would not die"
    rm -f "$pidfile"
    bed_log "$name: stopped"
}

# status_daemon NAME PIDFILE MARKER HOST PORT -> prints a status line on stdout; exit 0 if running.
status_daemon() {
    local name="$1" pidfile="$2" marker="$3" host="$4" port="$5"
    if pid_running "$pidfile" "$marker"; then
        if port_open "$host" "$port"; then
            echo "$name: running (pid $(<"$pidfile"), $host:$port)"
        else
            echo "$name: process running (pid $(<"$pidfile")) but $host:$port not accepting connections"
        fi
        return 0
    fi
    echo "$name: stopped"
    return 1
}

# maven_run NAME POM WORK PARTIAL MVN_ARGS... -> runs `mvn MVN_ARGS` on a copy of POM in the fresh directory WORK (so
# nothing is written into the source tree): offline first (everything already in ~/.m2), then online if that fails,
# after removing PARTIAL (what the offline attempt may have left half-written; "" for nothing). Dies, with the end of
# Maven's log, when both fail.
maven_run() {
    local name="$1" pom="$2" work="$3" partial="$4"
    shift 4
    command -v mvn >/dev/null || bed_die "mvn not found on PATH"
    rm -rf "$work"
    mkdir -p "$work"
    cp "$pom" "$work/pom.xml"
    if mvn -o -B -q -f "$work/pom.xml" "$@" >"$work/mvn-offline.log" 2>&1; then
        return 0
    fi
    bed_log "$name: not all in ~/.m2 yet, fetching from Maven Central"
    [[ -z "$partial" ]] || rm -rf "$partial"
    if ! mvn -B -q -f "$work/pom.xml" "$@" >"$work/mvn-online.log" 2>&1; then
        show_log_tail "$work/mvn-online.log" 60
        bed_die "$name: mvn $* failed"
    fi
}

# show_log_tail FILE [N] -> last N lines of FILE on stderr.
show_log_tail() {
    local file="$1" n="${2:-40}"
    if [[ -f "$file" ]]; then
        bed_log "last $n lines of $file:"
        tail -n "$n" "$file" >&2 || true
    fi
}
