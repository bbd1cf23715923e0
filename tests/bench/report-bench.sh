#!/usr/bin/env bash
# report-bench.sh - how fast `smtpguardctl report` reads mail.log, next to
# wc -l and grep on the same file
#
# usage: tests/bench/report-bench.sh BUILD_DIR [--size-mb N]   (default 1024)
#
# Generates, in a temporary directory, a synthetic mail.log of N MB in
# rsyslog's RSYSLOG_FileFormat: about 70% lines of other programs (Postfix
# smtpd connect/disconnect/client, cleanup, qmgr, smtp, anvil; dovecot) and
# 30% smtpguard lines of every event of lib/events.def, in the exact layout
# lib/log.c writes (id, event, severity, action, client, service, session,
# the event's parameters, msg), from many client addresses (IPv4 and IPv6),
# senders and domains, plus a few truncated and garbage lines; and a .gz
# copy of its first tenth, as logrotate leaves older files. Then, in the same
# run and from the page cache (one read of each file first), it times
#   wc -l FILE, grep -c smtpguard FILE          the reference
#   smtpguardctl report FILE >/dev/null
#   smtpguardctl report --json FILE >/dev/null
#   smtpguardctl report FILE.gz >/dev/null      (MB/s of the uncompressed data)
# and prints seconds, MB/s and the time relative to grep for each, with the
# line counts of the report next to wc's.
#
# Environment: TMPDIR (where the files go: N MB and a tenth more, gzipped),
# SG_BENCH_KEEP=1 (keep them).
#
# A benchmark, not a test: exit status 0 unless something failed to run.
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [--size-mb N]" >&2
    exit 2
}

[ $# -ge 1 ] || usage
build=$(cd "$1" && pwd)
shift
size_mb=1024
while [ $# -gt 0 ]; do
    case "$1" in
    --size-mb)
        [ $# -ge 2 ] || usage
        size_mb=$2
        shift 2
        ;;
    *) usage ;;
    esac
done
case "$size_mb" in
'' | *[!0-9]*) echo "$0: --size-mb '$size_mb' is not a whole number" >&2
    exit 2 ;;
esac
[ "$size_mb" -ge 1 ] || { echo "$0: --size-mb must be at least 1" >&2; exit 2; }

src=$(cd "$(dirname "$0")/../.." && pwd)
ctl=$build/lib/ctl/smtpguardctl
[ -x "$ctl" ] || { echo "$0: no $ctl (build it first)" >&2; exit 1; }
for tool in python3 gzip wc grep; do
    command -v "$tool" >/dev/null || { echo "$0: needs $tool" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/sg-report-bench.XXXXXX")
if [ "${SG_BENCH_KEEP:-0}" = 1 ]; then
    trap 'echo "kept $dir"' EXIT
else
    trap 'rm -rf "$dir"' EXIT
fi
log=$dir/mail.log

# ---- the log ----
t0=$(date +%s.%N)
python3 - "$src/lib/events.def" "$log" "$size_mb" <<'EOF'
import random
import re
import sys
import time

events_def, path, size_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(5)

# The catalogue: SG_EVENT(symbol, id, name, facility, severity, action,
# parameters, context parameters, log message, ...).
text = open(events_def).read()
events = []
for m in re.finditer(r'SG_EVENT\(\s*(\w+),\s*"(\d{8})",\s*"(\w+)",\s*(\w+),'
                     r'\s*SG_SEV_(\w+),\s*SG_ACT_(\w+),\s*"([^"]*)",\s*'
                     r'"([^"]*)",\s*((?:"(?:[^"\\]|\\.)*"\s*)+),', text):
    msg = ''.join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(9)))
    sev = {'EMERG': 'emergency', 'ERR': 'error'}.get(m.group(5),
                                                     m.group(5).lower())
    events.append((m.group(2), m.group(3), sev, m.group(6).lower(),
                   m.group(7).split(), m.group(8).split(),
                   msg.replace('\\"', '"')))
if len(events) < 20:
    sys.exit(f'{events_def}: only {len(events)} events found')

# Many clients, senders and domains.
words = ('mail mx smtp relay out web shop news info alpha beta gamma delta '
         'north south east west blue green red orange cloud data').split()
tlds = ('com net org de fr example test io co.uk nl it es')
domains = [f'{rnd.choice(words)}{i}.{rnd.choice(tlds.split())}'
           for i in range(3000)]
clients = [f'{rnd.randrange(1, 224)}.{rnd.randrange(256)}.'
           f'{rnd.randrange(256)}.{rnd.randrange(1, 255)}'
           for _ in range(40000)]
clients += [f'2001:db8:{rnd.randrange(65536):x}:{rnd.randrange(65536):x}::'
            f'{rnd.randrange(1, 65536):x}' for _ in range(5000)]
