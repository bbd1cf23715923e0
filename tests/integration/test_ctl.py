"""smtpguardctl against a running smtpguard: policies, lists, bans,
counters, the catalogue, a locked database, and the mail.log report.

The daemon runs (over the milter protocol, no Postfix: sg-loadclient plays
the MTA); every change smtpguardctl makes must reach it without a restart,
and every refused change must leave the database as it was.
"""

import gzip
import json
import os
import queue
import sqlite3
import subprocess
import threading
import time

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

    def test_network_lists(self):
        """noprocessing, whitelist, ispip and relay: add, show, remove;
        each list shows only its own entries."""
        g = self.start_guard()
        tables = {'noprocessing': ('ip_lists', 'noProcessingIPs'),
                  'whitelist': ('ip_lists', 'whiteListedIPs'),
                  'ispip': ('ip_lists', 'ispip'),
                  'relay': ('relay_networks', None)}
        # The defaults (noprocessing: loopback) stay as they are.
        initial = {name: [r['entry'] for r in
                          self.ctl_json(g, 'list', 'show', name)]
                   for name in tables}
        before = self.db_dump(g)
        for name in tables:
            for bad, why in (('198.51.100.1/24', 'host bits'),
                             ('198.51.100.0/33', ''), ('example.test', '')):
                p = self.ctl(g, 'list', 'add', name, bad, rc=1)
                self.assertIn(why, p.stderr)
                self.assertIn('nothing changed', p.stderr)
        self.assertEqual(self.db_dump(g), before)
        for i, name in enumerate(tables, 1):
            self.ctl(g, 'list', 'add', name, f'198.51.{i}.0/24')
            self.ctl(g, 'list', 'add', name, f'2001:DB8:{i}::/48')
        for i, (name, (table, lst)) in enumerate(tables.items(), 1):
            self.assertEqual(
                sorted(r['entry'] for r in
                       self.ctl_json(g, 'list', 'show', name)),
                sorted(initial[name] + [f'198.51.{i}.0/24',
                                        f'2001:db8:{i}::/48']), name)
            where = f" WHERE list = '{lst}'" if lst else ''
            self.assertEqual(len(g.sql(f'SELECT network FROM {table}'
                                       f'{where}')),
                             len(initial[name]) + 2, name)
            p = self.ctl(g, 'list', 'show', name)
            self.assertIn(f'2001:db8:{i}::/48', p.stdout)
        for i, name in enumerate(tables, 1):
            self.ctl(g, 'list', 'remove', name, f'198.51.{i}.0/24')
            # Another list's entry is not this list's.
            other = i % len(tables) + 1
            p = self.ctl(g, 'list', 'remove', name, f'2001:db8:{other}::/48',
                         rc=1)
            self.assertIn('no entry', p.stderr)
            self.assertEqual(sorted(r['entry'] for r in
                                    self.ctl_json(g, 'list', 'show', name)),
                             sorted(initial[name] + [f'2001:db8:{i}::/48']))
            self.ctl(g, 'list', 'remove', name, f'2001:db8:{i}::/48')
            self.assertEqual([r['entry'] for r in
                              self.ctl_json(g, 'list', 'show', name)],
                             initial[name])
            p = self.ctl(g, 'list', 'remove', name, f'2001:db8:{i}::/48',
                         rc=1)
            self.assertIn('no entry', p.stderr)

    def test_dnsbl_columns(self):
        """Every column of dnsbl_zones from the command line, validated."""
        g = self.start_guard()
        since = g.mark()
        before = self.db_dump(g)
        for args, rc, why in (
                (('z.example.test', '--txt', 'maybe'), 1, 'yes or no'),
                (('z.example.test', '--ipv6', '2'), 1, 'yes or no'),
                (('z.example.test', '--weight', '0'), 1, 'not 0'),
                (('z.example.test', '--weight', '2000000'), 1,
                 'from -1000000 to 1000000'),
                (('z.example.test', '--weight', '99999999999999999999'), 1,
                 'whole number'),
                (('z.example.test', '--answers', '127.0.0.[9..2]'), 1,
                 'a <= b'),
                (('z.example.test', '--comment', 'two\nlines'), 1,
                 'control character'),
                (('nodots', '--txt', 'no'), 1, 'two labels'),
                (('z.example.test', '--colour', 'red'), 2, 'unknown'),
                (('z.example.test', '--txt'), 2, 'needs a value'),
                (('z.example.test', '3', '--weight', '4'), 2, 'twice'),
                (('z.example.test=127.0.0.2*3', '--weight', '4'), 2,
                 'already says')):
            p = self.ctl(g, 'list', 'add', 'dnsbl', *args, rc=rc)
            self.assertIn(why, p.stderr, args)
            if rc == 1:
                self.assertIn('nothing changed', p.stderr, args)
        self.assertEqual(self.db_dump(g), before)

        def zone(name):
            return [z for z in self.ctl_json(g, 'list', 'show', 'dnsbl')
                    if z['zone'] == name][0]
        self.ctl(g, 'list', 'add', 'dnsbl', 'BL2.example.test',
                 '--weight', '4', '--answers', '127.0.0.2', '--txt', 'no',
                 '--ipv6', 'no', '--comment', 'a "test" zone')
        z = zone('bl2.example.test')
        self.assertEqual((z['weight'], z['answers'], z['txt'], z['ipv6'],
                          z['comment']),
                         (4, '127.0.0.2', 0, 0, 'a "test" zone'))
        # Added again: what is not given takes its default; the comment
        # stays.
        self.ctl(g, 'list', 'add', 'dnsbl', 'bl2.example.test', '--txt',
                 'yes')
        z = zone('bl2.example.test')
        self.assertEqual((z['weight'], z['answers'], z['txt'], z['ipv6'],
                          z['comment']), (1, '', 1, 1, 'a "test" zone'))
        # postscreen's form with the flags; a negative weight: allow list.
        self.ctl(g, 'list', 'add', 'dnsbl', 'wl.example.test=127.0.0.[1..3]'
                 '*-5', '--ipv6', 'off')
        z = zone('wl.example.test')
        self.assertEqual((z['weight'], z['answers'], z['txt'], z['ipv6']),
                         (-5, '127.0.0.[1..3]', 1, 0))
        p = self.ctl(g, 'list', 'show', 'dnsbl')
        self.assertRegex(p.stdout, r'ZONE\s+WEIGHT\s+ANSWERS\s+TXT\s+IPV6\s+'
                         r'COMMENT')
        g.wait_event('policy_reloaded', since)
        g.assert_no_event('list_entry_invalid', since)
        self.ctl(g, 'list', 'remove', 'dnsbl', 'WL.example.test')
        self.assertEqual([z['zone'] for z in
                          self.ctl_json(g, 'list', 'show', 'dnsbl')],
                         ['bl2.example.test'])

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

    def test_counters_exact_key(self):
        """counters KEY finds KEY's own windows: '_' and '%' are not
        patterns, and the end of another key is not KEY."""
        g = self.start_guard()
        now = int(time.time())
        for key, count in (('mail:sender:a_b@example.test', 3),
                           ('mail:sender:axb@example.test', 5),
                           ('rcpt:sender:a%b@example.test', 7),
                           ('conn:2001:db8::1', 9)):
            g.sql('INSERT INTO rate_windows VALUES (?, ?, 3600, ?)',
                  (key, now, count))

        def windows(key):
            return sorted((c['key'], c['count'])
                          for c in self.ctl_json(g, 'counters', key)
                          if c['what'] == 'window')
        self.assertEqual(windows('a_b@example.test'),
                         [('mail:sender:a_b@example.test', 3)])
        self.assertEqual(windows('A_B@Example.TEST'),
                         [('mail:sender:a_b@example.test', 3)])
        self.assertEqual(windows('a%b@example.test'),
                         [('rcpt:sender:a%b@example.test', 7)])
        self.assertEqual(windows('a%'), [])
        self.assertEqual(windows('%'), [])
        self.assertEqual(windows('db8::1'), [])
        self.assertEqual(windows('2001:db8::1'), [('conn:2001:db8::1', 9)])
        p = self.ctl(g, 'counters', '_@example.test')
        self.assertIn('nothing counted for _@example.test', p.stdout)

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

    def report(self, *args, rc=0):
        argv = [harness.ctl_binary(), 'report'] + list(args)
        p = subprocess.run(argv, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, rc, f'{argv}: {p.stdout}{p.stderr}')
        return p.stdout.decode('utf-8')     # strict: must be UTF-8

    def test_report_json_forged(self):
        """A forged line with quotes, backslashes, control bytes and
        bytes that are not UTF-8 still gives valid JSON."""
        path = os.path.join(self.env.root, 'forged.log')
        with open(path, 'wb') as f:
            f.write(b'2026-11-22T10:00:00+00:00"\x02 mx smtpguard[7]: '
                    b'NOQUEUE: id=00200159 event=smtp_connection_denied '
                    b'severity=notice action=reject client=a"b\\c\x01\x1f\xff '
                    b'sender="x\\"y\\\\z@d\\"o\x7fm" msg="m"\n'
                    b'2026-11-22T10:00:01+00:00 mx smtpguard[7]: NOQUEUE: '
                    b'id=00230201 event=dnsbl_listed severity=notice '
                    b'action=reject client=192.0.2.1 zone=bl."\\\tx '
                    b'msg="m"\n')
        r = json.loads(self.report('--json', path))
        self.assertEqual(r['refusals'], 2)
        self.assertEqual(r['first'], '2026-11-22T10:00:00+00:00"\x02')
        clients = dict(r['Clients refused'])
        self.assertEqual(clients['a"b\\c\x01\x1f\ufffd'], 1)
        self.assertEqual(dict(r['Senders refused']),
                         {'x\\"y\\\\z@d\\"o\x7fm': 1})
        self.assertEqual(dict(r['Sender domains refused']),
                         {'d\\"o\x7fm': 1})
        self.assertEqual(dict(r['DNSBL/DNSWL hits by zone']),
                         {'bl."\\\tx': 1})

    def test_report_text_forged(self):
        """For people, a forged line's control bytes (a terminal escape
        sequence, say) are shown as '?', never passed to the terminal."""
        path = os.path.join(self.env.root, 'forged-text.log')
        with open(path, 'wb') as f:
            f.write(b'2026-11-22T10:00:00+00:00 mx smtpguard[7]: '
                    b'NOQUEUE: id=00200159 event=smtp_connection_denied '
                    b'severity=notice action=reject client=\x1b]2;owned\x07 '
                    b'sender=a\x1b[2Jb@example.com msg="m"\n')
        argv = [harness.ctl_binary(), 'report', path]
        p = subprocess.run(argv, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        for c in list(range(0x20)) + [0x7f]:
            if c != 0x0a:
                self.assertNotIn(bytes([c]), p.stdout, f'byte {c:#x}')
        self.assertIn(b'client=?]2;owned?', p.stdout)
        self.assertIn(b'a?[2Jb@example.com', p.stdout)

    def start_follow(self, path, *args):
        """report --follow PATH; its stdout lines arrive in a queue."""
        proc = subprocess.Popen([harness.ctl_binary(), 'report', '--follow']
                                + list(args) + [path],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.addCleanup(proc.stderr.close)
        self.addCleanup(proc.stdout.close)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.kill)
        lines = queue.Queue()

        def read():
            for line in proc.stdout:
                lines.put(line.decode('utf-8'))
        threading.Thread(target=read, daemon=True).start()

        def next_line(timeout=5):
            try:
                return lines.get(timeout=timeout)
            except queue.Empty:
                self.fail(f'no output from report --follow in {timeout} s')
        return proc, lines, next_line

    @staticmethod
    def refusal(client, t='10:00:01'):
        return (f'2026-11-22T{t}+00:00 mx smtpguard[7]: NOQUEUE: '
                f'id=00200159 event=smtp_connection_denied severity=notice '
                f'action=reject client={client} service=smtp session=1 '
                f'entry=203.0.113.0/24 msg="Connection from {client} '
                f'denied"\n')

    def test_report_follow(self):
        """--follow: the lines already reported are not shown again; new
        lines are shown once and whole, however they are written; a
        rotation and a truncation are followed."""
        path = os.path.join(self.env.root, 'follow.log')
        with open(path, 'w') as f:
            f.write('2026-11-22T10:00:00+00:00 mx postfix/smtpd[1]: hello\n'
                    + self.refusal('203.0.113.1') + self.refusal('203.0.113.2'))
        proc, lines, next_line = self.start_follow(path)
        before = []
        while 'Following' not in (before[-1] if before else ''):
            before.append(next_line())
        self.assertIn('2 refusals', ''.join(before))
        self.assertEqual(sum('client=203.0.113.1' in x for x in before), 1)

        def append(text, name=path):
            with open(name, 'a') as f:
                f.write(text)
        live = []
        append(self.refusal('198.51.100.9'))
        live.append(next_line())
        self.assertIn('smtp_connection_denied action=reject '
                      'client=198.51.100.9', live[-1])
        # Half a line, a few polls, then the rest: one whole line.
        line = self.refusal('198.51.100.10')
        cut = line.index('198.51.100.10') + 6
        append(line[:cut])
        time.sleep(1.6)
        append(line[cut:])
        live.append(next_line())
        self.assertRegex(live[-1], r'client=198\.51\.100\.10$')
        # Rotated: the old file is read to its end (its writer has not
        # moved yet), then the new one from its start.
        os.rename(path, path + '.1')
        append(self.refusal('198.51.100.11'), path + '.1')
        append(self.refusal('198.51.100.12'))
        live.append(next_line())
        live.append(next_line())
        # Truncated (copytruncate): read again from the start.
        time.sleep(1.2)
        with open(path, 'w'):
            pass
        time.sleep(1.2)
        append(self.refusal('198.51.100.13'))
        live.append(next_line())
        time.sleep(1.5)
        self.assertTrue(lines.empty(), lines.queue)
        self.assertEqual([x.split('client=')[1].split()[0] for x in live],
                         ['198.51.100.9', '198.51.100.10', '198.51.100.11',
                          '198.51.100.12', '198.51.100.13'])
        proc.kill()
        proc.wait()
        err = proc.stderr.read().decode()
        self.assertIn('was rotated', err)
        self.assertIn('was truncated', err)

    def test_report_follow_json(self):
        """--follow --json: the summary on one line, then one object per
        new refusal (JSON Lines), valid even for a forged line."""
        path = os.path.join(self.env.root, 'follow-json.log')
        with open(path, 'w') as f:
            f.write(self.refusal('203.0.113.1'))
        proc, lines, next_line = self.start_follow(path, '--json')
        summary = json.loads(next_line())
        self.assertEqual(summary['refusals'], 1)
        with open(path, 'ab') as f:
            f.write(self.refusal('198.51.100.9', '10:00:05').encode())
            f.write(b'2026-11-22T10:00:06+00:00 mx smtpguard[7]: NOQUEUE: '
                    b'id=00200159 event=smtp_connection_denied '
                    b'severity=notice action=reject client=a"\\\x01\xff '
                    b'msg="x\\"y"\n')
            f.write(b'2026-11-22T10:00:07+00:00 mx postfix/qmgr[2]: '
                    b'ABC: removed\n')
        ev = json.loads(next_line())
        self.assertEqual((ev['time'], ev['id'], ev['event'], ev['action'],
                          ev['client'], ev['entry']),
                         ('2026-11-22T10:00:05+00:00', '00200159',
                          'smtp_connection_denied', 'reject', '198.51.100.9',
                          '203.0.113.0/24'))
        ev = json.loads(next_line())
        self.assertEqual((ev['client'], ev['msg']),
                         ('a"\\\x01\ufffd', 'x\\"y'))
        time.sleep(1.2)
        self.assertTrue(lines.empty(), lines.queue)
        # Only a file can be followed, and not a compressed one.
        with gzip.open(path + '.gz', 'wt') as f:
            f.write(self.refusal('203.0.113.1'))
        self.assertEqual(subprocess.run(
            [harness.ctl_binary(), 'report', '--follow', path + '.gz'],
            capture_output=True).returncode, 2)
        p = subprocess.run([harness.ctl_binary(), 'report', '--follow'],
                           capture_output=True, text=True, input='')
        self.assertEqual(p.returncode, 2)
        self.assertIn('not standard input', p.stderr)


if __name__ == '__main__':
    import unittest
    unittest.main()
