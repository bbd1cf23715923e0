#!/usr/bin/env python3
"""dns-bench.py - smtpguard with every DNS check on, against a local nsd.

  tests/bench/dns-bench.py BUILD_DIR [--sessions N] [--concurrency C]
                           [--rounds N] [--only-pool]

Starts a private nsd (Debian's nsd; run as root) serving four DNSBL zones,
reverse zones and SPF records for sg-loadclient's client ranges, then:

  1. throughput: the no-op milter (reference), smtpguard with a cold cache
     (just started), the same run again (warm cache), and smtpguard with
     the cache off (every lookup goes to nsd): sessions/s and p50/p99;
  2. parallelism: a delaying proxy of our own in front of nsd holds back
     the answers of chosen DNSBL zones by D ms; a session's latency with
     one slow zone and with all four slow shows whether the lookups run in
     parallel (about D either way) or one after another (4 x D);
  3. the SPF worker pool: SPF alone, evaluated in the daemon's process
     (-w 0) and in the sandboxed workers (the default), round by round:
     sessions/s, p50 and the CPU time of daemon and workers per session,
     so what the pool costs per check is the difference.

A benchmark, not a test: it prints figures and exits 0 unless something
failed to run. Every address it uses is on loopback or in the
documentation ranges sg-loadclient writes into milter packets.
"""

import argparse
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'integration'))
import harness  # noqa: E402  (NSD, free_port)

ZONES_BL = ['bl1.bench', 'bl2.bench', 'bl3.bench', 'bl4.bench']


def zones():
    z = {}
    # A few listed clients per list; most clients are not listed.
    for i, name in enumerate(ZONES_BL):
        z[name] = ''.join(f'{k}.2.0.192 A 127.0.0.2\n'
                          for k in range(10 + i, 200, 40))
    # Reverse DNS: half the IPv4 clients have a confirmed name.
    for net in ('2.0.192', '100.51.198', '113.0.203'):
        z[f'{net}.in-addr.arpa'] = ''.join(
            f'{k} PTR h{k}.{net.replace(".", "-")}.fwd.bench.\n'
            for k in range(0, 256, 2))
    fwd = ''
    for net in ('2.0.192', '100.51.198', '113.0.203'):
        a = '.'.join(reversed(net.split('.')))
        fwd += ''.join(f'h{k}.{net.replace(".", "-")} A {a}.{k}\n'
                       for k in range(0, 256, 2))
    z['fwd.bench'] = fwd
    z['8.b.d.0.1.0.0.2.ip6.arpa'] = ''
    # sg-loadclient's senders are bench@dN.example.com: SPF pass for its
    # client ranges.
    z['example.com'] = ('* TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 '
                        'ip4:203.0.113.0/24 ip6:2001:db8::/32 -all"\n')
    return z


class DelayProxy:
    """UDP on loopback: forwards to nsd, holds back the answers for names
    under the slow zones by delay_ms (each in its own timer)."""

    def __init__(self, upstream_port, slow, delay_ms):
        self.up = ('127.0.0.1', upstream_port)
        self.slow = tuple('.' + z for z in slow)
        self.delay = delay_ms / 1000.0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    @staticmethod
    def qname(data):
        labels, pos = [], 12
        while pos < len(data) and data[pos]:
            labels.append(data[pos + 1:pos + 1 + data[pos]].decode(
                'ascii', 'replace'))
            pos += 1 + data[pos]
        return '.'.join(labels).lower()

    def forward(self, data, client):
        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        up.settimeout(2)
        try:
            up.sendto(data, self.up)
            reply = up.recv(4096)
        except OSError:
            return
        finally:
            up.close()
        if ('.' + self.qname(data)).endswith(self.slow):
            time.sleep(self.delay)
        self.sock.sendto(reply, client)

    def run(self):
        while not self.stop:
            data, client = self.sock.recvfrom(4096)
            threading.Thread(target=self.forward, args=(data, client),
                             daemon=True).start()


def wait_port(port, proc, what):
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f'dns-bench: {what} exited ({proc.returncode})')
        if harness.tcp_listening(port):
            return
        time.sleep(0.05)
    sys.exit(f'dns-bench: {what} not listening on {port}')


