#!/bin/sh
# default-db.sh - the daemon and smtpguardctl use one default database: a
# build with another -DSG_DEFAULT_DB (in a directory of its own) must give
# both programs that path, in their help and in what they open.
#
#   tests/default-db.sh SOURCE_DIR
set -eu
src=$1
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg-defaultdb.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
db="$tmp/elsewhere/guard.db"
fail() {
    echo "default-db: $*" >&2
    exit 1
}
cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
    -DSG_BUILD_TESTS=OFF "-DSG_DEFAULT_DB=$db" >/dev/null
cmake --build "$tmp/build" -j "$(nproc 2>/dev/null || echo 2)" \
    --target smtpguard smtpguardctl >/dev/null
guard=$tmp/build/milter/smtpguard
ctl=$tmp/build/lib/ctl/smtpguardctl
"$guard" -h 2>&1 | tr -s ' \n' ' ' | grep -qF "(default $db)" ||
    fail "smtpguard -h does not name $db"
"$ctl" -h 2>&1 | grep -qF "default $db" ||
    fail "smtpguardctl -h does not name $db"
# What each opens without -d: the same file.
mkdir -p "$tmp/elsewhere"
user=
if [ "$(id -u)" = 0 ]; then     # as the integration tests run it
    id smtpguard >/dev/null 2>&1 || fail "no user smtpguard (contrib/install-deps.sh --test)"
    user="-u smtpguard"
    chmod 755 "$tmp"
    chown smtpguard "$tmp/elsewhere"
fi
out=$("$ctl" policy get maxSMTPSessions 2>&1) && fail "smtpguardctl found a database"
echo "$out" | grep -qF "no database at $db" ||
    fail "smtpguardctl without -d: $out"
"$guard" -n >/dev/null 2>&1 || true     # -n on a missing file: writes nothing
[ ! -e "$db" ] || fail "smtpguard -n created $db"
# shellcheck disable=SC2086
"$guard" -f -p "unix:$tmp/s.sock" --dns-servers 127.0.0.1:9 $user \
    >"$tmp/guard.log" 2>&1 &
pid=$!
i=0
while [ ! -S "$tmp/s.sock" ] && [ $i -lt 100 ]; do
    kill -0 $pid 2>/dev/null || fail "smtpguard did not start: $(cat "$tmp/guard.log")"
    sleep 0.1
    i=$((i + 1))
done
kill $pid
wait $pid || true
[ -s "$db" ] || fail "smtpguard did not create $db"
out=$("$ctl" policy get maxSMTPSessions 2>&1) ||
    fail "smtpguardctl without -d cannot read the daemon's $db: $out"
echo "default-db: smtpguard and smtpguardctl both use $db"
