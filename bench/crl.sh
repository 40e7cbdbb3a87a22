#!/usr/bin/env bash
# CRLs at scale, two parts (both by default):
#  a) `kyso crl publish --ca public` on one shard listing N revoked certificates (fake rows put
#     straight into kyso.db, one transaction): wall-clock seconds per publish (the whole command:
#     start, read, sign, ledger entry, store), CRL bytes; the CRL is then fetched from
#     `kyso serve` and checked with `openssl crl -verify`. Reference in the same run:
#     `openssl ca -gencrl` over an index.txt of SSL_N revoked entries.
#  b) issuance throughput (wrk with bench/issue.lua, the same CSR body and admin token as
#     bench/issuance.sh) on a fresh data directory and on one holding B_ROWS revoked rows, with
#     the default configuration; rounds alternate between the two. Target: at most a 10 % drop.
#
#   KYSO_BIN=target/release/kyso bash bench/crl.sh
#   KYSO_BIN=target/release/kyso N=100000 DURATION=3s bash bench/crl.sh      # a quick pass
#
# Environment (defaults in brackets): PARTS ["a b"], N [1000000], ROUNDS [3] (publishes timed),
# SSL_N [N] (openssl's entries; if it does not finish within SSL_TIMEOUT [300] s and SSL_N is
# above 100000, it is measured again at 100000), B_ROWS [N] (revoked rows for part b),
# DURATION [20s], THREADS [2], CONNECTIONS [16], B_ROUNDS [3] (part b), KEEP [0].
source "$(dirname "$0")/lib.sh"
need wrk curl openssl python3
PARTS=${PARTS:-a b}
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
SSL_N=${SSL_N:-$N}
SSL_TIMEOUT=${SSL_TIMEOUT:-300}
B_ROWS=${B_ROWS:-$N}
DURATION=${DURATION:-20s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-16}
B_ROUNDS=${B_ROUNDS:-3}
TARGET_DROP=10
# CRL shards of the public CA under the default configuration (crl_max_bytes 1,000,000, 10 million
# planned revocations); src/config.rs's unit test asserts the same number. Part b spreads its fake
# rows over them as kyso would (crate::pki::crl::shard_of: last four serial bytes mod count).
DEFAULT_PUBLIC_SHARDS=893

build_kyso
machine_note >&2

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b - a) / 1e9}'; }

# One query on SQLite database $1; prints the first row, fields separated by spaces.
sql() {
    python3 -c 'import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()
print(*(row or ()))' "$1" "$2"
}

