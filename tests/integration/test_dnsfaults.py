"""DNS faults between smtpguard and its resolver: a dead server, answers
later than the timeout, SERVFAIL, REFUSED, truncated UDP answers (the TCP
retry must work), answers with a wrong ID or for another question, random
bytes; and in the zone data: a CNAME loop, NODATA next to NXDOMAIN, a TXT
reason of several KB.

A proxy of our own (faultproxy.py) sits between smtpguard and the test
nsd. Every session must finish within dnsMaxWait plus a margin, a failed
DNSBL zone counts as not listed and is logged (dns_lookup_failed), forged
answers are never believed, and the daemon serves the next session.
"""

import time

from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin, MilterClient, \
    SMFIC_RCPT, postfix_macros
from faultproxy import FaultProxy
from test_dns import ZONES

BUDGET_MS = 1000
FAULT_ZONES = dict(ZONES)
FAULT_ZONES.update({
    # 192.0.2.10 listed (with a 3 KB reason: TCP), .30 a CNAME loop, .31
    # only a TXT record (NODATA for A), .32 absent (NXDOMAIN).
    'fbl.test': """
10.2.0.192   A      127.0.0.2
10.2.0.192   TXT    """ + ' '.join(['"' + 'r' * 250 + '"'] * 12) + """
30.2.0.192   CNAME  30.2.0.192.fbl.test.
31.2.0.192   TXT    "only text here"
""",
})
SQL = ("INSERT INTO dnsbl_zones (zone, weight, answers, txt) VALUES "
       "('fbl.test', 2, '127.0.0.2', 1);")


