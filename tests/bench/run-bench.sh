#!/usr/bin/env bash
# run-bench.sh - compare smtpguard's milter throughput with a no-op libmilter
# milter under the same load.
#
# usage: tests/bench/run-bench.sh BUILD_DIR [--sessions N]
#                                 [--concurrency "8 64"] [--clients N]
#                                 [--rounds N] [--set NAME=VALUE ...]
#
# Starts BUILD_DIR/tests/bench/noop-milter and BUILD_DIR/milter/smtpguard
# (with a fresh database in a temporary directory, all checks on in block
# mode with limits high enough for the load), then for each concurrency
# level runs sg-loadclient against each (a warm-up run each, then --rounds
# measured rounds, default 5, each round one run against the reference and
# one against the subject, same parameters) and prints the median
# sessions/s and p99 latency side by side, with the median of the rounds'
# ratios and their range. On a shared 2-core machine one run's rate moves
# by 20% or more from run to run; alternating the two milters round by
# round exposes both to the same noise.
#
# Environment:
#   SG_BENCH_SUBJECT  milter to compare instead of BUILD_DIR/milter/smtpguard.
#                     If its file name is noop-milter it is started as one
#                     (-p only) and no database settings are made, which
#                     tests this script before smtpguard exists.
#   SG_BENCH_KEEP=1   keep the temporary directory (logs, database).
#   SG_BENCH_NOOP_FULL=1
#                     let the reference take headers and body too. By default
#                     it negotiates them away as smtpguard does (noop-milter
#                     -s), so both make the same round trips per message.
#
# A benchmark, not a test: exit status 0 unless something failed to run
# (including sessions that ended in protocol or I/O errors).
set -euo pipefail

usage() {
    echo "usage: $0 BUILD_DIR [--sessions N] [--concurrency \"8 64\"]" \
        "[--clients N] [--rounds N] [--set NAME=VALUE ...]" >&2
    exit 2
}

die() {
    echo "run-bench: $*" >&2
    exit 1
}

