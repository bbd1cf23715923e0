#!/usr/bin/env python3
"""soak.py - smtpguard under a steady load for a long time; are its
resources flat?

  tests/soak/soak.py BUILD_DIR [--minutes 30] [--rate 150]
                     [--concurrency 8] [--out docs/soak]

Starts a private nsd (DNSBL zone, reverse zone, SPF records) and smtpguard
with every check on and limits low enough to fire: connection-frequency
bans, a DNSBL listing a tenth of the clients, relay attempts refused,
unknown recipients. sg-loadclient drives it from 3000 client addresses for
the whole run at a steady offered rate (--rate sessions per second, started
on schedule by --concurrency threads, not back to back). Every 10 s the script samples smtpguard's RSS, open file
descriptors, threads and the database size (with its WAL), writes them to
OUT.csv and draws OUT.png, then compares the last quarter of the run with
the second: growth of the peak beyond 10 % (RSS, database), or a median
of file descriptors or threads more than 2 above the second quarter's (a
sample counts a socket per session open at that instant, and libmilter
starts and ends worker threads with the load), is reported as a leak,
exit 1.

Not run in CI (it takes half an hour); run as root (nsd).
"""

import argparse
import os
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '..', 'integration'))
import harness  # noqa: E402

ZONES = {
    'bl.soak': ''.join(f'{k}.2.0.192 A 127.0.0.2\n' for k in range(0, 256, 10)),
    '2.0.192.in-addr.arpa': ''.join(f'{k} PTR h{k}.fwd.soak.\n'
                                    for k in range(0, 256, 2)),
    'fwd.soak': ''.join(f'h{k} A 192.0.2.{k}\n' for k in range(0, 256, 2)),
    'example.com': '* TXT "v=spf1 ip4:192.0.2.0/24 ip4:198.51.100.0/24 '
                   '-all"\n',
}

SETTINGS = {
    'maxSMTPipConnects': 20, 'maxSMTPipDuration': 60,
    'maxSMTPipExpiration': 120, 'maxSMTPipSessions': 20,
    'maxEmailPerMinute': 100000, 'maxRcptPerMinute': 100000,
    'DoDNSBL': 1, 'DoFCrDNS': 2, 'DoSPF': 1, 'maxHarvestUnknown': 50,
    'harvestExpiration': 120,
}


def sample(pid, db):
    st = {}
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            k, _, v = line.partition(':')
            st[k] = v.strip()
    size = sum(os.path.getsize(db + s) for s in ('', '-wal')
               if os.path.exists(db + s))
    return (int(st['VmRSS'].split()[0]) / 1024.0,
            len(os.listdir(f'/proc/{pid}/fd')), int(st['Threads']),
            size / 1048576.0)


# ---- a small PNG line plot, no dependencies

FONT = {  # 3x5 digits and a few letters
    '0': '111101101101111', '1': '010110010010111', '2': '111001111100111',
    '3': '111001111001111', '4': '101101111001001', '5': '111100111001111',
    '6': '111100111101111', '7': '111001001001001', '8': '111101111101111',
    '9': '111101111001111', '.': '000000000000010', ' ': '0' * 15,
    'M': '101111111101101', 'B': '110101110101110', 'R': '110101110101101',
    'S': '111100111001111', 'F': '111100110100100', 'D': '110101101101110',
    'T': '111010010010010', 'H': '101101111101101', 'm': '000000111111101',
    'i': '010000010010010', 'n': '000000110101101', 'd': '001001111101111',
    'b': '100100111101111', 'h': '100100111101101', 'r': '000000110100100',
    's': '000000011010110', 'e': '000111111100011', 'a': '000011101101011',
}