class DnsFaultTest(LoadClientMixin, IntegrationTestCase):

    dns_zones = FAULT_ZONES

    def setUp(self):
        super().setUp()
        self.proxy = FaultProxy(self.env.nsd.server)
        self.addCleanup(self.proxy.close)
        self.g = self.start_guard(
            start=False, args=['--dns-servers', self.proxy.server],
            settings={'DoFCrDNS': 0, 'DoSPF': 0, 'dnsTimeout': 300,
                      'dnsRetries': 1, 'dnsMaxWait': BUDGET_MS,
                      'dnsCacheSize': 0})
        self.g.sql_script(SQL)
        self.g.start()

    def session(self, client):
        t0 = time.monotonic()
        run = self.loadclient('--mail', 'someone@sender.test', '--rcpt',
                              'user@example.test', client=client,
                              expect_rc=None)
        took = time.monotonic() - t0
        self.assertLess(took, BUDGET_MS / 1000 + 1.0,
                        f'{client}: {took:.2f} s\n{run}')
        return run, took

    def test_server_faults(self):
        """Each fault: the listed client gets through (the zone failed, it
        does not count), within the budget, with dns_lookup_failed; then
        a good answer refuses it again."""
        took = {}
        for mode in ('pass', 'down', 'slow', 'servfail', 'refused',
                     'wrong_id', 'wrong_question', 'garbage', 'pass'):
            self.proxy.mode = mode
            since = self.g.mark()
            run, took[mode] = self.session('192.0.2.10')
            if mode == 'pass':
                self.assertEqual(run.result, 'rejected', str(run))
                self.assertIn('blocked using fbl.test',
                              run.stages('rcpt')[0].get('code', ''))
                continue
            self.assertEqual(run.result, 'accepted', f'{mode}: {run}')
            ev = self.g.wait_event('dns_lookup_failed', since,
                                   client='192.0.2.10')
            self.assertEqual(ev['name'], '10.2.0.192.fbl.test', str(ev))
            self.assertTrue(self.g.running())
        print('\nDNS fault session times (s): ' + ', '.join(
            f'{m} {t:.2f}' for m, t in took.items()))
        # Timeouts take the budget at most; rcodes come back at once.
        self.assertLess(took['servfail'], 0.5)
        self.assertLess(took['refused'], 0.5)

    def test_truncated_retried_over_tcp(self):
        """UDP answers truncated: the same verdict as without, over TCP."""
        self.proxy.mode = 'truncate'
        run, _ = self.session('192.0.2.10')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertGreater(self.proxy.count('tcp', 'truncate'), 0)
        self.assertGreater(self.proxy.count('udp', 'truncate'), 0)

    def test_zone_data_faults(self):
        """A CNAME loop and NODATA are "not listed", as NXDOMAIN is; a
        3 KB TXT reason arrives (over TCP) and is cut to fit the reply."""
        since = self.g.mark()
        for client in ('192.0.2.30', '192.0.2.31', '192.0.2.32'):
            run, _ = self.session(client)
            self.assertEqual(run.result, 'accepted', f'{client}: {run}')
        self.g.assert_no_event('dnsbl_listed', since)
        run, _ = self.session('192.0.2.10')
        self.assertEqual(run.result, 'rejected', str(run))
        code = run.stages('rcpt')[0].get('code', '')
        self.assertIn('rrrrrrrr', code)
        self.assertLess(len(code), 1000)
        self.assertGreater(self.proxy.count('tcp'), 0)

    def test_one_budget_per_callback(self):
        """dnsCheckStage=mail: the MAIL callback waits for the DNSBL
        answers and then for SPF; together at most dnsMaxWait, not
        dnsMaxWait each. With the server dead and tries longer than the
        budget, each alone would take all of it."""
        since = self.g.mark()
        self.g.set_settings({'DoSPF': 1, 'dnsCheckStage': 'mail',
                             'dnsTimeout': 3000, 'dnsRetries': 0})
        self.g.wait_event('policy_reloaded', since)
        self.proxy.mode = 'down'
        since = self.g.mark()
        t0 = time.monotonic()
        run = self.loadclient('--mail', 'someone@sender.test', '--rcpt',
                              'user@example.test', client='192.0.2.10',
                              expect_rc=None)
        took = time.monotonic() - t0
        # SPF found no answer in what was left: temperror, 451 4.4.3.
        self.assertRegex(run.stages('mail')[0].get('code', ''),
                         r'^451 4\.4\.3 ', str(run))
        self.g.wait_event('SPFtemperror', since, client='192.0.2.10')
        self.assertGreater(took, BUDGET_MS / 1000 - 0.1, str(run))
        self.assertLess(took, BUDGET_MS / 1000 + 0.5,
                        f'{took:.2f} s: two budgets?\n{run}')
        self.assertTrue(self.g.running())

    def overlap_session(self, client, pause):
        """One session by hand: CONNECT, `pause` seconds of a client that
        is still talking, then HELO, MAIL and RCPT; the seconds the RCPT
        callback took (where dnsCheckStage=rcpt collects the answers)."""
        c = MilterClient(self.port)
        try:
            c.negotiate()
            self.assertEqual(c.connect(client, macros=postfix_macros(
                client)).word, 'continue')
            time.sleep(pause)
            self.assertEqual(c.helo().word, 'continue')
            self.assertEqual(c.mail('someone@sender.test').word, 'continue')
            t0 = time.monotonic()
            c.send(SMFIC_RCPT, b'<user@example.test>\0')
            reply = c.reply()
            took = time.monotonic() - t0
            c.quit()
        finally:
            c.close()
        return reply, took

    def test_lookups_overlap_the_dialogue(self):
        """The lookups start at CONNECT and run while the client talks.
        With every answer held back 0.6 s, a client that takes 0.9 s to
        reach RCPT finds the verdict ready (the RCPT callback waits for
        nothing); one that hurries waits for the rest of the 0.6 s.
        192.0.2.32 is not listed: one A query, no follow-up (a listed
        client's TXT reason is asked when the A answer has been taken, at
        the next callback)."""
        since = self.g.mark()
        self.g.set_settings({'dnsTimeout': 2000, 'dnsMaxWait': 3000})
        self.g.wait_event('policy_reloaded', since)
        self.proxy.delay = 0.6
        self.proxy.mode = 'slow'
        reply, took = self.overlap_session('192.0.2.32', 0.9)
        self.assertEqual(reply.word, 'continue', reply)
        self.assertLess(took, 0.25, f'RCPT waited {took:.2f} s after a '
                        '0.9 s dialogue: the lookup did not start at CONNECT')
        reply, took = self.overlap_session('192.0.2.32', 0.0)
        self.assertEqual(reply.word, 'continue', reply)
        self.assertGreater(took, 0.35, f'RCPT waited only {took:.2f} s')
        self.assertLess(took, 1.0, f'RCPT waited {took:.2f} s')
