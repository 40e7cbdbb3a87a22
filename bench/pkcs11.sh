#!/usr/bin/env bash
# ECDSA P-256 signing through SoftHSM2 with kyso's session pool (issue: hardware keys), for 1,
# 2 and 16 concurrent callers, next to the software key under the same load
# (benches/pkcs11_sign.rs). A fresh token in the work directory; its key is generated inside.
#
#   bash bench/pkcs11.sh          # SECONDS_EACH [5]
source "$(dirname "$0")/lib.sh"
need softhsm2-util
SECONDS_EACH=${SECONDS_EACH:-5}
mkdir -p "$WORK/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$WORK/tokens" >"$WORK/softhsm2.conf"
export SOFTHSM2_CONF=$WORK/softhsm2.conf
printf '%s\n' 135792 >"$WORK/pin"
softhsm2-util --init-token --free --label kyso-bench --so-pin 0000 --pin "$(cat "$WORK/pin")" >/dev/null
machine_note >&2
echo "softhsm2: $(softhsm2-util --version)"
cargo bench --quiet --bench pkcs11_sign -- --token kyso-bench --pin-file "$WORK/pin" --seconds "$SECONDS_EACH"
