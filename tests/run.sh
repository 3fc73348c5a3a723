#!/usr/bin/env bash
# The one test command: installs what the build and the test bed need, starts the real
# services (Apache Kafka, SMTP, schema registry), runs the whole workspace's tests against
# them, and stops everything it started, even when a test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Build needs of rdkafka's bundled librdkafka (C compiler, make, OpenSSL headers for TLS
# and SASL_SSL to production clusters), Java 17 and Maven for the broker and the schema
# registry, HAProxy in front of the registry, Python for the SMTP server and the Confluent
# client of the interop test, openssl for the certificates of the broker's TLS listeners.
# Installed only when missing.
need_pkgs=()
command -v cc >/dev/null || need_pkgs+=(gcc)
command -v make >/dev/null || need_pkgs+=(make)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_pkgs+=(libssl-dev)
command -v java >/dev/null || need_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_pkgs+=(maven)
command -v python3 >/dev/null || need_pkgs+=(python3 python3-venv)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v haproxy >/dev/null || [[ -x /usr/sbin/haproxy ]] || need_pkgs+=(haproxy)
if ((${#need_pkgs[@]})); then
    echo "run.sh: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# promtool checks deploy/prometheus (deploy/check.sh), and relec/tests/run_prometheus.rs
# scrapes `relec run` with the prometheus binary. Only the package's binaries are
# wanted: not its recommended exporters, and not its service, which is stopped if the
# package started one.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    echo "run.sh: installing prometheus (for promtool and prometheus)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    if [[ -x /etc/init.d/prometheus ]] && /etc/init.d/prometheus status >/dev/null 2>&1; then
        /etc/init.d/prometheus stop >/dev/null || true
    fi
fi

# Build everything first, so the services are not left idling through a cold compile.
# A build from scratch gains nothing from incremental data (3 GB of it with full debug
# info, on a machine whose disk CI once filled); a caller can still ask for it.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
cargo build --workspace --all-targets --locked

trap 'bash tests/bed/down.sh >&2 || true' EXIT
eval "$(bash tests/bed/up.sh)"

log="$(mktemp)"
status=0
cargo test --workspace --locked --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?

# The chaos suite (relec/tests/chaos.rs), alone after the rest: the whole pipeline under
# load while stages are killed, its broker (one of its own) restarts, a webhook hangs and a
# second rules instance comes and goes; it prints its counts. About four minutes. Its
# rules stages log at info (partitions assigned, state restored, transitions), so a run
# that fails ends with what the stage was doing.
RELEC_E2E_LOG="${RELEC_E2E_LOG:-warn,relec_rules=info}" \
    cargo test --locked -p relec --test chaos -- --ignored --nocapture 2>&1 | tee -a "$log" || status=$?

# The benchmarks must keep working; short debug runs check them (the figures that matter
# come from release builds, see the README).
cargo run --quiet --locked -p relec -- bench codec --records 200 --seconds 0.05 \
    --registry "$RELEC_TEST_REGISTRY" >/dev/null
RUST_LOG=warn cargo run --quiet --locked -p relec -- --brokers "$RELEC_TEST_BROKERS" \
    bench ingest --events 2000 >/dev/null
cargo run --quiet --locked -p relec -- --brokers "$RELEC_TEST_BROKERS" \
    bench stage --days 10 --rounds 1 --evaluations 1000 >/dev/null
RUST_LOG=warn cargo run --quiet --locked -p relec -- --brokers "$RELEC_TEST_BROKERS" \
    bench e2e --days 4 --backlog-days 2 --rate 1000 >/dev/null
cargo run --quiet --locked -p relec -- --brokers "$RELEC_TEST_BROKERS" \
    bench notify --alerts 200 --rate 50 --seconds 1 --rounds 1 >/dev/null
cargo run --quiet --locked -p relec -- rules test rules/pack | grep -v '^  ok '

# deploy/: compose file, Kubernetes manifests, Prometheus config and rules, Dockerfile,
# through real parsers and validators (tests/deploy.rs, above, checks them against the code).
bash deploy/check.sh || status=1

# One closing line over every test binary (cargo prints one per binary, the last of which
# is often an empty doc-test run).
results=$(grep '^test result:' "$log" || true)
passed=$(grep -oE '[0-9]+ passed' <<<"$results" | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '[0-9]+ failed' <<<"$results" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
bash tests/bed/down.sh >&2
trap - EXIT
echo "relec: $passed passed, $failed failed"
exit "$status"