hosts = [f'{rnd.choice(words)}-{i}.{rnd.choice(domains)}' for i in
         range(20000)] + ['unknown'] * 5000
senders = [f'{rnd.choice(words)}.{rnd.choice(words)}{rnd.randrange(1000)}'
           f'@{rnd.choice(domains)}' for _ in range(20000)]
zones = ['zen.spamhaus.org', 'bl.spamcop.net', 'b.barracudacentral.org',
         'list.dnswl.org', 'dnsbl.example.net', 'psbl.surriel.com']
services = ['smtp', 'smtp', 'smtp', 'submission', 'smtps']


def qid():
    return '%010X' % rnd.getrandbits(40)


def safe(v):
    return re.fullmatch(r'[A-Za-z0-9._:@/+\-\[\]<>,*]+', v) is not None


def esc(v):
    return v.replace('\\', '\\\\').replace('"', '\\"')


def kv(k, v):
    return f' {k}={v}' if safe(v) else f' {k}="{esc(v)}"'


def value(name, client, sender):
    if name in ('sender', 'sender_email_address', 'address'):
        return sender
    if name in ('recipient', 'rcpt'):
        return rnd.choice(senders)
    if name in ('domain', 'sender_domain', 'helo_domain'):
        return sender.split('@')[1]
    if name in ('zone',):
        return rnd.choice(zones)
    if name in ('network', 'entry', 'subnet'):
        return client.rsplit('.', 1)[0] + '.0/24' if '.' in client else \
            client.rsplit(':', 2)[0] + '::/64'
    if name in ('key',):
        return rnd.choice((sender, client))
    if name in ('key_type', 'scope'):
        return rnd.choice(('sender', 'auth', 'ip', 'global', 'service'))
    if name in ('reason', 'error', 'text', 'result_text', 'txt'):
        return rnd.choice(('listed at ' + rnd.choice(zones),
                           'timed out', 'SERVFAIL', 'no such domain',
                           'https://www.spamhaus.org/query/ip/' + client,
                           'mechanism "ip4" did not match'))
    if name in ('identity', 'helo', 'hostname', 'name', 'ptr'):
        return rnd.choice(hosts)
    if name in ('answer', 'answers'):
        return '127.0.0.%d' % rnd.randrange(2, 12)
    return str(rnd.randrange(1, 5000))


def smtpguard_line():
    ev = rnd.choice(weighted)
    eid, name, sev, act, params, ctx, msg = ev
    client = rnd.choice(clients)
    sender = rnd.choice(senders)
    out = [f'smtpguard[{rnd.randrange(900, 1000)}]: ',
           'NOQUEUE' if rnd.random() < 0.6 else qid(), ':',
           f' id={eid} event={name} severity={sev} action={act}']
    vals = {p: value(p, client, sender) for p in params}
    if 'client' not in ctx or rnd.random() < 0.95:
        out.append(kv('client', client))
    if 'service' in ctx:
        out.append(' service=' + rnd.choice(services))
    if 'session' in ctx:
        out.append(' session=%x' % rnd.getrandbits(24))
    for p in params:
        out.append(kv(p, vals[p]))
    # As render_message(): the values escaped, the template as it is.
    out.append(' msg="' + re.sub(r'<([a-z0-9_]+)>',
                                 lambda m: esc(vals.get(m.group(1), '-')),
                                 msg) + '"')
    return ''.join(out)


def other_line():
    c = rnd.choice(clients)
    h = rnd.choice(hosts)
    pid = rnd.randrange(1000, 30000)
    q = qid()
    r = rnd.random()
    if r < 0.25:
        return f'postfix/smtpd[{pid}]: connect from {h}[{c}]'
    if r < 0.5:
        return (f'postfix/smtpd[{pid}]: disconnect from {h}[{c}] ehlo=1 '
                f'mail=1 rcpt=1 data=1 quit=1 commands=5')
    if r < 0.6:
        return f'postfix/smtpd[{pid}]: {q}: client={h}[{c}]'
    if r < 0.7:
        return (f'postfix/cleanup[{pid}]: {q}: message-id=<'
                f'{rnd.getrandbits(64):x}@{rnd.choice(domains)}>')
    if r < 0.8:
        return (f'postfix/qmgr[{pid}]: {q}: from=<{rnd.choice(senders)}>, '
                f'size={rnd.randrange(800, 90000)}, nrcpt=1 (queue active)')
    if r < 0.88:
        return (f'postfix/smtp[{pid}]: {q}: to=<{rnd.choice(senders)}>, '
                f'relay={h}[{c}]:25, delay=0.{rnd.randrange(10, 99)}, '
                f'delays=0.1/0/0.2/0.1, dsn=2.0.0, status=sent (250 2.0.0 '
                f'Ok: queued as {qid()})')
    if r < 0.92:
        return f'postfix/qmgr[{pid}]: {q}: removed'
    if r < 0.95:
        return (f'postfix/anvil[{pid}]: statistics: max connection rate '
                f'{rnd.randrange(1, 40)}/60s for (smtp:{c}) at '
                f'Nov 22 10:{rnd.randrange(60):02d}:00')
    return (f'dovecot: imap-login: Login: user=<{rnd.choice(senders)}>, '
            f'method=PLAIN, rip={c}, lip=192.0.2.1, mpid={pid}, TLS')