def png(path, w, h, pixels):
    raw = b''.join(b'\0' + bytes(pixels[y * w * 3:(y + 1) * w * 3])
                   for y in range(h))

    def chunk(t, d):
        return (struct.pack('!I', len(d)) + t + d +
                struct.pack('!I', zlib.crc32(t + d) & 0xffffffff))
    with open(path, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack(
            '!IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(
            b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


def plot(path, t, series):
    w, ph, pad = 800, 150, 30
    h = ph * len(series)
    px = bytearray(b'\xff' * (w * h * 3))

    def put(x, y, c):
        if 0 <= x < w and 0 <= y < h:
            px[(y * w + x) * 3:(y * w + x) * 3 + 3] = c

    def text(x, y, s, c=(0, 0, 0)):
        for ch in s:
            g = FONT.get(ch, FONT[' '])
            for i, bit in enumerate(g):
                if bit == '1':
                    for dx in range(2):
                        for dy in range(2):
                            put(x + (i % 3) * 2 + dx, y + (i // 3) * 2 + dy,
                                c)
            x += 8

    def line(x0, y0, x1, y1, c):
        n = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(n + 1):
            put(x0 + (x1 - x0) * i // n, y0 + (y1 - y0) * i // n, c)

    tmax = max(t) or 1
    for k, (name, vals, color) in enumerate(series):
        top = k * ph
        vmax = max(vals) * 1.2 or 1
        x0, x1, y0, y1 = pad + 40, w - 10, top + ph - pad, top + 20
        line(x0, y0, x1, y0, (0, 0, 0))
        line(x0, y0, x0, y1, (0, 0, 0))
        text(x0 + 10, top + 5, name)
        text(2, y1, f'{vmax:.1f}'[:6])
        text(2, y0 - 8, '0')
        text(x1 - 40, y0 + 8, f'{tmax / 60:.0f} min'.replace('min', 'mn'))
        pts = [(x0 + int((x1 - x0) * ti / tmax),
                y0 - int((y0 - y1) * v / vmax)) for ti, v in zip(t, vals)]
        for a, b in zip(pts, pts[1:]):
            line(a[0], a[1], b[0], b[1], color)
    png(path, w, h, px)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('build')
    ap.add_argument('--minutes', type=float, default=30)
    ap.add_argument('--rate', type=int, default=150)
    ap.add_argument('--concurrency', type=int, default=8)
    ap.add_argument('--out', default='docs/soak')
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    tmp = tempfile.mkdtemp(prefix='sg-soak-')
    nsd = harness.NSD(os.path.join(tmp, 'nsd'), ZONES).start()
    db = os.path.join(tmp, 'soak.db')
    port = harness.free_port()
    log = open(os.path.join(tmp, 'smtpguard.log'), 'w')
    g = subprocess.Popen([os.path.join(build, 'milter', 'smtpguard'), '-f',
                          '-p', f'inet:{port}@127.0.0.1', '-d', db, '-r',
                          nsd.server] + harness.run_as(tmp),
                         stdout=log, stderr=log)
    load = None
    try:
        for _ in range(200):
            if os.path.exists(db) and harness.tcp_listening(port):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        con = sqlite3.connect(db, timeout=10)
        with con:
            for k, v in SETTINGS.items():
                con.execute('UPDATE settings SET value = ? WHERE name = ?',
                            (str(v), k))
            con.execute("DELETE FROM relay_networks")
            con.execute("INSERT INTO local_domains (domain) VALUES "
                        "('example.org')")
            con.execute("INSERT INTO local_addresses (address) VALUES "
                        "('user1@example.org')")
            con.execute("INSERT INTO dnsbl_zones (zone, weight) VALUES "
                        "('bl.soak', 1)")
        con.close()
        time.sleep(3)
        secs = int(args.minutes * 60)
        load = subprocess.Popen(
            [os.path.join(build, 'tests', 'bench', 'sg-loadclient'), '-s',
             f'inet:{port}@127.0.0.1', '-c', str(args.concurrency), '-t',
             str(secs), '--rate', str(args.rate), '--clients', '3000', '--ipv6-percent', '10',
             '--rcpt', 'user1@example.org', '--rcpt', 'nobody@example.org',
             '--rcpt', 'someone@elsewhere.example'],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        start = time.monotonic()
        rows = []
        while load.poll() is None:
            t = time.monotonic() - start
            rss, fds, threads, size = sample(g.pid, db)
            rows.append((t, rss, fds, threads, size))
            print(f'soak: {t:7.0f} s  RSS {rss:7.1f} MB  fds {fds:4d}  '
                  f'threads {threads:3d}  db {size:6.2f} MB', flush=True)
            time.sleep(10)
        summary = load.stdout.read()
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        g.terminate()
        g.wait(30)
        nsd.stop()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + '.csv', 'w') as f:
        f.write('seconds,rss_mb,fds,threads,db_mb\n')
        for r in rows:
            f.write(','.join(f'{x:.2f}' for x in r) + '\n')
    t = [r[0] for r in rows]
    plot(args.out + '.png', t, [
        ('RSS MB', [r[1] for r in rows], (200, 0, 0)),
        ('FDs', [r[2] for r in rows], (0, 0, 200)),
        ('Threads', [r[3] for r in rows], (0, 140, 0)),
        ('DB MB', [r[4] for r in rows], (120, 0, 160)),
    ])
    n = len(rows)
    q2, q4 = rows[n // 4:n // 2], rows[3 * n // 4:]
    verdict = 0
    print('soak: load:', ' '.join(line for line in summary.splitlines()
                                  if line.split('=')[0] in
                                  ('sessions', 'sessions_per_sec',
                                   'accepted', 'rejected', 'tempfailed',
                                   'closed', 'errors')))
    for i, name, tol in ((1, 'RSS MB', 0.10), (2, 'fds', 0.0),
                         (3, 'threads', 0.0), (4, 'db MB', 0.10)):
        if i in (2, 3):
            # A sample's count moves with the sessions open at that
            # instant (a socket each; libmilter's workers come and go
            # with the load): medians, 2 of slack.
            a = sorted(r[i] for r in q2)[len(q2) // 2]
            b = sorted(r[i] for r in q4)[len(q4) // 2]
            grew = b > a + 2
            what = 'median'
        else:
            a = max(r[i] for r in q2)
            b = max(r[i] for r in q4)
            grew = b > a * (1 + tol)
            what = 'peak'
        verdict |= grew
        print(f'soak: {name}: {what} {a:.1f} in the second quarter, {b:.1f} '
              f'in the last (highest {max(r[i] for r in rows):.1f})'
              f'{"  <- GROWING" if grew else ""}')
    print(f'soak: {args.out}.csv, {args.out}.png written; '
          f'{"FLAT" if not verdict else "NOT FLAT"}')
    return verdict


if __name__ == '__main__':
    sys.exit(main())
