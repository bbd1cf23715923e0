"""smtpguardctl against a running smtpguard: policies, lists, bans,
counters, the catalogue, a locked database, and the mail.log report.

The daemon runs (over the milter protocol, no Postfix: sg-loadclient plays
the MTA); every change smtpguardctl makes must reach it without a restart,
and every refused change must leave the database as it was.
"""

import gzip
import json
import os
import sqlite3
import subprocess
import threading

import harness
from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin


class CtlTest(LoadClientMixin, IntegrationTestCase):

    def ctl(self, g, *args, rc=0, stdin=None):
        argv = [harness.ctl_binary(), '-d', g.db] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                           input=stdin)
        self.assertEqual(p.returncode, rc, f'{argv}: {p.stdout}{p.stderr}')
        return p

    def ctl_json(self, g, *args):
        return json.loads(self.ctl(g, '--json', *args).stdout)

    def db_dump(self, g):
        con = sqlite3.connect(g.db)
        try:
            return '\n'.join(con.iterdump())
        finally:
            con.close()

    def test_policy(self):
        g = self.start_guard()
        since = g.mark()
        p = self.ctl(g, 'policy', 'get', 'maxSMTPipSessions')
        self.assertRegex(p.stdout, r'maxSMTPipSessions\s+\d+')
        self.ctl(g, 'policy', 'set', 'MaxErrors', '3')
        self.assertEqual(g.sql("SELECT value FROM settings WHERE name = "
                               "'MaxErrors'"), [('3',)])
        g.wait_event('policy_reloaded', since)
        # It is in force: the fourth unknown command closes the session.
        run = self.loadclient('--unknown', 'A', '--unknown', 'B', '--unknown',
                              'C', '--unknown', 'D', client='192.0.2.30')
        self.assert_closed_at(run, 'unknown', '00200158')
        # Refused, with the reason, and nothing changes.
        before = self.db_dump(g)
        p = self.ctl(g, 'policy', 'set', 'MaxErrors', 'many', rc=1)
        self.assertIn('not a non-negative whole number', p.stderr)
        p = self.ctl(g, 'policy', 'set', 'DoSPF', '7', rc=1)
        self.assertIn('mode out of range', p.stderr)
        p = self.ctl(g, 'policy', 'set', 'maxerrors', '5', rc=1)
        self.assertIn('did you mean MaxErrors', p.stderr)
        p = self.ctl(g, 'policy', 'set', 'dnsServers', 'ns.example', rc=1)
        self.assertIn('not an IPv4 or IPv6 address', p.stderr)
        self.assertEqual(self.db_dump(g), before)
        self.ctl(g, 'policy', 'reset', 'MaxErrors')
        values = {r['name']: r['value']
                  for r in self.ctl_json(g, 'policy', 'list')}
        self.assertEqual(values['MaxErrors'], '10')
        self.assertEqual(values['relayPolicy'], 'rules')

    def test_lists(self):
        g = self.start_guard()
        since = g.mark()
        before = self.db_dump(g)
        for args, why in (
                (('deny', '192.0.2.300'), 'not'),
                (('deny', '192.0.2.1/24'), 'host bits'),
                (('local-domains', 'exa mple.test'), 'not a domain'),
                (('local-addresses', 'nobody'), 'local-part@domain'),
                (('catchalls', 'example.test', 'not an address'),
                 'local-part@domain'),
                (('dnsbl', 'bl.example.test=127.0.0.[2..]*2'), 'a <= b'),
                (('dnsbl', 'bl.example.test', 'x'), 'whole number')):
            p = self.ctl(g, 'list', 'add', *args, rc=1)
            self.assertIn(why, p.stderr, args)
            self.assertIn('nothing changed', p.stderr)
        self.assertEqual(self.db_dump(g), before)
        self.ctl(g, 'list', 'add', 'deny', '192.0.2.0/24')
        self.ctl(g, 'list', 'add', 'local-domains', 'Example.TEST.')
        self.ctl(g, 'list', 'add', 'catchalls', 'example.test',
                 'Bucket@Example.test')
        self.ctl(g, 'list', 'add', 'dnsbl',
                 'bl.example.test=127.0.0.[2..11]*3')
        self.ctl(g, 'list', 'add', 'exempt-domains', 'bulk.example')
        self.assertEqual(
            [(r['entry'], r['value']) for r in
             self.ctl_json(g, 'list', 'show', 'catchalls')],
            [('example.test', 'bucket@example.test')])
        zones = self.ctl_json(g, 'list', 'show', 'dnsbl')
        self.assertEqual((zones[0]['zone'], zones[0]['weight'],
                          zones[0]['answers']),
                         ('bl.example.test', 3, '127.0.0.[2..11]'))
        self.assertEqual(self.ctl_json(g, 'list', 'show', 'local-domains')
                         [0]['entry'], 'example.test')
        # The running daemon refuses the denied network now.
        g.wait_event('policy_reloaded', since)
        harness.wait_until(
            lambda: self.loadclient(client='192.0.2.9', expect_rc=None)
            .result == 'rejected', 5, 'the deny entry to take effect')
        self.ctl(g, 'list', 'remove', 'deny', '192.0.2.0/24')
        p = self.ctl(g, 'list', 'remove', 'deny', '192.0.2.0/24', rc=1)
        self.assertIn('no entry', p.stderr)

    def test_bans_counters_purge(self):
        g = self.start_guard(settings={'maxSMTPipConnects': 2,
                                       'maxSMTPipDuration': 60})
        for _ in range(3):
            self.loadclient(client='192.0.2.40', expect_rc=None)
        bans = harness.wait_until(
            lambda: self.ctl_json(g, 'bans'), 5, 'a ban in the database')
        self.assertEqual(bans[0]['key'], '192.0.2.40')
        self.assertEqual(bans[0]['reason'], '00200154')
        self.assertEqual(bans[0]['event'], 'smtp_ip_frequency_exceeded')
        self.assertGreater(bans[0]['remaining'], 3000)
        counters = self.ctl_json(g, 'counters', '192.0.2.40')
        self.assertIn('ban ip', [c['what'] for c in counters])
        # Unban: the daemon lets the client in again.
        since = g.mark()
        self.ctl(g, 'unban', '192.0.2.40')
        self.assertEqual(self.ctl_json(g, 'bans'), [])
        harness.wait_until(
            lambda: self.loadclient(client='192.0.2.40', expect_rc=None)
            .result == 'accepted', 5, 'the unban to take effect')
        g.assert_no_event('internal_error', since)
        p = self.ctl(g, 'unban', '192.0.2.99', rc=1)
        self.assertIn('no ban on 192.0.2.99', p.stderr)
        g.sql("INSERT INTO bans VALUES ('ip', '198.51.100.1', '00200154', 1, "
              "2)")
        p = self.ctl(g, 'purge')
        self.assertIn('purged 1 expired ban', p.stdout)

    def test_events(self):
        g = self.start_guard()
        events = self.ctl_json(g, 'events')
        self.assertIn('00230106', [e['id'] for e in events])
        ev = self.ctl_json(g, 'event', 'DNSBLfailed')
        self.assertEqual(ev['ID'], '00230106')
        self.assertEqual(ev['Default Severity'], 'warning')
        self.assertIn('<zone>', ev['Log Message'])
        p = self.ctl(g, 'event', '00200150')
        self.assertIn('max_smtp_sessions_reached', p.stdout)
        self.assertIn('Recommended Action', p.stdout)
        before = self.db_dump(g)
        p = self.ctl(g, 'event-override', 'rcpt_local_delivery', '--action',
                     'monitor', rc=1)
        self.assertIn('refuses nothing', p.stderr)
        p = self.ctl(g, 'event-override', '00200150', '--severity', 'loud',
                     rc=1)
        self.assertIn('severity', p.stderr)
        self.assertEqual(self.db_dump(g), before)
        since = g.mark()
        self.ctl(g, 'event-override', 'max_smtp_sessions_reached',
                 '--severity', 'err', '--action', 'monitor')
        ev = self.ctl_json(g, 'event', '00200150')
        self.assertEqual((ev['Severity override'], ev['Action override']),
                         ('error', 'monitor'))
        g.wait_event('policy_reloaded', since)
        self.ctl(g, 'event-reset', '00200150')
        self.assertEqual(self.ctl_json(g, 'event', '00200150')
                         ['Action override'], '')

    def test_changes_under_load(self):
        """smtpguardctl writes while the daemon serves a load and flushes
        its counters: no change fails, the database stays intact."""
        g = self.start_guard(settings={'maxSMTPipConnects': 5})
        argv = [self.loadclient_path, '-s', f'inet:{self.port}@127.0.0.1',
                '-c', '8', '-t', '6', '--clients', '300']
        load = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            for i in range(40):
                self.ctl(g, 'policy', 'set', 'maxSMTPipSessions',
                         str(10 + i % 5))
                self.ctl(g, 'list', 'add', 'whitelist', f'198.51.100.{i}')
                self.ctl_json(g, 'bans')
        finally:
            load.wait(60)
        self.assertEqual(len(self.ctl_json(g, 'list', 'show', 'whitelist')),
                         40)
        self.assertEqual(g.sql('PRAGMA integrity_check'), [('ok',)])
        self.assertTrue(g.running())

    def test_locked_database(self):
        g = self.start_guard()
        held = threading.Event()
        release = threading.Event()

        def hold():
            con = sqlite3.connect(g.db, timeout=10)
            con.execute('BEGIN IMMEDIATE')
            held.set()
            release.wait(20)
            con.rollback()
            con.close()
        t = threading.Thread(target=hold)
        t.start()
        try:
            self.assertTrue(held.wait(10))
            p = self.ctl(g, '--wait', '1', 'policy', 'set', 'MaxErrors', '4',
                         rc=3)
            self.assertIn('locked by another writer', p.stderr)
            self.assertIn('nothing changed', p.stderr)
            p = self.ctl(g, '--wait', 'soon', 'policy', 'set', 'MaxErrors',
                         '4', rc=2)
            self.assertIn("--wait 'soon' is not a number", p.stderr)
        finally:
            release.set()
            t.join()
        # Once the writer is gone, it goes through (waiting as needed).
        self.ctl(g, 'policy', 'set', 'MaxErrors', '4')
        self.assertTrue(g.running())
        p = subprocess.run([harness.ctl_binary(), '-d', '/nonexistent/x.db',
                            'bans'], capture_output=True, text=True)
        self.assertEqual(p.returncode, 3)
        self.assertIn('no database at /nonexistent/x.db', p.stderr)

    def test_report(self):
        g = self.start_guard(settings={'maxSMTPipConnects': 1})
        since = g.mark()
        for client in ('192.0.2.50', '192.0.2.50', '192.0.2.51'):
            self.loadclient(client=client, expect_rc=None)
        g.wait_event('smtp_ip_frequency_exceeded', since)
        self.env.syslog.barrier()
        log = os.path.join(self.env.root, 'syslog', 'mail.log')
        with open(log, 'rb') as f:          # this test's lines only
            f.seek(since)
            ours = f.read().decode('utf-8', 'replace')
        # Other programs' lines, garbage and a truncated smtpguard line.
        noise = ('Nov 22 10:00:00 mx postfix/smtpd[1]: connect from '
                 'unknown[192.0.2.50]\n\x00\xff garbage\n'
                 '2026-11-22T10:00:00+00:00 mx smtpguard[1]: NOQUEUE: '
                 'id=00200154 event=smtp_ip_frequency_exceeded msg="cut\n')
        path = os.path.join(self.env.root, 'mixed.log')
        with open(path, 'w') as f:
            f.write(noise + ours)
        with gzip.open(path + '.1.gz', 'wt') as f:
            f.write(ours)
        r = json.loads(self.ctl(g, 'report', '--json', '--top', '100000',
                                path, path + '.1.gz')
                       .stdout)
        self.assertEqual(r['malformed'], 1)
        self.assertGreaterEqual(r['events']['00200154'], 2)
        self.assertEqual(dict(r['Clients refused'])['192.0.2.50'] % 2, 0)
        self.assertIn('smtp_ip_frequency_exceeded', dict(r['Bans issued']))
        # People's view: every refusal on one line, the client drill-down.
        p = self.ctl(g, 'report', path)
        self.assertRegex(p.stdout, r'smtp_ip_frequency_exceeded '
                         r'action=close client=192\.0\.2\.50')
        self.assertIn('Clients refused:', p.stdout)
        p = self.ctl(g, 'report', '--client', '192.0.2.51', path)
        self.assertNotIn('client=192.0.2.50', p.stdout)
        # Standard input, and a time range that excludes everything.
        r = json.loads(self.ctl(g, 'report', '--json', '--until',
                                '2000-01-01', stdin=ours).stdout)
        self.assertEqual(r['refusals'], 0)
        self.assertGreater(r['smtpguard_lines'], 0)
        p = self.ctl(g, 'report', '--since', 'yesterday', path, rc=2)
        self.assertIn('is not a time', p.stderr)
        for opt, bad in (('--top', '1e3'), ('--top', '-1'),
                         ('--since', '-5x')):
            p = self.ctl(g, 'report', opt, bad, path, rc=2)
            self.assertIn('is not a whole number', p.stderr)
        # The traditional stamp right at the end of a line (no NUL after
        # it) is read within the line: found by fuzz-logline.
        r = json.loads(self.ctl(g, 'report', '--json',
                                stdin='Nov 22 10:00:0').stdout)
        self.assertEqual(r['smtpguard_lines'], 0)

    def test_report_follow(self):
        g = self.start_guard()
        path = os.path.join(self.env.root, 'follow.log')
        with open(path, 'w') as f:
            f.write('2026-11-22T10:00:00+00:00 mx postfix/smtpd[1]: hello\n')
        proc = subprocess.Popen([harness.ctl_binary(), '-d', g.db, 'report',
                                 '--follow', path], stdout=subprocess.PIPE,
                                text=True)
        self.addCleanup(proc.kill)
        line = ('2026-11-22T10:00:01+00:00 mx smtpguard[7]: NOQUEUE: '
                'id=00200159 event=smtp_connection_denied severity=notice '
                'action=reject client=203.0.113.9 service=smtp session=1 '
                'entry=203.0.113.0/24 msg="Connection from 203.0.113.9 '
                'denied"\n')
        harness.wait_until(lambda: 'Following' in proc.stdout.readline(), 5,
                           'report --follow to start following')
        with open(path, 'a') as f:
            f.write(line)
        got = harness.wait_until(lambda: proc.stdout.readline(), 5,
                                 'the new line to be reported')
        self.assertIn('smtp_connection_denied action=reject '
                      'client=203.0.113.9', got)


if __name__ == '__main__':
    import unittest
    unittest.main()