def start_guard(build, tmp, name, dns_server, settings, cache=True,
                args=()):
    port = harness.free_port()
    db = os.path.join(tmp, f'{name}.db')
    log = open(os.path.join(tmp, f'{name}.log'), 'w')
    proc = subprocess.Popen([os.path.join(build, 'milter', 'smtpguard'), '-f',
                             '-p', f'inet:{port}@127.0.0.1', '-d', db, '-r',
                             dns_server] + harness.run_as(tmp) + list(args),
                            stdout=log, stderr=log)
    wait_port(port, proc, 'smtpguard')
    for _ in range(100):
        try:
            con = sqlite3.connect(db, timeout=10)
            con.execute('SELECT 1 FROM settings LIMIT 1')
            break
        except sqlite3.Error:
            time.sleep(0.05)
    all_settings = dict(settings)
    if not cache:
        all_settings['dnsCacheSize'] = '0'
    with con:
        for k, v in all_settings.items():
            con.execute('UPDATE settings SET value = ? WHERE name = ?',
                        (str(v), k))
        con.execute('DELETE FROM relay_networks')
        for i, z in enumerate(ZONES_BL):
            con.execute('INSERT INTO dnsbl_zones (zone, weight) VALUES (?, ?)',
                        (z, 1))
    con.close()
    time.sleep(3)               # the daemon reloads within 2 s
    return proc, port


def load(build, port, sessions, conc, clients, extra=()):
    argv = [os.path.join(build, 'tests', 'bench', 'sg-loadclient'), '-s',
            f'inet:{port}@127.0.0.1', '-c', str(conc), '-n', str(sessions),
            '--clients', str(clients), '--ipv6-percent', '0',
            '--rcpt', 'user@example.org'] + list(extra)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
    out = dict(line.split('=', 1) for line in r.stdout.splitlines()
               if '=' in line and ' ' not in line)
    return out


BASE = {
    'maxSMTPSessions': 100000, 'maxSMTPipSessions': 1000,
    'maxSMTPipConnects': 1000000, 'maxSMTPdomainIP': 100000,
    'maxEmailPerMinute': 1000000, 'maxEmailPerMinuteAuth': 1000000,
    'maxRcptPerMinute': 1000000, 'maxRcptPerMinuteAuth': 1000000,
    'DoDNSBL': 1, 'dnsblThreshold': 100, 'DoFCrDNS': 2, 'DoSPF': 1,
    'penaltyScoreThreshold': 1000000,
}


