"""kill -9 at 100 random moments under load, each followed by a restart.

Two MTA-side clients speak the milter protocol to the daemon while it is
killed: one opens sessions from rotating IPv6 networks (never reaching the
connection limit) and counts every CONNECT it got an answer to; the other
drives addresses past maxSMTPipConnects and records every one it was told
is banned. After each kill, before the restart:

- PRAGMA integrity_check is "ok";
- every ban a client was told about is in the bans table;
- the stored connection counts fall short of what the daemon answered by
  at most what it answered in the last flush interval (1 s, plus 0.25 s
  for the flush itself), and never exceed it by more than the one CONNECT
  in flight.
"""

import os
import random
import signal
import socket
import sqlite3
import threading
import time

from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin, MilterClient, \
    postfix_macros

CYCLES = int(os.environ.get('SG_CRASH_CYCLES', '100'))
LIMIT = 40


class Load:
    """Both clients in threads until stop() or the daemon dies."""

    def __init__(self, port, cycle):
        self.port = port
        self.cycle = cycle
        self.answered = 0           # CONNECTs the daemon answered
        self.times = []             # when each was answered (monotonic)
        self.banned = set()         # addresses told "banned"
        self.stopping = False
        self.errors = []
        self.threads = [threading.Thread(target=self.guarded, args=(f,))
                        for f in (self.counted, self.banning)]

    def guarded(self, fn):
        try:
            fn()
        except Exception as e:          # reported by the test
            self.errors.append(repr(e))

    def start(self):
        self.t0 = time.monotonic()
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(10)
        self.elapsed = time.monotonic() - self.t0

    def session(self, addr):
        """The CONNECT reply, or None when the daemon was gone."""
        try:
            c = MilterClient(self.port, timeout=2)
        except OSError:
            return None
        try:
            # Small packets both ways: without this, Nagle and delayed
            # ACKs make every session 40 ms.
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.negotiate()
            r = c.connect(addr, macros=postfix_macros(addr))
            return None if r.word == 'eof' else r
        except (OSError, AssertionError):
            return None
        finally:
            c.sock.close()

    def counted(self):
        n = 0
        while not self.stopping:
            # LIMIT - 10 per /64, a new one each time: never refused.
            addr = f'2001:db8:{self.cycle:x}:{n // (LIMIT - 10):x}::1'
            r = self.session(addr)
            if r is None or 'Policy service restarting' in (r.code or ''):
                return                  # killed, or stopping (SIGTERM)
            if r.word != 'continue':
                raise AssertionError(f'{addr} refused: {r}')
            self.answered += 1
            self.times.append(time.monotonic())
            n += 1

    def banning(self):
        i = 0
        while not self.stopping:
            addr = f'198.51.100.{1 + (self.cycle * 3 + i) % 250}'
            for _ in range(LIMIT + 1):
                r = self.session(addr)
                if r is None:
                    return
                if r.event_id in ('00200154', '00200155'):
                    self.banned.add(addr)
                    break
            i += 1


