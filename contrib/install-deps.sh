#!/bin/sh
# install-deps.sh - install the Debian 12 packages smtpguard needs.
#
#   contrib/install-deps.sh          build and run the daemon
#   contrib/install-deps.sh --test   also what the test suite needs: a
#                                    Postfix to attach to, rsyslog, python3
#
# Needs root (uses sudo when run by another user). Postfix is installed
# without configuring the system instance ("No configuration"); the tests
# run private instances of their own. Also creates the system user
# smtpguard and its state directory /var/lib/smtpguard: started as root,
# the daemon runs as that user (-u smtpguard), never as root.
set -eu

build="cmake make gcc pkg-config libmilter-dev libsqlite3-dev sqlite3 libldns-dev
       libspf2-dev zlib1g-dev"
test="check postfix rsyslog python3 procps bsdutils passwd sasl2-bin libsasl2-modules
      nsd python3-spf python3-yaml groff-base clang libclang-rt-14-dev valgrind"

pkgs="$build check"
[ "${1:-}" = "--test" ] && pkgs="$build $test"

run() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    echo "postfix postfix/main_mailer_type select No configuration" |
        run debconf-set-selections
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $missing
fi
getent passwd smtpguard >/dev/null ||
    run useradd --system --user-group --home-dir /var/lib/smtpguard \
        --no-create-home --shell /usr/sbin/nologin smtpguard
run install -d -o smtpguard -g smtpguard -m 0750 /var/lib/smtpguard
