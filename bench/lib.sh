# Shared helpers for the bench scripts (sourced, not run). Every script that sources this gets:
# a work directory under /tmp, a trap that stops the servers it started and removes that
# directory, and helpers to start kyso, wait for it and read wrk's summary line.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
cd "$REPO"

# Servers started by this script, stopped by the trap (by PID only).
BENCH_PIDS=()
WORK=$(mktemp -d /tmp/kyso-bench.XXXXXX)

cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${BENCH_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c is not installed"
    done
}

# Builds the release binary unless KYSO_BIN names one; sets KYSO.
build_kyso() {
    if [[ -n "${KYSO_BIN:-}" ]]; then
        KYSO=$KYSO_BIN
        log "using KYSO_BIN=$KYSO (no build)"
    else
        log "cargo build --release"
        cargo build --release --quiet
        KYSO=$REPO/target/release/kyso
    fi
    [[ -x "$KYSO" ]] || die "no kyso binary at $KYSO"
}

# A TCP port nobody listens on now.
free_port() {
    python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Runs `kyso init` on $1 and prints the admin token.
kyso_init() {
    local dir=$1 out
    out=$("$KYSO" init --data-dir "$dir" 2>/dev/null)
    sed -n 's/^KYSO_ADMIN_TOKEN=//p' <<<"$out"
}

# Initializes $WORK/data and serves it on a free port; sets DATA, ADMIN, PORT, BASE and
# SERVER_PID. Call it directly (not in $(...)), so the variables stay set.
kyso_serve_fresh() {
    DATA=$WORK/data
    ADMIN=$(kyso_init "$DATA")
    [[ -n "$ADMIN" ]] || die "kyso init printed no KYSO_ADMIN_TOKEN"
    PORT=$(free_port)
    kyso_start "$DATA" "$PORT" "$WORK/kyso.log"
    BASE=http://127.0.0.1:$PORT
    wait_http "$BASE/healthz" >/dev/null
}

# A citizen account bound to CCCD $1 and a citizen certificate for a server-held P-256 key
# under PIN 123456; sets TOKEN and CRED, and keeps the issuance answer in $WORK/issued.json.
bench_citizen_credential() {
    local cccd=$1
    TOKEN=$(curl -fs "$BASE/api/v1/accounts" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
        -d "{\"name\":\"bench\",\"role\":\"citizen\",\"citizen_id\":\"$cccd\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    curl -fs "$BASE/api/v1/certificates" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"profile\":\"citizen\",\"subject\":{\"common_name\":\"Bench\",\"citizen_id\":\"$cccd\"},\"key\":{\"algorithm\":\"ecdsa-p256\",\"pin\":\"123456\"}}" \
        >"$WORK/issued.json"
    CRED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["credential_id"])' "$WORK/issued.json")
}

# A SAD for $1 signatures with $CRED (CSC credentials/authorize, PIN 123456); sets SAD.
bench_sad() {
    SAD=$(curl -fs "$BASE/csc/v2/credentials/authorize" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"credentialID\":\"$CRED\",\"numSignatures\":$1,\"PIN\":\"123456\"}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["SAD"])')
}

# Starts `kyso serve` on data dir $1, port $2, logs to $3; sets SERVER_PID and records the
# start time (ns) in SERVER_T0.
kyso_start() {
    local dir=$1 port=$2 logf=$3
    SERVER_T0=$(date +%s%N)
    KYSO_LOG=${KYSO_LOG:-warn} "$KYSO" serve --data-dir "$dir" --listen "127.0.0.1:$port" \
        --plain-http >"$logf" 2>&1 &
    SERVER_PID=$!
    BENCH_PIDS+=("$SERVER_PID")
}

# Polls $1 every 5 ms until it answers 200 (at most 30 s); prints the ms since SERVER_T0.
wait_http() {
    local url=$1 i
    for ((i = 0; i < 6000; i++)); do
        if curl -fs -o /dev/null --max-time 1 "$url" 2>/dev/null; then
            echo $((($(date +%s%N) - SERVER_T0) / 1000000))
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || die "server exited; see its log"
        sleep 0.005
    done
    die "$url did not answer within 30 s"
}

# Stops one server started here (SIGTERM, then wait).
stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Makes one P-256 key and CSR with openssl: $1/me.key, $1/me.csr.
make_csr() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/me.key" \
        -subj "/CN=kyso bench" -out "$1/me.csr" 2>/dev/null
}

# Writes the kyso issuance body for CSR $1 to $2.
kyso_body() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
csr = open(sys.argv[1]).read()
body = {"profile": "personal",
        "subject": {"common_name": "Nguyễn Văn A", "citizen_id": "001099012345"},
        "csr": csr}
open(sys.argv[2], "w", encoding="utf-8").write(json.dumps(body, ensure_ascii=False))
EOF
}

# Reads field $2 (e.g. ok_per_s) from a wrk output file $1 written with bench/issue.lua.
bench_field() {
    sed -n "s/.*BENCH .*\b$2=\([^ ]*\).*/\1/p" "$1" | tail -1
}

# Median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

machine_note() {
    echo "date:    $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit:  $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "kyso:    ${KYSO:-(not used)}"
    echo "cpu:     $(nproc) x $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
    echo "memory:  $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel:  $(uname -r)"
    echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min, before the run)"
    echo "fs:      $(df -T /tmp | awk 'NR == 2 {print $2 " on " $1}') (/tmp)"
}