[[ $# -ge 1 ]] || usage
build_dir=$1
shift
sessions=20000
levels="8 64"
clients=1000
rounds=5
extra_settings=()
while [[ $# -gt 0 ]]; do
    case $1 in
    --sessions) [[ $# -ge 2 ]] || usage; sessions=$2; shift 2 ;;
    --concurrency) [[ $# -ge 2 ]] || usage; levels=$2; shift 2 ;;
    --clients) [[ $# -ge 2 ]] || usage; clients=$2; shift 2 ;;
    --rounds) [[ $# -ge 2 ]] || usage; rounds=$2; shift 2 ;;
    --set) [[ $# -ge 2 && $2 =~ ^[A-Za-z0-9]+=[^\']*$ ]] || usage
        extra_settings+=("$2"); shift 2 ;;
    -h | --help) usage ;;
    *) echo "run-bench: unknown option $1" >&2; usage ;;
    esac
done
[[ $sessions =~ ^[1-9][0-9]*$ ]] || die "--sessions: not a positive number"
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "--clients: not a positive number"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds: not a positive number"
for c in $levels; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || die "--concurrency: \"$c\" is not a number"
done

[[ -d $build_dir ]] || die "no build directory $build_dir"
build_dir=$(cd "$build_dir" && pwd)
loadclient=$build_dir/tests/bench/sg-loadclient
noop=$build_dir/tests/bench/noop-milter
subject=${SG_BENCH_SUBJECT:-$build_dir/milter/smtpguard}
for bin in "$loadclient" "$noop" "$subject"; do
    [[ -x $bin ]] || die "$bin not found or not executable (build first)"
done
subject_name=$(basename "$subject")
if [[ $subject_name == noop-milter ]]; then
    subject_is_smtpguard=0
else
    subject_is_smtpguard=1
    command -v sqlite3 >/dev/null || die "sqlite3 command not found"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $own_devlog == 1 ]]; then
        rm -f /dev/log
    fi
    if [[ ${SG_BENCH_KEEP:-0} == 1 ]]; then
        echo "run-bench: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1 (python3 if present, else probe a range).
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
pick_port() {
    local p i
    if command -v python3 >/dev/null 2>&1; then
        p=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null) || p=
        if [[ -n $p ]] && ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    fi
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 30000))
        if ! port_in_use "$p"; then
            echo "$p"
            return 0
        fi
    done
    die "no free TCP port found"
}

# Wait (at most ~10 s) until the daemon with pid $1 accepts on port $2.
wait_listening() {
    local pid=$1 port=$2 log=$3 i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$log" >&2 || true
            die "daemon (pid $pid) exited before listening on port $port"
        fi
        if port_in_use "$port"; then
            return 0
        fi
        sleep 0.05
    done
    tail -n 20 "$log" >&2 || true
    die "nothing listening on port $port after 10 s"
}

# Settings for the benchmark: every session, relay and rate check on, in
# block mode, with limits far above what the load reaches; the DNS checks
# off (tests/bench/dns-bench.py measures them). The relay tables make
# it an inbound MX for example.org (sg-loadclient's recipients
# user1@example.org, ...), so every RCPT goes through the relay decision
# and the mailbox lookup.
configure_smtpguard() {
    local db=$1 sql name value out i
    local -a settings=(
        maxSMTPSessions=100000 maxSMTPipSessions=1000
        maxSMTPipConnects=1000000 maxSMTPdomainIP=100000 MaxErrors=10
        DoMaxSMTPSessions=1 DoMaxSMTPipSessions=1 DoFrequencyIP=1
        DoDomainIP=1 DoMaxErrors=1 DoDenyConnect=1
        DoRelayCheck=1 DoHarvestCheck=1 DoEmailRate=1 DoRcptRate=1
        DoDNSBL=0 DoFCrDNS=0 DoSPF=0
        maxEmailPerMinute=1000000 maxEmailPerMinuteAuth=1000000
        maxEmailPerMinuteIP=1000000 maxRcptPerMinute=1000000
        maxRcptPerMinuteAuth=1000000 maxRcptPerMinuteIP=1000000
        "${extra_settings[@]+"${extra_settings[@]}"}"
    )
    # smtpguard listens before it opens (and creates) the database: wait
    # until the schema is there.
    for ((i = 0; i < 200; i++)); do
        sqlite3 "$db" "SELECT 1 FROM settings LIMIT 1" >/dev/null 2>&1 &&
            break
        sleep 0.05
    done
    [[ $i -lt 200 ]] || die "smtpguard did not create the schema in $db"
    sql=$'.bail on\n.timeout 10000\nBEGIN;\n'
    for setting in "${settings[@]}"; do
        name=${setting%%=*}
        value=${setting#*=}
        sql+="UPDATE settings SET value = '$value' WHERE name = '$name';"$'\n'
        sql+="SELECT 'missing setting: $name' WHERE changes() = 0;"$'\n'
    done
    sql+="INSERT OR IGNORE INTO local_domains (domain) VALUES ('example.org');"
    sql+=$'\n'
    for ((i = 1; i <= 8; i++)); do
        sql+="INSERT OR IGNORE INTO local_addresses (address) VALUES "
        sql+="('user$i@example.org');"$'\n'
    done
    sql+=$'COMMIT;\n'
    out=$(sqlite3 "$db" <<<"$sql") || die "could not update settings in $db"
    if [[ -n $out ]]; then
        echo "run-bench: warning: $out" >&2
    fi
    echo "run-bench: settings updated; waiting 3 s for smtpguard to reload" >&2
    sleep 3
}

# smtpguard logs every verdict, also the accepting ones at info (local
# delivery, relay granted), through syslog(3). Without a syslog daemon on
# /dev/log glibc tries to connect again at every line, which costs more
# than a real syslog does: when /dev/log is missing, a sink of our own
# receives and drops the lines for the length of the run, as a syslog
# daemon would receive them. (--set logLevel=notice measures without the
# info lines.)
own_devlog=0
if [[ ! -S /dev/log && ! -e /dev/log ]] && [[ -w /dev ]] &&
    command -v python3 >/dev/null; then
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
print("ready", flush=True)
while True:
    s.recv(65536)
' >"$tmp/syslog-sink.log" 2>&1 &
    pids+=($!)
    own_devlog=1
    for ((i = 0; i < 100; i++)); do
        grep -q ready "$tmp/syslog-sink.log" && break
        sleep 0.05
    done
    echo "run-bench: no syslog on /dev/log: a sink of ours drops the lines" >&2
else
    echo "run-bench: logging to the syslog on /dev/log" >&2
fi

noop_port=$(pick_port)
subject_port=$(pick_port)
while [[ $subject_port == "$noop_port" ]]; do
    subject_port=$(pick_port)
done
noop_sock="inet:$noop_port@127.0.0.1"
subject_sock="inet:$subject_port@127.0.0.1"
db=$tmp/bench.db

noop_opts=(-p "$noop_sock")
[[ ${SG_BENCH_NOOP_FULL:-0} == 1 ]] || noop_opts+=(-s)
"$noop" "${noop_opts[@]}" >"$tmp/noop-milter.log" 2>&1 &
pids+=($!)
noop_pid=$!
if [[ $subject_is_smtpguard == 1 ]]; then
    # DNS checks have their own benchmark; no lookup leaves the machine.
    # As root it must drop to a user (install-deps.sh creates smtpguard).
    user_opts=()
    if [[ $(id -u) == 0 ]]; then
        user_opts=(-u smtpguard)
        chown smtpguard: "$tmp"
    fi
    "$subject" -f -p "$subject_sock" -d "$db" -r 127.0.0.1:9 \
        "${user_opts[@]}" >"$tmp/subject.log" 2>&1 &
else
    "$subject" -p "$subject_sock" >"$tmp/subject.log" 2>&1 &
fi
pids+=($!)
subject_pid=$!
wait_listening "$noop_pid" "$noop_port" "$tmp/noop-milter.log"
wait_listening "$subject_pid" "$subject_port" "$tmp/subject.log"
if [[ $subject_is_smtpguard == 1 ]]; then
    configure_smtpguard "$db"
fi

# run_load SOCKET CONCURRENCY: one sg-loadclient run; its summary
# (key=value lines) goes to $tmp/summary. Dies if it could not run at all;
# sessions that ended in errors are counted in $failures.
failures=0
run_load() {
    local rc=0
    "$loadclient" -s "$1" -c "$2" -n "$sessions" --clients "$clients" \
        >"$tmp/summary" 2>"$tmp/loadclient.err" || rc=$?
    if [[ $rc -ne 0 ]]; then
        head -n 5 "$tmp/loadclient.err" >&2
        if [[ $rc -ne 1 ]] || ! grep -q '^sessions=' "$tmp/summary"; then
            die "sg-loadclient failed (exit $rc) against $1"
        fi
        echo "run-bench: warning: sessions with errors against $1" >&2
        failures=$((failures + 1))
    fi
}

# get KEY SUMMARY
get() {
    sed -n "s/^$1=//p" <<<"$2"
}

echo "run-bench: $sessions sessions per run, $clients clients," \
    "$(nproc 2>/dev/null || echo '?') CPUs" >&2
echo "run-bench: reference $noop_sock, subject $subject_name $subject_sock" >&2
# What each milter negotiated: one that asks not to get headers and body
# (SMFIP_NOHDRS, SMFIP_NOBODY, ...) has fewer round trips per session.
for target in noop subject; do
    sock=$noop_sock
    [[ $target == subject ]] && sock=$subject_sock
    optneg=$("$loadclient" -s "$sock" -n 1 -c 1 --trace 2>/dev/null |
        sed -n 's/^stage=optneg reply=ok //p') || true
    echo "run-bench: $target negotiated: ${optneg:-?}" >&2
done

outcomes='^(accepted|rejected|tempfailed|closed|discarded|errors)='
rows=()
notes=()
# median: of the numbers on standard input, one a line
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print 0; exit }
        if (NR % 2) print v[(NR + 1) / 2]
        else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
for c in $levels; do
    for target in noop subject; do
        sock=$noop_sock
        [[ $target == subject ]] && sock=$subject_sock
        echo "run-bench: concurrency $c, $target: warm-up" >&2
        run_load "$sock" "$c"
    done
    rates_noop='' rates_subject='' p99s_noop='' p99s_subject='' ratios=''
    for ((r = 1; r <= rounds; r++)); do
        for target in noop subject; do
            sock=$noop_sock
            [[ $target == subject ]] && sock=$subject_sock
            run_load "$sock" "$c"
            summary=$(cat "$tmp/summary")
            rate=$(get sessions_per_sec "$summary")
            p99=$(get p99_ms "$summary")
            declare "rates_$target=$(eval echo "\$rates_$target") $rate"
            declare "p99s_$target=$(eval echo "\$p99s_$target") $p99"
            declare "rate_$target=$rate"
            if [[ $(get accepted "$summary") != "$(get sessions "$summary")" ]]
            then
                notes+=("concurrency $c, $target: not all accepted: $(
                    grep -E "$outcomes" <<<"$summary" | tr '\n' ' ')")
            fi
        done
        ratio=$(awk -v a="$rate_subject" -v b="$rate_noop" \
            'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
        ratios+=" $ratio"
        echo "run-bench: concurrency $c, round $r: noop $rate_noop," \
            "subject $rate_subject sessions/s (ratio $ratio)" >&2
    done
    row="$c"
    for list in "$rates_noop" "$rates_subject" "$p99s_noop" "$p99s_subject" \
        "$ratios"; do
        row+=" $(tr ' ' '\n' <<<"$list" | grep . | median)"
    done
    row+=" $(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | head -n 1)"
    row+=" $(tr ' ' '\n' <<<"$ratios" | grep . | sort -g | tail -n 1)"
    rows+=("$row")
done

# The table: the subject's columns are as wide as their headings.
w=$((${#subject_name} + 7))
echo
echo "median of $rounds rounds; ratio = median of the rounds' ratios (range)"
printf '%11s %12s %*s %6s %13s %12s %*s\n' concurrency "noop sess/s" \
    "$w" "$subject_name sess/s" ratio "(range)" "noop p99 ms" \
    "$w" "$subject_name p99 ms"
for row in "${rows[@]}"; do
    awk -v w="$w" '{
        printf "%11d %12.1f %*.1f %6.2f  (%4.2f-%4.2f) %12.2f %*.2f\n", $1,
            $2, w, $3, $6, $7, $8, $4, w, $5 }' <<<"$row"
done
for note in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $note"
done
if [[ $failures -gt 0 ]]; then
    die "$failures run(s) had sessions with protocol or I/O errors"
fi
