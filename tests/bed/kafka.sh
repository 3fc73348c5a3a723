#!/usr/bin/env bash
# Test bed: a single-node Apache Kafka (KRaft, combined broker+controller) on loopback, run from Maven Central jars.
# Besides PLAINTEXT (also the controller's and between brokers) it serves an SSL listener that requires client
# certificates and a SASL_SSL listener with SCRAM-SHA-512 and SCRAM-SHA-256, with a throwaway CA made here.
# Usage: tests/bed/kafka.sh start|stop|status
#   start  fetch the jars (cached in ~/.m2), make fresh certificates, format a fresh data dir (with the SCRAM
#          user), start the broker, wait until it serves, print on stdout KAFKA_BROKERS=127.0.0.1:PORT and, unless
#          disabled, KAFKA_SSL=127.0.0.1:SSL_PORT, KAFKA_SASL_SSL=127.0.0.1:SASL_PORT, KAFKA_TLS_DIR=DIR (the CA,
#          client and SCRAM files, see make_certs) and KAFKA_SCRAM_USER=NAME. No-op (still prints) if already
#          running with the same listeners; restarted fresh if running with others (an older bed).
#   resume start again on the existing data (after stop), for tests of broker outages.
#   stop   SIGTERM, bounded wait, SIGKILL. No-op if not running.
#   status print whether it runs; exit 0 if it does.
# Env: RELEC_BED_DIR (default /tmp/relec-bed), RELEC_KAFKA_PORT (19092), RELEC_KAFKA_CONTROLLER_PORT (19093),
#      RELEC_KAFKA_SSL_PORT (19094), RELEC_KAFKA_SASL_PORT (19095) ("off" leaves that listener out),
#      RELEC_KAFKA_START_TIMEOUT (90 s), RELEC_KAFKA_HEAP (512m), JAVA_HOME (else `java` on PATH).
set -euo pipefail

KAFKA_VERSION="4.1.1"

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HOST=127.0.0.1
PORT="${RELEC_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${RELEC_KAFKA_CONTROLLER_PORT:-19093}"
SSL_PORT="${RELEC_KAFKA_SSL_PORT:-19094}"
SASL_PORT="${RELEC_KAFKA_SASL_PORT:-19095}"
SCRAM_USER="relec-test"
START_TIMEOUT="${RELEC_KAFKA_START_TIMEOUT:-90}"
HEAP="${RELEC_KAFKA_HEAP:-512m}"

STATE="$BED_DIR/kafka"
LIBS="$STATE/libs-$KAFKA_VERSION"
DATA="$STATE/data"
LOGS="$STATE/logs"
PIDFILE="$STATE/kafka.pid"
PROPS="$STATE/server.properties"
TLS="$STATE/tls"
MARKER="$PROPS" # appears on the broker's command line only
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"

# Fills $LIBS with the runtime jars. Skips Maven when $LIBS was completed for the same pom and version;
# otherwise tries Maven offline first (everything already in ~/.m2) and falls back to online.
fetch_jars() {
    local stamp_want stamp_file="$LIBS/.complete"
    stamp_want="$KAFKA_VERSION $(sha256sum "$BED_SRC/kafka-pom.xml" | cut -d' ' -f1)"
    if [[ -f "$stamp_file" && "$(<"$stamp_file")" == "$stamp_want" ]]; then
        return 0
    fi
    local tmp="$LIBS.tmp"
    rm -rf "$tmp"
    bed_log "kafka: collecting Kafka $KAFKA_VERSION jars (mvn offline first)"
    maven_run kafka "$BED_SRC/kafka-pom.xml" "$STATE/mvn" "$tmp" \
        org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
        "-Dkafka.version=$KAFKA_VERSION" "-DoutputDirectory=$tmp" -DincludeScope=runtime
    ls "$tmp"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || bed_die "kafka: jar set in $tmp incomplete"
    echo "$stamp_want" >"$tmp/.complete"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
}

secure() { [[ "$SSL_PORT" != off || "$SASL_PORT" != off ]]; }

# The client-facing listeners, as NAME://HOST:PORT,... (the CONTROLLER one is added where it belongs).
client_listeners() {
    local l="PLAINTEXT://$HOST:$PORT"
    [[ "$SSL_PORT" == off ]] || l+=",SSL://$HOST:$SSL_PORT"
    [[ "$SASL_PORT" == off ]] || l+=",SASL_SSL://$HOST:$SASL_PORT"
    echo "$l"
}

