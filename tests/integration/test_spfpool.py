"""SPF workers killed at random moments under load: the daemon stays up,
only the checks that lost their worker are affected.

Four MTA-side clients speak the milter protocol to smtpguard without
pause, each session a MAIL FROM of a domain of its own (wildcards of
load.test on a private nsd), whose record makes five DNS lookups: half
the domains pass (MAIL is continued), half fail (550 5.7.23). Meanwhile
the test sends SIGSEGV or SIGKILL (at random) to a random SPF worker of
the daemon, KILLS times, at random intervals. Then:

- the daemon is the same process, and serves the next session;
- every session got an answer to MAIL: its domain's own verdict, or the
  temperror reply (451 4.4.3 ... [smtpguard 00240113]) together with a
  spf_worker_lost line for its domain naming one of the pids killed;
- no other session saw a temperror, no domain was quarantined (each
  domain is checked once), and a worker killed while idle cost nothing.
"""

import os
import random
import signal
import socket
import threading
import time

from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin, MilterClient, \
    postfix_macros

KILLS = int(os.environ.get('SG_SPF_KILLS', '100'))
CLIENTS = 4

# a1..a4 and the domain's own A: five lookups through the worker and the
# daemon's resolver (no two sessions share a name: nothing is cached).
LOOKUPS = 'a a:a1.%{d} a:a2.%{d} a:a3.%{d} a:a4.%{d}'
ZONES = {
    'load.test': f"""
*.p  TXT  "v=spf1 {LOOKUPS} ip4:192.0.2.0/24 -all"
*.p  A    203.0.113.9
*.f  TXT  "v=spf1 {LOOKUPS} ip4:203.0.113.0/24 -all"
*.f  A    203.0.113.9
""",
}

TEMPERROR = '451 4.4.3 '


def worker_pids(pid):
    """The daemon's children: its SPF workers."""
    kids = []
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            with open(f'/proc/{pid}/task/{tid}/children') as f:
                kids += [int(x) for x in f.read().split()]
    except FileNotFoundError:
        pass
    return kids


class Load:
    """CLIENTS threads of sessions until stop(); every outcome kept."""

    def __init__(self, port, seed):
        self.port = port
        self.seed = seed
        self.stopping = False
        self.results = []           # (domain, kind, MilterReply)
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.guarded, args=(i,))
                        for i in range(CLIENTS)]

    def guarded(self, i):
        try:
            self.client(i)
        except Exception as e:          # reported by the test
            self.errors.append(f'client {i}: {e!r}')

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join(30)

    def session(self, addr, sender):
        c = MilterClient(self.port, timeout=10)
        try:
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.negotiate()
            r = c.connect(addr, macros=postfix_macros(addr))
            if r.word != 'continue':
                raise AssertionError(f'CONNECT of {addr}: {r}')
            r = c.helo('client.load.test')
            if r.word != 'continue':
                raise AssertionError(f'HELO of {addr}: {r}')
            return c.mail(sender)
        finally:
            c.close()

    def client(self, i):
        rng = random.Random(self.seed * 100 + i)
        n = 0
        while not self.stopping:
            kind = rng.choice('pf')
            domain = f's{self.seed}-{i}-{n}.{kind}.load.test'
            addr = f'192.0.2.{1 + (i * 50 + n) % 200}'
            r = self.session(addr, f'user@{domain}')
            with self.lock:
                self.results.append((domain, kind, r))
            n += 1


class SpfPoolKillTest(LoadClientMixin, IntegrationTestCase):

    dns_zones = ZONES
    test_timeout = 280

    def test_workers_killed_under_load(self):
        seed = int(os.environ.get('SG_SPF_KILL_SEED', '0')) or \
            random.randrange(1, 1 << 30)
        rng = random.Random(seed)
        if 'ASAN_OPTIONS' in os.environ:
            # AddressSanitizer's SIGSEGV handler symbolizes a report before
            # the worker dies, seconds on a busy machine: a worker killed
            # while starting then holds the check that waits for it past
            # its deadline. The signal's own death is what is tested here.
            saved = os.environ['ASAN_OPTIONS']
            os.environ['ASAN_OPTIONS'] = saved + ':handle_segv=0'
            self.addCleanup(os.environ.__setitem__, 'ASAN_OPTIONS', saved)
        g = self.start_guard(args=['-w', '4'], settings={
            'DoFCrDNS': 0, 'DoDNSBL': 0, 'DoFrequencyIP': 0,
            'DoDomainIP': 0, 'DoMaxSMTPipSessions': 0})
        since = g.mark()
        pid = g.pid
        load = Load(self.port, seed).start()
        killed = {}                 # pid -> signal
        try:
            while len(killed) < KILLS and not load.errors:
                time.sleep(rng.uniform(0.02, 0.25))
                pids = [p for p in worker_pids(pid) if p not in killed]
                if not pids:
                    continue
                victim = rng.choice(pids)
                sig = rng.choice((signal.SIGSEGV, signal.SIGKILL))
                try:
                    os.kill(victim, sig)
                except ProcessLookupError:
                    continue
                killed[victim] = sig
            time.sleep(0.5)         # sessions after the last kill
        finally:
            load.stop()
        msg = f'(seed {seed}, SG_SPF_KILL_SEED reproduces it)'
        self.assertEqual(load.errors, [], msg)
        self.assertEqual(len(killed), KILLS, msg)
        self.assertIsNone(g.proc.poll(), msg)
        self.assertEqual(g.pid, pid, msg)

        # What the daemon said about its workers.
        g.env.syslog.barrier()
        lost = {}                   # domain -> pid
        for ev in g.find_all('spf_worker_lost', since):
            lost[ev['domain']] = int(ev['pid'])
        idle = [int(ev['pid'])
                for ev in g.find_all('spf_worker_died_idle', since)]
        g.assert_no_event('spf_domain_quarantined', since)
        g.assert_no_event('spf_worker_unavailable', since)
        for p in list(lost.values()) + idle:
            self.assertIn(p, killed, f'pid {p} was not killed by the test '
                          + msg)

        # Every session: its verdict, or a temperror of a lost check.
        counts = {'p': 0, 'f': 0, 'temperror': 0}
        for domain, kind, r in load.results:
            if domain in lost:
                self.assertTrue(r.word == 'tempfail' and
                                r.code.startswith(TEMPERROR) and
                                r.event_id == '00240113',
                                f'{domain} lost its worker, got {r} {msg}')
                counts['temperror'] += 1
            elif kind == 'p':
                self.assertEqual(r.word, 'continue', f'{domain}: {r} {msg}')
                counts['p'] += 1
            else:
                self.assertTrue(r.word == 'reject' and
                                r.code.startswith('550 5.7.23 '),
                                f'{domain}: {r} {msg}')
                counts['f'] += 1
        self.assertEqual(counts['temperror'], len(lost), msg)
        # Most kills hit a worker at work, and it showed.
        self.assertGreater(len(lost), KILLS // 4, f'{counts} {msg}')
        print(f'\n[spfpool] seed {seed}: {len(load.results)} sessions, '
              f'{KILLS} kills ({len(lost)} during a check, {len(idle)} '
              f'found dead idle), verdicts {counts}', flush=True)

        # The next session is served as ever.
        r = Load(self.port, seed).session('192.0.2.250',
                                          'user@after.p.load.test')
        self.assertEqual(r.word, 'continue', str(r))