# Inserts $2 fake revoked certificates of the public CA into kyso database $1 in one
# transaction, spread over $3 CRL shards. Serials: 16 random bytes, leading zero bytes
# stripped, lowercase hex (kyso's form); inserted in serial order.
populate() {
    python3 - "$1" "$2" "$3" <<'EOF'
import os, sqlite3, sys, time
db, n, shards = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
serials = set()
while len(serials) < n:
    serials.add(os.urandom(16).lstrip(b"\0").hex())
now = int(time.time())
reasons = ["keyCompromise", "unspecified", "superseded", "affiliationChanged",
           "cessationOfOperation", "keyCompromise", "unspecified", "superseded"]
dummy = bytes.fromhex("3003020101")  # not a certificate; nothing reads it on these paths
def rows():
    for i, s in enumerate(sorted(serials)):
        yield (s, "public", "citizen", "x", None, None, None, None, None, "revoked",
               reasons[i % len(reasons)], now, now - 86400, now + 365 * 86400, now - 86400,
               dummy, int(s[-8:], 16) % shards, None)
con = sqlite3.connect(db)
con.execute("PRAGMA cache_size = -262144")
with con:
    con.executemany(
        "INSERT INTO certificates (serial, ca, profile, common_name, citizen_id, tax_code, "
        "owner_account, request_id, credential_id, status, revocation_reason, revoked_at, "
        "not_before, not_after, issued_at, der, crl_shard, invalidity_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.close()
EOF
}

# Peak RSS (MiB) of the last command timed with timed_publish, when /usr/bin/time exists.
PEAK_MIB=""
# Runs `kyso crl publish` with the arguments given; prints the wall-clock seconds.
timed_publish() {
    local t0 t1
    t0=$(now_ns)
    if [[ -x /usr/bin/time ]]; then
        /usr/bin/time -f '%M' -o "$WORK/time.txt" "$KYSO" crl publish "$@" >"$WORK/publish.txt" \
            2>"$WORK/publish.err" || die "kyso crl publish $* failed: $(tail -3 "$WORK/publish.err")"
    else
        "$KYSO" crl publish "$@" >"$WORK/publish.txt" 2>"$WORK/publish.err" ||
            die "kyso crl publish $* failed: $(tail -3 "$WORK/publish.err")"
    fi
    t1=$(now_ns)
    secs "$t0" "$t1"
}
peak_mib() { [[ -s "$WORK/time.txt" ]] && awk '{printf "%.0f", $1 / 1024}' "$WORK/time.txt" || echo "?"; }

# ------------------------------------------------------------------------- part a
part_a() {
    local dir=$WORK/crl/data db t0 t1 s times=() peaks=() base
    mkdir -p "$WORK/crl"
    log "a: kyso init, one CRL shard per CA, $N revoked rows"
    kyso_init "$dir" >/dev/null
    cat >>"$dir/kyso.toml" <<'EOF'

[crl_planned_revocations]
public = 1
government = 1
EOF
    db=$dir/kyso.db
    t0=$(now_ns)
    populate "$db" "$N" 1
    t1=$(now_ns)
    echo "a: inserted $N revoked rows in $(secs "$t0" "$t1") s (one transaction)"
    echo "a: revoked rows in public shard 0: $(sql "$db" "SELECT COUNT(*) FROM certificates WHERE ca = 'public' AND crl_shard = 0 AND status = 'revoked'")"

    # What the command costs with nothing to list: the government CA's shard is empty.
    base=$(timed_publish --ca government --data-dir "$dir")
    echo "a: kyso crl publish --ca government (0 entries, fixed cost): $base s"
    for ((r = 1; r <= ROUNDS; r++)); do
        log "a: round $r/$ROUNDS: kyso crl publish --ca public ($N entries)"
        s=$(timed_publish --ca public --data-dir "$dir")
        times+=("$s")
        peaks+=("$(peak_mib)")
        echo "a: round $r: $s s ($(cat "$WORK/publish.txt"); peak RSS $(peak_mib) MiB)"
    done
    read -r ENTRIES BYTES < <(sql "$db" "SELECT entries, length(der) FROM crls WHERE ca = 'public' AND shard = 0 ORDER BY number DESC LIMIT 1")
    [[ "$ENTRIES" == "$N" ]] || die "the stored CRL lists $ENTRIES entries, not $N"
    KYSO_CRL_MEDIAN=$(median "${times[@]}")

    log "a: fetch /pki/crl/public.crl from kyso serve and check it with openssl"
    local port
    port=$(free_port)
    kyso_start "$dir" "$port" "$WORK/crl/serve.log"
    wait_http "http://127.0.0.1:$port/healthz" >/dev/null
    curl -fs -o "$WORK/crl/public.crl" "http://127.0.0.1:$port/pki/crl/public.crl" ||
        die "GET /pki/crl/public.crl failed"
    stop_server "$SERVER_PID"
    local got out count
    got=$(stat -c %s "$WORK/crl/public.crl")
    [[ "$got" == "$BYTES" ]] || die "served CRL has $got bytes, the stored one $BYTES"
    out=$(openssl crl -inform DER -in "$WORK/crl/public.crl" -noout -verify \
        -CAfile "$dir/certs/chain.pem" 2>&1) || die "openssl crl -verify failed: $out"
    grep -q "verify OK" <<<"$out" || die "openssl crl -verify: $out"
    count=$(openssl crl -inform DER -in "$WORK/crl/public.crl" -noout -text | grep -c 'Serial Number:')
    [[ "$count" == "$N" ]] || die "openssl counts $count entries in the CRL, not $N"
    KYSO_CRL_CHECK="openssl crl -verify: verify OK; openssl counts $count entries"
    # The key the CA signs with, to give the reference the same one.
    CA_TEXT=$(openssl x509 -in "$dir/certs/public.pem" -noout -text)
    echo "a: kyso public CA key: $(grep -m1 -E 'Public-Key' <<<"$CA_TEXT" | sed 's/^ *//') $(grep -m1 -E 'ASN1 OID' <<<"$CA_TEXT" | sed 's/^ *//')"

    # Reference: openssl ca -gencrl over an index.txt of SSL_N revoked entries.
    ssl_gencrl "$SSL_N"
    if [[ "$SSL_RESULT" == timeout ]] && ((SSL_N > 100000)); then
        log "a: openssl ca -gencrl over $SSL_N entries took over $SSL_TIMEOUT s; trying 100000"
        ssl_gencrl 100000
    fi

    cat <<EOF

==== a: CRL generation, one shard, $N revoked entries, $ROUNDS publishes
kyso crl publish --ca public, wall clock per round (s): ${times[*]}   peak RSS (MiB): ${peaks[*]}
kyso median: $KYSO_CRL_MEDIAN s for $N entries (the same command on an empty shard takes $base s)
kyso CRL: $BYTES bytes DER ($(awk -v b="$BYTES" -v n="$N" 'BEGIN {printf "%.1f", b / n}') bytes/entry); served byte for byte by GET /pki/crl/public.crl; $KYSO_CRL_CHECK
openssl ca -gencrl: $SSL_SUMMARY
EOF
}

# openssl ca -gencrl over $1 revoked entries (P-256 CA like kyso's unless kyso's CA uses another
# curve); sets SSL_RESULT (ok|timeout) and SSL_SUMMARY.
ssl_gencrl() {
    local n=$1 d=$WORK/ref-$1 curve times=() t0 t1 r rc
    curve=$(sed -n 's/^ *ASN1 OID: //p' <<<"$CA_TEXT" | head -1)
    curve=${curve:-prime256v1}
    mkdir -p "$d"
    log "a: openssl CA ($curve), index.txt with $n revoked entries"
    openssl req -x509 -new -newkey ec -pkeyopt "ec_paramgen_curve:$curve" -nodes -keyout "$d/ca.key" \
        -subj "/CN=kyso bench reference CA" -days 30 -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign -out "$d/ca.pem" 2>/dev/null
    python3 - "$d/index.txt" "$n" <<'EOF'
import os, sys, time
path, n = sys.argv[1], int(sys.argv[2])
fmt = lambda t: time.strftime("%y%m%d%H%M%SZ", time.gmtime(t))
now = int(time.time())
exp, rev = fmt(now + 365 * 86400), fmt(now)
reasons = ["keyCompromise", "unspecified", "superseded", "affiliationChanged",
           "cessationOfOperation", "keyCompromise", "unspecified", "superseded"]
serials = set()
while len(serials) < n:
    serials.add(os.urandom(16).lstrip(b"\0").hex().upper())
with open(path, "w") as f:
    for i, s in enumerate(sorted(serials)):
        f.write(f"R\t{exp}\t{rev},{reasons[i % len(reasons)]}\t{s}\tunknown\t/CN=x\n")
EOF
    echo "unique_subject = no" >"$d/index.txt.attr"
    echo 1000 >"$d/crlnumber"
    cat >"$d/ca.cnf" <<EOF
[ca]
default_ca = bench
[bench]
dir = $d
database = \$dir/index.txt
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_crl_days = 1
EOF
    SSL_RESULT=ok
    for ((r = 1; r <= ROUNDS; r++)); do
        log "a: round $r/$ROUNDS: openssl ca -gencrl ($n entries)"
        t0=$(now_ns)
        rc=0
        timeout "$SSL_TIMEOUT" openssl ca -config "$d/ca.cnf" -gencrl -out "$d/ref.crl" \
            >"$d/gencrl.log" 2>&1 || rc=$?
        t1=$(now_ns)
        if ((rc == 124)); then
            SSL_RESULT=timeout
            SSL_SUMMARY="over $n entries: did not finish within $SSL_TIMEOUT s"
            return
        fi
        ((rc == 0)) || die "openssl ca -gencrl failed: $(tail -3 "$d/gencrl.log")"
        times+=("$(secs "$t0" "$t1")")
        echo "a: openssl round $r: ${times[-1]} s"
    done
    openssl crl -in "$d/ref.crl" -outform DER -out "$d/ref.der"
    local out count bytes
    out=$(openssl crl -inform DER -in "$d/ref.der" -noout -verify -CAfile "$d/ca.pem" 2>&1) || true
    count=$(openssl crl -inform DER -in "$d/ref.der" -noout -text | grep -c 'Serial Number:')
    bytes=$(stat -c %s "$d/ref.der")
    SSL_SUMMARY="$n entries, per round (s): ${times[*]}; median $(median "${times[@]}") s; $bytes bytes DER; $count entries; ${out:-no verify output}"
    if ((n == N)); then
        SSL_SUMMARY+="; kyso/openssl time: $(awk -v k="$KYSO_CRL_MEDIAN" -v o="$(median "${times[@]}")" 'BEGIN {printf "%.2f", k / o}')"
    fi
}

# ------------------------------------------------------------------------- part b
part_b() {
    local fresh=$WORK/b-fresh revoked=$WORK/b-revoked t0 t1 r which
    mkdir -p "$fresh" "$revoked"
    log "b: two data directories (default configuration); $B_ROWS revoked rows in one"
    declare -A TOK PORTS PIDS RATES OK BAD ERR ROWS0
    TOK[fresh]=$(kyso_init "$fresh/data")
    TOK[revoked]=$(kyso_init "$revoked/data")
    [[ -n "${TOK[fresh]}" && -n "${TOK[revoked]}" ]] || die "kyso init printed no KYSO_ADMIN_TOKEN"
    t0=$(now_ns)
    populate "$revoked/data/kyso.db" "$B_ROWS" "$DEFAULT_PUBLIC_SHARDS"
    t1=$(now_ns)
    echo "b: inserted $B_ROWS revoked rows in $(secs "$t0" "$t1") s; database $(du -sh "$revoked/data/kyso.db" | cut -f1)"
    make_csr "$WORK"
    kyso_body "$WORK/me.csr" "$WORK/body.json"
    for which in fresh revoked; do
        local dir=$WORK/b-$which
        PORTS[$which]=$(free_port)
        kyso_start "$dir/data" "${PORTS[$which]}" "$dir/serve.log"
        PIDS[$which]=$SERVER_PID
        wait_http "http://127.0.0.1:${PORTS[$which]}/healthz" >/dev/null
        local status
        status=$(curl -s -o "$dir/one.json" -w '%{http_code}' -H "Authorization: Bearer ${TOK[$which]}" \
            -H 'Content-Type: application/json' --data-binary @"$WORK/body.json" \
            "http://127.0.0.1:${PORTS[$which]}/api/v1/certificates")
        [[ "$status" == 201 ]] || die "kyso ($which) answered $status: $(head -c 400 "$dir/one.json")"
        ROWS0[$which]=$(sql "$dir/data/kyso.db" "SELECT COUNT(*) FROM certificates WHERE status = 'active'")
        RATES[$which]="" OK[$which]=0 BAD[$which]=0 ERR[$which]=0
    done
    for ((r = 1; r <= B_ROUNDS; r++)); do
        # Alternate which goes first, so that drift on the shared machine hits both alike.
        local order="fresh revoked"
        ((r % 2 == 0)) && order="revoked fresh"
        for which in $order; do
            local f=$WORK/b-$which/wrk-$r.txt
            log "b: round $r/$B_ROUNDS: $which, wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
            BENCH_BODY=$WORK/body.json BENCH_TOKEN=${TOK[$which]} BENCH_EXPECT=201 \
                BENCH_PATH=/api/v1/certificates \
                wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$BENCH_DIR/issue.lua" \
                "http://127.0.0.1:${PORTS[$which]}" >"$f"
            grep -q '^BENCH ' "$f" || die "wrk printed no BENCH line; see $f"
            grep '^BENCH' "$f" | sed "s/^/b: $which: /"
            RATES[$which]+="$(bench_field "$f" ok_per_s) "
            OK[$which]=$((OK[$which] + $(bench_field "$f" ok)))
            BAD[$which]=$((BAD[$which] + $(bench_field "$f" bad)))
            ERR[$which]=$((ERR[$which] + $(bench_field "$f" errors)))
        done
    done
    local check=()
    for which in fresh revoked; do
        stop_server "${PIDS[$which]}"
        local rows
        rows=$(($(sql "$WORK/b-$which/data/kyso.db" "SELECT COUNT(*) FROM certificates WHERE status = 'active'") - ROWS0[$which]))
        if ((rows < OK[$which])); then
            check+=("$which: DURABILITY CHECK FAILED: ${OK[$which]} answers of 201, $rows rows")
        else
            check+=("$which: ${OK[$which]} answers of 201, $rows rows written")
        fi
    done
    # shellcheck disable=SC2086
    local mf mr drop
    mf=$(median ${RATES[fresh]})
    mr=$(median ${RATES[revoked]})
    drop=$(awk -v f="$mf" -v r="$mr" 'BEGIN {printf "%.1f", (f > 0) ? (1 - r / f) * 100 : 0}')
    cat <<EOF

==== b: issuance, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $B_ROUNDS rounds each (alternating), same CSR every request
$(printf '%-44s %s' "fresh data directory, certs/s per round:" "${RATES[fresh]}")
$(printf '%-44s %s' "with $B_ROWS revoked rows, certs/s per round:" "${RATES[revoked]}")
medians: fresh $mf certs/s, with revoked rows $mr certs/s; ratio $(awk -v f="$mf" -v r="$mr" 'BEGIN {printf "%.3f", (f > 0) ? r / f : 0}'); drop $drop %   target <= $TARGET_DROP %: $(awk -v d="$drop" -v t="$TARGET_DROP" 'BEGIN {print (d <= t) ? "met" : "MISSED"}')
non-201 answers: fresh ${BAD[fresh]}, with revoked rows ${BAD[revoked]}; socket errors: fresh ${ERR[fresh]}, with revoked rows ${ERR[revoked]}
EOF
    printf 'row check: %s\n' "${check[@]}"
}

for p in $PARTS; do
    case $p in
        a) part_a ;;
        b) part_b ;;
        *) die "unknown part $p (PARTS takes a and/or b)" ;;
    esac
done