# Makes, in $TLS, a throwaway CA (EC P-256 keys, 30 days) and what the broker and the tests need:
#   ca.pem                         the CA that signed the broker's and the client's certificates
#   server.p12, server.password    the broker's keystore (PKCS#12; SAN IP:127.0.0.1, DNS:localhost), its password
#   client.pem, client.key         a client certificate for the SSL listener (which requires one); the key is
#   client-key.password            encrypted PKCS#8 under this password
#   other-ca.pem                   a CA the broker knows nothing of, for clients that trust the wrong one
#   scram.password                 the SCRAM-SHA-512 and SCRAM-SHA-256 password of $SCRAM_USER
make_certs() {
    command -v openssl >/dev/null || bed_die "openssl not found (needed for the broker's certificates)"
    local tmp="$TLS.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    (
        cd "$tmp"
        umask 077
        ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        for f in server.password client-key.password scram.password; do openssl rand -hex 16 >"$f"; done
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj "/CN=relec test bed CA"
        openssl req -x509 "${ec[@]}" -keyout other-ca.key -out other-ca.pem -days 30 -subj "/CN=relec other CA"
        openssl req -new "${ec[@]}" -keyout server.key -out server.csr -subj "/CN=localhost"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile server.ext -out server.pem
        openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name broker \
            -passout file:server.password -out server.p12
        openssl req -new "${ec[@]}" -keyout client-plain.key -out client.csr -subj "/CN=$SCRAM_USER-client"
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
            -extfile client.ext -out client.pem
        openssl pkcs8 -topk8 -v2 aes-256-cbc -in client-plain.key -passout file:client-key.password -out client.key
        rm -f ./*.csr ./*.ext ./*.srl client-plain.key other-ca.key
        chmod 644 ca.pem other-ca.pem client.pem
    ) >"$tmp.log" 2>&1 || {
        show_log_tail "$tmp.log"
        bed_die "kafka: making the certificates failed"
    }
    rm -rf "$TLS" "$tmp.log"
    mv "$tmp" "$TLS"
}

write_configs() {
    local listeners
    listeners="$(client_listeners)"
    cat >"$PROPS" <<EOF
# generated by tests/bed/kafka.sh: single node, KRaft combined mode, loopback only, test-friendly settings
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=$listeners,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=$listeners
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
EOF
    if secure; then
        cat >>"$PROPS" <<EOF
# TLS for the SSL and SASL_SSL listeners (PLAINTEXT stays the controller's and the inter-broker listener)
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS/server.p12
ssl.keystore.password=$(<"$TLS/server.password")
ssl.key.password=$(<"$TLS/server.password")
ssl.truststore.type=PEM
ssl.truststore.location=$TLS/ca.pem
listener.name.ssl.ssl.client.auth=required
# SCRAM users are created at format time (StorageTool --add-scram)
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
    # Broker logging: everything to files under $LOGS, nothing to the console.
    cat >"$STATE/log4j2.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- generated by tests/bed/kafka.sh: broker logs go to files, not stdout. shutdownHook=disable keeps the
     broker's own shutdown messages (logged from Kafka's shutdown hook) from being cut off. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <RollingFile name="server" fileName="$LOGS/server.log" filePattern="$LOGS/server.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="50 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
    <File name="stateChange" fileName="$LOGS/state-change.log">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </File>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="server"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="state.change.logger" level="INFO" additivity="false"><AppenderRef ref="stateChange"/></Logger>
  </Loggers>
</Configuration>
EOF
}

write_tools_log_config() {
    # CLI tools (StorageTool, TopicCommand): warnings to stderr only.
    cat >"$STATE/tools-log4j2.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="stderr"/></Root>
  </Loggers>
</Configuration>
EOF
}

# Runs a Kafka CLI class on the broker classpath, e.g. kafka_tool org.apache.kafka.tools.TopicCommand --list ...
kafka_tool() {
    [[ -f "$LIBS/.complete" ]] || bed_die "kafka: no jars yet in $LIBS (run '$0 start' once)"
    [[ -f "$STATE/tools-log4j2.xml" ]] || write_tools_log_config
    "$JAVA" -Xmx256m -Dlog4j2.configurationFile="$STATE/tools-log4j2.xml" -cp "$LIBS/*" "$@"
}

print_addr() {
    echo "KAFKA_BROKERS=$HOST:$PORT"
    [[ "$SSL_PORT" == off ]] || echo "KAFKA_SSL=$HOST:$SSL_PORT"
    [[ "$SASL_PORT" == off ]] || echo "KAFKA_SASL_SSL=$HOST:$SASL_PORT"
    if secure; then
        echo "KAFKA_TLS_DIR=$TLS"
        echo "KAFKA_SCRAM_USER=$SCRAM_USER"
    fi
}

# $1 = keep: resume on the existing data dir (a broker restart) instead of a fresh one.
do_start() {
    local keep="${1:-0}"
    mkdir -p "$STATE"
    if pid_running "$PIDFILE" "$MARKER"; then
        if grep -qxF "advertised.listeners=$(client_listeners)" "$PROPS" 2>/dev/null; then
            bed_log "kafka: already running (pid $(<"$PIDFILE"))"
            print_addr
            return 0
        fi
        # E.g. started by an older version of this script, without the SSL and SASL_SSL listeners.
        bed_log "kafka: running with other listeners than $(client_listeners): starting it afresh"
        do_stop
        keep=0
    fi
    rm -f "$PIDFILE"
    for p in "$PORT" "$CONTROLLER_PORT" "$SSL_PORT" "$SASL_PORT"; do
        [[ "$p" != off ]] || continue
        if port_open "$HOST" "$p"; then bed_die "kafka: $HOST:$p is already in use by another process"; fi
    done
    command -v "$JAVA" >/dev/null || bed_die "java not found (set JAVA_HOME or put java on PATH)"
    local t0=$SECONDS
    fetch_jars
    if [[ "$keep" == 1 && -f "$DATA/meta.properties" ]]; then
        # Restart on the same data; the old log must not satisfy the readiness check below.
        mkdir -p "$LOGS"
        [[ -f "$LOGS/server.log" ]] && mv "$LOGS/server.log" "$LOGS/server.log.$(date +%s)"
        bed_log "kafka: resuming on the existing data in $DATA"
    else
        # Fresh broker (and certificates, and SCRAM user) every start.
        rm -rf "$DATA" "$LOGS"
        mkdir -p "$DATA" "$LOGS"
        local scram=()
        if secure; then
            make_certs
            local pw
            pw="$(<"$TLS/scram.password")"
            scram=(--add-scram "SCRAM-SHA-512=[name=$SCRAM_USER,password=$pw]"
                --add-scram "SCRAM-SHA-256=[name=$SCRAM_USER,password=$pw]")
        fi
        write_configs
        write_tools_log_config
        local cluster_id
        cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid)"
        bed_log "kafka: formatting $DATA (cluster id $cluster_id)"
        kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" "${scram[@]}" \
            >"$LOGS/format.log" 2>&1 || {
            show_log_tail "$LOGS/format.log"
            bed_die "kafka: storage format failed"
        }
    fi
    bed_log "kafka: starting Kafka $KAFKA_VERSION on $(client_listeners) (controller $HOST:$CONTROLLER_PORT)"
    start_daemon "$PIDFILE" "$LOGS/kafka.out" \
        "$JAVA" "-Xms128m" "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=$STATE/log4j2.xml" "-Dkafka.logs.dir=$LOGS" \
        -cp "$LIBS/*" kafka.Kafka "$PROPS"
    # Ready = the listener accepts TCP connections AND the broker logged that startup finished
    # (in KRaft mode that line comes after the broker has caught up with the metadata log and been unfenced).
    local deadline=$((SECONDS + START_TIMEOUT))
    if ! wait_port "$HOST" "$PORT" "$START_TIMEOUT" "$PIDFILE" "$MARKER"; then
        show_log_tail "$LOGS/server.log" 40
        show_log_tail "$LOGS/kafka.out" 20
        stop_daemon kafka "$PIDFILE" "$MARKER" 15 || true
        bed_die "kafka: did not start"
    fi
    while ! grep -q 'Kafka Server started' "$LOGS/server.log" 2>/dev/null; do
        if ! pid_running "$PIDFILE" "$MARKER" || ((SECONDS >= deadline)); then
            show_log_tail "$LOGS/server.log" 40
            show_log_tail "$LOGS/kafka.out" 20
            stop_daemon kafka "$PIDFILE" "$MARKER" 15 || true
            bed_die "kafka: broker never logged 'Kafka Server started' (within ${START_TIMEOUT}s)"
        fi
        sleep 0.3
    done
    bed_log "kafka: ready after $((SECONDS - t0))s (pid $(<"$PIDFILE"), logs in $LOGS)"
    print_addr
}

do_stop() {
    stop_daemon kafka "$PIDFILE" "$MARKER" "${RELEC_KAFKA_STOP_TIMEOUT:-30}"
}

case "${1:-}" in
    start) do_start 0 ;;
    resume) do_start 1 ;; # restart a stopped broker on its data: for tests of broker outages
    stop) do_stop ;;
    status) status_daemon kafka "$PIDFILE" "$MARKER" "$HOST" "$PORT" ;;
    tool) shift; kafka_tool "$@" ;; # e.g. kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server ... --list
    *) echo "usage: $0 start|resume|stop|status|tool CLASS [ARGS...]" >&2; exit 2 ;;
esac
