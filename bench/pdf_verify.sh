#!/usr/bin/env bash
# PDF verification (issue: verification): a 1 MB (and a 10 MB) one-page PDF signed twice by
# kyso (PAdES B-B, a P-256 citizen credential of kyso's own CA, two incremental updates),
# verified in process by `Service::verify_pdf` (benches/pdf_verify.rs: every signature's byte
# range digest, CMS, cached path, kyso's own status, ledger inclusion proof and the change
# classification), one call after another. References in the same run: two SHA-256 passes over
# the file in the same process, and pyHanko validating every signature of the same bytes in
# process, trusting kyso's root, without revocation checking (bench/pdf_verify_pyhanko.py).
#
# Targets: 1 MB: kyso <= 2 ms per verification and pyHanko/kyso >= 15.
#
#   bash bench/pdf_verify.sh
#
# Environment (defaults): SIZES_MB ["1 10"], ROUNDS [200], PY_ROUNDS [30],
# KYSO_CI_VENV [~/.cache/kyso-ci-venv].
source "$(dirname "$0")/lib.sh"
need curl python3
SIZES_MB=${SIZES_MB:-"1 10"}
ROUNDS=${ROUNDS:-200}
PY_ROUNDS=${PY_ROUNDS:-30}
VENV=${KYSO_CI_VENV:-$HOME/.cache/kyso-ci-venv}
PY=$VENV/bin/python
"$PY" -c 'import pyhanko.sign.validation' 2>/dev/null || die "pyhanko is not installed in $VENV"
build_kyso
log "cargo bench --no-run --bench pdf_verify"
cargo bench --quiet --bench pdf_verify --no-run 2>/dev/null
machine_note >&2
echo "pyhanko: $("$PY" -m pip show pyhanko 2>/dev/null | sed -n 's/^Version: //p')" >&2

kyso_serve_fresh
bench_citizen_credential 001099099993
sign_pdf() {
    curl -fs -o "$2" -H 'Expect:' "$BASE/api/v1/signatures?credential_id=$CRED&reason=bench" \
        -H "Authorization: Bearer $TOKEN" -H "X-Kyso-Pin: 123456" \
        -H 'Content-Type: application/pdf' --data-binary @"$1" || die "signing $1 failed"
}
for mb in $SIZES_MB; do
    python3 "$BENCH_DIR/make_pdf.py" "$mb" "$WORK/doc-$mb.pdf"
    sign_pdf "$WORK/doc-$mb.pdf" "$WORK/once-$mb.pdf"
    sign_pdf "$WORK/once-$mb.pdf" "$WORK/twice-$mb.pdf"
done
stop_server "$SERVER_PID"
for mb in $SIZES_MB; do
    kyso_line=$(cargo bench --quiet --bench pdf_verify -- --dir "$DATA" --pdf "$WORK/twice-$mb.pdf" \
        --rounds "$ROUNDS" | grep '^KYSO')
    py_line=$("$PY" "$BENCH_DIR/pdf_verify_pyhanko.py" "$DATA/certs/root.pem" "$PY_ROUNDS" \
        "$WORK/twice-$mb.pdf" | grep '^PYHANKO')
    k=$(sed -n 's/.*KYSO median_ms=\([0-9.]*\).*/\1/p' <<<"$kyso_line")
    p=$(sed -n 's/.*PYHANKO median_ms=\([0-9.]*\).*/\1/p' <<<"$py_line")
    echo "$mb MB, two signatures: $kyso_line"
    echo "$mb MB, two signatures: $py_line"
    echo "$mb MB: pyHanko/kyso = $(python3 -c "print(f'{$p / $k:.1f}')")"
done