# Refusals are the common smtpguard lines on a busy MX.
weighted = [e for e in events for _ in
            range(4 if e[3] in ('reject', 'tempfail', 'close') else 1)]
# A pool of line bodies, drawn from at random: many distinct ones, cheap
# to write out.
bodies = [smtpguard_line() if rnd.random() < 0.3 else other_line()
          for _ in range(300000)]
for i in rnd.sample(range(len(bodies)), 300):     # truncated lines
    bodies[i] = bodies[i][:rnd.randrange(10, len(bodies[i]))]
for i in rnd.sample(range(len(bodies)), 100):     # garbage
    bodies[i] = bytes(rnd.getrandbits(8) for _ in range(40)).decode(
        'latin-1').replace('\n', ' ')

target = size_mb << 20
t = int(time.mktime((2026, 11, 22, 0, 0, 0, 0, 0, -1)))
written = 0
with open(path, 'w', encoding='latin-1', newline='\n') as f:
    while written < target:
        # A chunk of 8192 lines, 32 time stamps (a busy server).
        stamps = [time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t + i))
                  + '.%06d+00:00 mx ' % rnd.randrange(1000000)
                  for i in range(32)]
        t += 32
        chunk = ''.join([stamps[i >> 8] + b + '\n' for i, b in
                         enumerate(rnd.choices(bodies, k=8192))])
        if written + len(chunk) > target:       # end on a whole line
            chunk = chunk[:chunk.rfind('\n', 0, target - written) + 1]
            if not chunk:
                break
        f.write(chunk)
        written += len(chunk)
EOF
bytes=$(stat -c %s "$log")
# The first tenth, to whole lines, gzipped as logrotate does.
head -c $((bytes / 10 + 1)) "$log" | sed '$d' > "$dir/slice.log"
gz_bytes=$(stat -c %s "$dir/slice.log")
gzip -6 < "$dir/slice.log" > "$log.1.gz"
rm -f "$dir/slice.log"
t1=$(date +%s.%N)
python3 -c "print('generated %s (%.1f MB) and %s (%.1f MB uncompressed) in \
%.1f s' % ('$log', $bytes / 1048576, '$log.1.gz', $gz_bytes / 1048576, \
           $t1 - $t0))"

# ---- the runs ----
cat "$log" "$log.1.gz" > /dev/null      # into the page cache

failed=0
declare -A secs sizes

# timeit NAME BYTES CMD... - run CMD with stdout to a file; record seconds
timeit() {
    local name=$1 size=$2 start end
    shift 2
    start=$(date +%s%N)
    if ! "$@" > "$dir/out.$name" 2> "$dir/err.$name"; then
        echo "$name: failed: $*" >&2
        sed 's/^/    /' "$dir/err.$name" >&2
        failed=1
    fi
    end=$(date +%s%N)
    secs[$name]=$(python3 -c "print(($end - $start) / 1e9)")
    sizes[$name]=$size
}

timeit wc "$bytes" wc -l "$log"
timeit grep "$bytes" grep -c smtpguard "$log"
timeit report "$bytes" "$ctl" report "$log"
timeit report-json "$bytes" "$ctl" report --json "$log"
timeit report-gz "$gz_bytes" "$ctl" report "$log.1.gz"

printf '\n%-14s %9s %9s %9s\n' "run" "seconds" "MB/s" "x grep"
for name in wc grep report report-json report-gz; do
    python3 -c "
s, b, g = ${secs[$name]}, ${sizes[$name]}, ${secs[grep]}
print('%-14s %9.2f %9.0f %9.2f' % ('$name', s, b / 1048576 / max(s, 1e-9),
                                  s / max(g, 1e-9)))"
done

# What was read: the report's line counts next to wc's and grep's.
if [ -s "$dir/out.report-json" ]; then
    python3 - "$dir/out.report-json" "$dir/out.wc" "$dir/out.grep" <<'EOF'
import json
import sys
r = json.load(open(sys.argv[1]))
wc = int(open(sys.argv[2]).read().split()[0])
grep = int(open(sys.argv[3]).read().split()[0])
print(f"\nreport: {r['lines']} lines (wc -l {wc}), {r['smtpguard_lines']} "
      f"from smtpguard (grep -c {grep}), {r['malformed']} malformed, "
      f"{r['refusals']} refusals, {len(r['events'])} event IDs")
EOF
fi
if [ "$failed" != 0 ]; then
    exit 1
fi