def cpu_seconds(pid):
    """User and system CPU of a process and its live children (the SPF
    workers), in seconds."""
    tick = os.sysconf('SC_CLK_TCK')
    pids = [pid]
    for tid in os.listdir(f'/proc/{pid}/task'):
        with open(f'/proc/{pid}/task/{tid}/children') as f:
            pids += [int(x) for x in f.read().split()]
    total = 0
    for p in pids:
        try:
            with open(f'/proc/{p}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def spf_pool(build, tmp, nsd, procs, n, c, k, rounds):
    """SPF alone, in the daemon's process (-w 0) and in the worker pool
    (the default), alternated round by round; cache on and off."""
    print(f'\nSPF worker pool: SPF only (DNSBL and FCrDNS off), {rounds} '
          'rounds alternating -w 0 (in process) and the pool (default -w); '
          'median sess/s and p50, CPU of daemon and workers per session')
    print(f'{"run":34s} {"sess/s":>10s} {"p50 ms":>9s} {"cpu us/sess":>12s}')
    spf_only = dict(BASE, DoDNSBL=0, DoFCrDNS=0)
    for cache in (True, False):
        runs = {}
        guards = {}
        for label, args in (('in process (-w 0)', ['-w', '0']),
                            ('worker pool', [])):
            name = f'spf{len(args)}{int(cache)}'
            g, port = start_guard(build, tmp, name, nsd.server, spf_only,
                                  cache=cache, args=args)
            procs.append(g)
            load(build, port, n, c, k)          # warm-up (and the cache)
            guards[label] = (g, port)
            runs[label] = []
        for _ in range(rounds):
            for label, (g, port) in guards.items():
                before = cpu_seconds(g.pid)
                r = load(build, port, n, c, k)
                cpu = cpu_seconds(g.pid) - before
                runs[label].append((float(r['sessions_per_sec']),
                                    float(r['p50_ms']), cpu * 1e6 / n))
        med = {}
        for label, rs in runs.items():
            rate, p50, cpu = (sorted(x[i] for x in rs)[len(rs) // 2]
                              for i in range(3))
            med[label] = (rate, p50, cpu)
            print(f'  {label + (", cache" if cache else ", no cache"):32s} '
                  f'{rate:10.1f} {p50:9.2f} {cpu:12.1f}')
        a, b = med['in process (-w 0)'], med['worker pool']
        print(f'  pool / in process: rate {b[0] / a[0]:.3f}, p50 '
              f'{b[1] - a[1]:+.2f} ms, CPU {b[2] - a[2]:+.1f} us per check')
        for g, _ in guards.values():
            g.terminate()


def row(label, s, ref=None):
    rate = float(s.get('sessions_per_sec', 0))
    ratio = f'{rate / ref:5.2f}' if ref else '    -'
    print(f'{label:34s} {rate:10.1f} {ratio} {float(s.get("p50_ms", 0)):9.2f}'
          f' {float(s.get("p99_ms", 0)):9.2f}  accepted={s.get("accepted")}'
          f' rejected={s.get("rejected")} tempfailed={s.get("tempfailed")}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('--sessions', type=int, default=5000)
    ap.add_argument('--concurrency', type=int, default=8)
    ap.add_argument('--clients', type=int, default=600)
    ap.add_argument('--delay-ms', type=int, default=300)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--only-pool', action='store_true',
                    help='only the SPF worker pool comparison')
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix='sg-dnsbench-')
    procs = []
    nsd = harness.NSD(os.path.join(tmp, 'nsd'), zones()).start()
    try:
        noop_port = harness.free_port()
        noop = subprocess.Popen([os.path.join(build, 'tests', 'bench',
                                              'noop-milter'), '-s', '-p',
                                 f'inet:{noop_port}@127.0.0.1'],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(noop)
        wait_port(noop_port, noop, 'noop-milter')
        n, c, k = args.sessions, args.concurrency, args.clients
        if args.only_pool:
            spf_pool(build, tmp, nsd, procs, n, c, k, args.rounds)
            return
        print(f'dns-bench: {n} sessions, concurrency {c}, {k} clients, '
              f'{os.cpu_count()} CPUs; 4 DNSBL zones, FCrDNS (monitor), '
              'SPF, all against nsd on loopback')
        print(f'{"run":34s} {"sess/s":>10s} ratio {"p50 ms":>9s} '
              f'{"p99 ms":>9s}')
        load(build, noop_port, n, c, k)
        ref = load(build, noop_port, n, c, k)
        ref_rate = float(ref['sessions_per_sec'])
        row('no-op milter (reference)', ref)
        g, port = start_guard(build, tmp, 'cached', nsd.server, BASE)
        procs.append(g)
        row('smtpguard, cache cold', load(build, port, n, c, k), ref_rate)
        row('smtpguard, cache warm', load(build, port, n, c, k), ref_rate)
        g, port = start_guard(build, tmp, 'nocache', nsd.server, BASE,
                              cache=False)
        procs.append(g)
        row('smtpguard, no cache (all to nsd)', load(build, port, n, c, k),
            ref_rate)
        # Parallelism: latency with 1 and with 4 slow zones, no cache.
        print(f'\nparallel lookups: answers of slow zones held back '
              f'{args.delay_ms} ms by a proxy; 40 sessions, concurrency 4, '
              'no cache, verdict at connect')
        for slow in (ZONES_BL[:0], ZONES_BL[:1], ZONES_BL):
            proxy = DelayProxy(nsd.port, slow, args.delay_ms)
            g, port = start_guard(build, tmp, f'slow{len(slow)}',
                                  f'127.0.0.1:{proxy.port}',
                                  dict(BASE, dnsCheckStage='connect',
                                       dnsTimeout=5000),
                                  cache=False)
            procs.append(g)
            s = load(build, port, 40, 4, 40)
            print(f'  {len(slow)} of 4 zones slow: session p50 '
                  f'{float(s["p50_ms"]):7.1f} ms, max '
                  f'{float(s["max_ms"]):7.1f} ms')
            g.terminate()
            proxy.stop = True
        spf_pool(build, tmp, nsd, procs, n, c, k, args.rounds)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        nsd.stop()
        if os.environ.get('SG_BENCH_KEEP') == '1':
            print(f'dns-bench: kept {tmp}')
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