class CrashTest(LoadClientMixin, IntegrationTestCase):

    test_timeout = 240

    def stored(self, db):
        con = sqlite3.connect(db, timeout=10)
        try:
            check = con.execute('PRAGMA integrity_check').fetchall()
            counts = con.execute(
                "SELECT coalesce(sum(count), 0) FROM rate_windows WHERE "
                "key LIKE 'conn:2001:db8:%'").fetchone()[0]
            bans = {k for (k,) in con.execute(
                "SELECT key FROM bans WHERE kind = 'ip'")}
        finally:
            con.close()
        return check, counts, bans

    def test_kill_9_under_load(self):
        rng = random.Random(int(os.environ.get('SG_CRASH_SEED', '0')) or None)
        g = self.start_guard(settings={
            'maxSMTPipConnects': LIMIT, 'maxSMTPipDuration': 86400,
            'maxSMTPipExpiration': 86400, 'DoMaxSMTPipSessions': 0})
        told = set()
        worst = 0.0
        flushed_cycles = 0
        offered_total = 0
        for cycle in range(CYCLES):
            _, before, _ = self.stored(g.db)
            load = Load(self.port, cycle).start()
            # Every fourth run outlasts a flush or two, so that the 1 s
            # bound below is tested, not only met by short runs.
            time.sleep(rng.uniform(1.6, 2.5) if cycle % 4 == 0
                       else rng.uniform(0.2, 2.0))
            killed_at = time.monotonic()
            os.kill(g.pid, signal.SIGKILL)
            g.proc.wait(10)
            load.stop()
            self.assertEqual(load.errors, [], f'cycle {cycle}')
            told |= load.banned
            offered_total += load.answered
            check, after, bans = self.stored(g.db)
            where = f'cycle {cycle} (after {load.elapsed:.2f} s)'
            self.assertEqual(check, [('ok',)], where)
            self.assertLessEqual(told - bans, set(),
                                 f'{where}: bans lost')
            # One flush interval (1 s), plus a quarter second for the
            # flush itself: what was answered then may be lost, no more.
            last = sum(1 for t in load.times if t >= killed_at - 1.25)
            shortfall = before + load.answered - after
            worst = max(worst, shortfall / max(last, 1))
            self.assertLessEqual(shortfall, last + 2,
                                 f'{where}: {load.answered} answered, '
                                 f'{last} in the last 1.25 s, stored '
                                 f'{before} -> {after}')
            self.assertGreaterEqual(shortfall, -1, where)
            if load.elapsed > 1.5:
                flushed_cycles += 1
                self.assertGreater(after, before, f'{where}: nothing stored')
            g.start()
        print(f'\nkill -9: {CYCLES} cycles, {offered_total} counted '
              f'sessions, {len(told)} bans told, all stored; worst counter '
              f'shortfall {worst:.2f} of what was answered in the '
              f'last flush interval '
              f'({flushed_cycles} cycles past 1.5 s)')
        self.assertGreater(len(told), CYCLES // 4)
        self.assertGreaterEqual(flushed_cycles, CYCLES // 4)

    def test_sigterm_during_flush_loses_nothing(self):
        """SIGTERM while the counted client runs at full speed: the final
        flush stores every answered CONNECT."""
        g = self.start_guard(settings={
            'maxSMTPipConnects': LIMIT, 'maxSMTPipDuration': 86400,
            'DoMaxSMTPipSessions': 0})
        for cycle in range(5):
            _, before, _ = self.stored(g.db)
            load = Load(self.port, cycle)
            load.threads = load.threads[:1]
            load.start()
            time.sleep(0.3 + cycle * 0.1)
            g.proc.send_signal(signal.SIGTERM)
            g._poke()
            g.proc.wait(15)
            self.assertEqual(g.proc.returncode, 0)
            load.stop()
            self.assertEqual(load.errors, [])
            _, after, _ = self.stored(g.db)
            # The CONNECT in flight at the stop may be counted, not answered.
            self.assertIn(after - before - load.answered, (0, 1),
                          f'{before} + {load.answered} answered -> {after}')
            g.start()

    def test_sigterm_while_a_flush_waits_loses_nothing(self):
        """SIGTERM while a flush is held up by another writer: the flush in
        progress waits for the lock (busy timeout 5 s), the final flush
        follows it, and every answered CONNECT is stored."""
        g = self.start_guard(settings={
            'maxSMTPipConnects': LIMIT, 'maxSMTPipDuration': 86400,
            'DoMaxSMTPipSessions': 0})
        for cycle in range(3):
            _, before, _ = self.stored(g.db)
            load = Load(self.port, cycle)
            load.threads = load.threads[:1]
            load.start()
            time.sleep(0.5)
            holder = sqlite3.connect(g.db, timeout=10, isolation_level=None)
            holder.execute('BEGIN IMMEDIATE')
            # More than one flush interval (1 s) with the lock held: a
            # flush has begun and waits for it when the signal comes.
            time.sleep(1.3)
            g.proc.send_signal(signal.SIGTERM)
            g._poke()
            time.sleep(0.7)
            self.assertIsNone(g.proc.poll(),
                              'smtpguard stopped without its last flush')
            holder.execute('ROLLBACK')
            holder.close()
            g.proc.wait(15)
            self.assertEqual(g.proc.returncode, 0)
            load.stop()
            self.assertEqual(load.errors, [])
            _, after, _ = self.stored(g.db)
            self.assertIn(after - before - load.answered, (0, 1),
                          f'{before} + {load.answered} answered -> {after}')
            g.start()
