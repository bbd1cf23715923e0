"""Session limits through a real Postfix: SMTP replies and syslog lines.

Each test starts its own smtpguard with a fresh database and its policy
(IntegrationTestCase.start_guard) and uses its own client addresses
(127.<test>.x.y), so tests do not depend on each other.

What Postfix shows the client (Postfix 3.7, asserted below):
  * a refusal at connect never reaches the client with smtpguard's text:
    a 421 becomes the greeting "421 <myhostname> Service unavailable - try
    again later" and the connection is closed; a 5xx becomes the greeting
    "554 <myhostname> ESMTP not accepting connections", EHLO still gets
    250, and MAIL is refused with smtpguard's own reply (event ID). Postfix
    logs smtpguard's reply ("milter-reject: CONNECT ... [smtpguard ID]"),
    which the tests check in its maillog;
  * later stages (MAIL, unknown commands) pass smtpguard's reply through.
  * XCLIENT re-runs the milter connect with the new address (a new
    smtpguard session; the old one is closed).
"""

import grp
import os
import re
import sqlite3
import stat
import time
import unittest

import harness
from harness import IntegrationTestCase, wait_until


class SessionLimitsTest(IntegrationTestCase):

    # ------------------------------------------------------------ helpers

    def maillog_mark(self):
        return harness.LogFile(self.env.postfix.maillog).mark()

    def assert_connect_refused(self, client, code, event_id, addr, since,
                               stage='CONNECT'):
        """Greeting (or XCLIENT reply) `code`, smtpguard's reply with the
        event ID in Postfix's log, and for 421 a closed connection."""
        reply = client.greeting if stage == 'CONNECT' else client.last
        self.assertEqual(reply.code, code, f'{stage} reply {reply}')
        self.env.postfix.wait_maillog(
            rf'milter-reject: {stage} from \S+\[{re.escape(addr)}\]: '
            rf'{code} \d\.\d\.\d .*\[smtpguard {event_id}\]', since)
        if code == 421:
            self.assertTrue(client.wait_closed(), 'connection not closed '
                            'after 421')

    def open_session(self, source, service='svcA'):
        """A session held open after EHLO; fails unless accepted."""
        c = self.client(source, service, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        return c

    def xclient_session(self, source, addr):
        """A session that continues as `addr` (XCLIENT after EHLO);
        c.last is the reply to XCLIENT."""
        c = self.client(source, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        c.last = c.xclient(addr)
        return c

    def wait_disconnect(self, source, since):
        """Postfix has logged the end of the session from `source`."""
        self.env.postfix.wait_maillog(
            rf'disconnect from \S+\[{re.escape(source)}\]', since)

    def connect_until_accepted(self, source, service='svcA', timeout=3.0):
        """A new session is accepted within timeout (smtpguard sees the
        close of an earlier session asynchronously: retry briefly)."""
        def attempt():
            c = self.client(source, service)
            if c.greeting.code == 220:
                return c
            c.close()
            return None
        return wait_until(attempt, timeout, f'a session from {source} to '
                          f'be accepted', interval=0.1)

    def ip_rate(self, guard):
        return {k[len('conn:'):]: v for k, v in guard.sql(
            "SELECT key, count FROM rate_windows WHERE key LIKE 'conn:%'")}

    # ------------------------------------------------------------ tests

    def test_normal_mail_accepted(self):
        g = self.start_guard()
        since = g.mark()
        c = self.client('127.1.0.1', expect_greeting=220)
        r = c.send_mail()
        self.assertEqual(r.code, 250, f'end of DATA: {r}')
        self.assertRegex(r.text, r'queued as')
        c.quit()
        self.env.syslog.barrier()
        refusals = [e.line for e in g.events(since)
                    if e.get('action') in ('reject', 'tempfail', 'close')]
        self.assertEqual(refusals, [])
        # The milter really is consulted: without it Postfix tempfails.
        self.assertEqual(g.stop(), 0)
        c = self.client('127.1.0.1')
        r = c.greeting if c.greeting.code != 220 else c.send_mail()
        self.assertIn(r.code, (421, 451), f'without smtpguard: {r}')

    def test_deny_list_blocks(self):
        src = '127.2.0.1'
        g = self.start_guard(ip_lists=[
            ('denySMTPConnectionsFromAlways', f'{src}/32')])
        since, ml = g.mark(), self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 554, '00200159', src, ml)
        # Postfix keeps the session, answers EHLO, refuses each command
        # with smtpguard's reply.
        self.assertEqual(c.ehlo().code, 250)
        r = c.mail('sender@sender.test')
        self.assertEqual(r.code, 554, r)
        self.assertRegex(r.text, r'^5\.7\.1 .*\[smtpguard 00200159\]$')
        c.quit()
        ev = g.wait_event('smtp_connection_denied', since, client=src)
        self.assertEqual(ev['id'], '00200159')
        self.assertEqual(ev['action'], 'reject')
        self.assertEqual(ev['entry'], f'{src}/32')
        self.assertEqual(ev['service'], 'svcA')
        # Other addresses are not affected.
        self.assertEqual(self.client('127.2.0.2').send_mail().code, 250)

    def test_deny_list_monitor(self):
        src = '127.2.1.1'
        g = self.start_guard(
            settings={'DoDenyConnect': 2},
            ip_lists=[('denySMTPConnectionsFromAlways', '127.2.1.0/24')])
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.send_mail().code, 250)
        ev = g.wait_event('00200159', since, client=src)
        self.assertEqual(ev['action'], 'monitor')
        self.assertEqual(ev['entry'], '127.2.1.0/24')

    def test_global_concurrency(self):
        g = self.start_guard(settings={'maxSMTPSessions': 2})
        since, ml = g.mark(), self.maillog_mark()
        a = self.open_session('127.3.0.1')
        b = self.open_session('127.3.0.2', service='svcB')
        c = self.client('127.3.0.3')
        self.assert_connect_refused(c, 421, '00200150', '127.3.0.3', ml)
        ev = g.wait_event('max_smtp_sessions_reached', since,
                          client='127.3.0.3')
        self.assertEqual(ev['id'], '00200150')
        self.assertEqual(ev['scope'], 'global')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['max_sessions'], '2')
        # Closing one session makes room again.
        ml = self.maillog_mark()
        a.quit()
        self.wait_disconnect('127.3.0.1', ml)
        d = self.connect_until_accepted('127.3.0.4')
        self.assertEqual(d.send_mail().code, 250)
        # ... and only one: two sessions are open again.
        ml = self.maillog_mark()
        e = self.client('127.3.0.5')
        self.assert_connect_refused(e, 421, '00200150', '127.3.0.5', ml)
        b.quit()

    def test_service_concurrency(self):
        g = self.start_guard(service_limits=[('svcB', 1)])
        since, ml = g.mark(), self.maillog_mark()
        self.open_session('127.4.0.1', service='svcB')
        c = self.client('127.4.0.2', service='svcB')
        self.assert_connect_refused(c, 421, '00200150', '127.4.0.2', ml)
        ev = g.wait_event('00200150', since, client='127.4.0.2')
        self.assertEqual(ev['scope'], 'service')
        self.assertEqual(ev['service'], 'svcB')
        self.assertEqual(ev['max_sessions'], '1')
        self.assertEqual(ev['action'], 'close')
        # Service A has no limit.
        a1 = self.open_session('127.4.0.3', service='svcA')
        a2 = self.client('127.4.0.4', service='svcA', expect_greeting=220)
        self.assertEqual(a2.send_mail().code, 250)
        a1.quit()

    def test_ip_concurrency(self):
        g = self.start_guard(settings={'maxSMTPipSessions': 2})
        since, ml = g.mark(), self.maillog_mark()
        self.open_session('127.5.0.1')
        self.open_session('127.5.0.1')
        c = self.client('127.5.0.1')
        self.assert_connect_refused(c, 421, '00200153', '127.5.0.1', ml)
        ev = g.wait_event('max_smtp_ip_sessions_reached', since,
                          client='127.5.0.1')
        self.assertEqual(ev['id'], '00200153')
        self.assertEqual(ev['network'], '127.5.0.1')
        self.assertEqual(ev['max_sessions'], '2')
        self.assertEqual(ev['action'], 'close')
        # Another address is not affected.
        other = self.client('127.5.0.2', expect_greeting=220)
        self.assertEqual(other.send_mail().code, 250)

    def test_ip_concurrency_ipv6_aggregation(self):
        """IPv6 clients (XCLIENT) are counted per /64."""
        g = self.start_guard(settings={'maxSMTPipSessions': 2})
        since, ml = g.mark(), self.maillog_mark()
        for i, addr in enumerate(('2001:db8:1:2::1', '2001:db8:1:2::2')):
            c = self.xclient_session(f'127.5.1.{i + 1}', addr)
            self.assertEqual(c.last.code, 220, f'XCLIENT {addr}: {c.last}')
            self.assertEqual(c.ehlo().code, 250)
        c = self.xclient_session('127.5.1.3', '2001:db8:1:2::3')
        self.assert_connect_refused(c, 421, '00200153', '2001:db8:1:2::3',
                                    ml, stage='XCLIENT')
        ev = g.wait_event('00200153', since, client='2001:db8:1:2::3')
        self.assertEqual(ev['network'], '2001:db8:1:2::/64')
        # Another /64 is not affected.
        d = self.xclient_session('127.5.1.4', '2001:db8:1:3::1')
        self.assertEqual(d.last.code, 220, d.last)
        self.assertEqual(d.send_mail().code, 250)
        # The loopback addresses the sessions came from were released by
        # XCLIENT: nothing is counted against 127.5.1.x.
        self.assertEqual(g.count_events('00200153', since,
                                        client=re.compile(r'^127\.')), 0)

    def test_xclient_releases_session(self):
        """XCLIENT ends smtpguard's session for the old identity: repeated
        XCLIENTs in one connection hold one session, not several. (Postfix
        checks smtpd_authorized_xclient_hosts against the current identity:
        stay in 127/8 to be allowed to repeat XCLIENT.)"""
        g = self.start_guard(settings={'maxSMTPSessions': 2})
        c = self.client('127.5.3.1', expect_greeting=220)
        for i in range(11, 14):
            self.assertEqual(c.ehlo().code, 250)
            r = c.xclient(f'127.5.3.{i}')
            self.assertEqual(r.code, 220, r)
        self.assertEqual(c.send_mail().code, 250)
        since, ml = g.mark(), self.maillog_mark()
        self.open_session('127.5.3.2')            # the second of two
        d = self.client('127.5.3.3')              # one too many
        self.assert_connect_refused(d, 421, '00200150', '127.5.3.3', ml)
        self.assertEqual(g.wait_event('00200150', since,
                                      client='127.5.3.3')['scope'], 'global')

    def test_frequency_ban(self):
        src = '127.6.0.1'
        g = self.start_guard(settings={
            'maxSMTPipConnects': 3, 'maxSMTPipDuration': 60,
            'maxSMTPipExpiration': 120})
        since = g.mark()
        for i in range(3):
            c = self.client(src, expect_greeting=220)
            c.quit()
        ml = self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 421, '00200154', src, ml)
        ev = g.wait_event('smtp_ip_frequency_exceeded', since, client=src)
        self.assertEqual(ev['id'], '00200154')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['connections'], '4')
        self.assertEqual(ev['max_connects'], '3')
        self.assertEqual(ev['ban_seconds'], '120')
        ml = self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 421, '00200155', src, ml)
        ev = g.wait_event('smtp_ip_banned', since, client=src)
        self.assertEqual(ev['id'], '00200155')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['ban_reason'], '00200154')
        self.assertRegex(ev['remaining'], r'^\d+$')
        self.assertTrue(0 < int(ev['remaining']) <= 120, ev.line)
        # The ban is in the database at once.
        rows = g.sql("SELECT reason, expires - created FROM bans "
                     "WHERE kind = 'ip' AND key = ?", (src,))
        self.assertEqual(rows, [('00200154', 120)])
        # It survives a restart.
        g.restart()
        self.assertEqual(g.find('state_restored')['bans'], '1')
        ml = self.maillog_mark()
        since = g.mark()
        c = self.client(src)
        self.assert_connect_refused(c, 421, '00200155', src, ml)
        g.wait_event('smtp_ip_banned', since, client=src)
        # Deleting the row lifts it without a restart.
        g.sql("DELETE FROM bans WHERE kind = 'ip' AND key = ?", (src,))
        t0 = time.monotonic()
        c = self.connect_until_accepted(src, timeout=3.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(c.send_mail().code, 250)

    def test_domain_ip_switches(self):
        g = self.start_guard(
            settings={'DoDomainIP': 1, 'maxSMTPdomainIP': 2},
            domain_lists=['trusted.test'])
        since = g.mark()
        sources = ['127.7.1.1', '127.7.2.1', '127.7.3.1', '127.7.4.1']
        for src in sources[:2]:
            c = self.client(src, expect_greeting=220)
            self.assertEqual(c.send_mail('a@spread.test').code, 250)
            c.quit()
        c = self.client(sources[2], expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        r = c.mail('a@spread.test')
        self.assertEqual(r.code, 451, r)
        self.assertRegex(r.text, r'^4\.7\.1 .*\[smtpguard 00200156\]$')
        c.quit()
        ev = g.wait_event('smtp_domain_ip_limit_reached', since,
                          domain='spread.test')
        self.assertEqual(ev['id'], '00200156')
        self.assertEqual(ev['action'], 'tempfail')
        self.assertEqual(ev['subnets'], '3')
        self.assertEqual(ev['max_subnets'], '2')
        # Now blocked, whoever sends (also a client seen before).
        for src in (sources[3], sources[0]):
            c = self.client(src, expect_greeting=220)
            self.assertEqual(c.ehlo().code, 250)
            r = c.mail('other@spread.test')
            self.assertEqual(r.code, 451, r)
            self.assertRegex(r.text, r'^4\.7\.1 .*\[smtpguard 00200157\]$')
            c.quit()
            ev = g.wait_event('smtp_domain_blocked', since, client=src)
            self.assertEqual(ev['domain'], 'spread.test')
            self.assertEqual(ev['action'], 'tempfail')
        self.assertEqual(g.sql("SELECT reason FROM bans WHERE kind = 'domain'"
                               " AND key = 'spread.test'"), [('00200156',)])
        # Other domains are not affected; the allow-listed domain (and its
        # subdomains) is never blocked, from however many subnets.
        for sender, srcs in (('x@other.test', sources[:2]),
                             ('x@trusted.test', sources),
                             ('x@mail.trusted.test', sources)):
            for src in srcs:
                c = self.client(src, expect_greeting=220)
                r = c.send_mail(sender)
                self.assertEqual(r.code, 250, f'{sender} from {src}: {r}')
                c.quit()
        self.assertEqual(g.count_events('00200156', since), 1)
        g.assert_no_event('00200157', since, domain=re.compile('trusted'))
        # Deleting the block's row lifts it without a restart.
        g.sql("DELETE FROM bans WHERE kind = 'domain' AND key = ?",
              ('spread.test',))

        def accepted():
            c = self.client(sources[0], expect_greeting=220)
            r = c.send_mail('again@spread.test')
            c.quit()
            return r.code == 250
        wait_until(accepted, 3.0, 'mail from spread.test to be accepted',
                   interval=0.2, diag=g.diag)

    def test_max_errors(self):
        src = '127.8.0.1'
        g = self.start_guard(settings={'MaxErrors': 2})
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        for i in range(2):
            r = c.cmd('FOO')
            self.assertEqual(r.code, 500, r)       # Postfix's own reply
        r = c.cmd('FOO')
        self.assertEqual(r.code, 421, r)
        self.assertRegex(r.text, r'^4\.7\.0 .*\[smtpguard 00200158\]$')
        self.assertTrue(c.wait_closed())
        unknown = wait_until(
            lambda: len(g.find_all('smtp_unknown_command', since,
                                   client=src)) == 3
            and g.find_all('smtp_unknown_command', since, client=src),
            what='three smtp_unknown_command lines', diag=g.diag)
        self.assertEqual([e['errors'] for e in unknown], ['1', '2', '3'])
        self.assertEqual({e['command'] for e in unknown}, {'FOO'})
        self.assertEqual({e['id'] for e in unknown}, {'00200162'})
        ev = g.wait_event('max_errors_reached', since, client=src)
        self.assertEqual(ev['id'], '00200158')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['errors'], '3')
        self.assertEqual(ev['max_errors'], '2')

    def test_max_errors_counts_refusals(self):
        """smtpguard's own refusals count as errors too."""
        src = '127.8.1.1'
        now = int(time.time())
        g = self.start_guard(settings={'MaxErrors': 2}, start=False)
        g.sql("INSERT INTO bans (kind, key, reason, created, expires) "
              "VALUES ('domain', 'blocked.test', '00200156', ?, ?)",
              (now, now + 600))
        g.start()
        self.assertEqual(g.find('state_restored')['bans'], '1')
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        for _ in range(2):
            r = c.mail('x@blocked.test')
            self.assertEqual(r.code, 451, r)
            self.assertRegex(r.text, r'\[smtpguard 00200157\]$')
        r = c.mail('x@blocked.test')
        self.assertEqual(r.code, 421, r)
        self.assertRegex(r.text, r'^4\.7\.0 .*\[smtpguard 00200158\]$')
        self.assertTrue(c.wait_closed())
        ev = g.wait_event('max_errors_reached', since, client=src)
        self.assertEqual(ev['errors'], '3')

    def test_frequency_window_survives_restart(self):
        src = '127.6.1.1'
        g = self.start_guard(settings={'maxSMTPipConnects': 3,
                                       'maxSMTPipDuration': 120})
        for _ in range(2):
            self.client(src, expect_greeting=220).quit()
        g.restart()
        self.assertEqual(g.find('state_restored')['windows'], '1')
        self.client(src, expect_greeting=220).quit()
        since, ml = g.mark(), self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 421, '00200154', src, ml)
        ev = g.wait_event('smtp_ip_frequency_exceeded', since, client=src)
        self.assertEqual(ev['connections'], '4')

    def test_catalogue_action_override(self):
        """An operator's action_override 'monitor' turns a refusal into a
        log line."""
        src = '127.5.2.1'
        g = self.start_guard(settings={'maxSMTPipSessions': 1})
        since = g.mark()
        g.sql("UPDATE catalogue SET action_override = 'monitor' "
              "WHERE id = '00200153'")
        g.wait_event('policy_reloaded', since, timeout=3,
                     trigger='database change')
        self.open_session(src)
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.send_mail().code, 250)
        ev = g.wait_event('00200153', since, client=src)
        self.assertEqual(ev['action'], 'monitor')

    def test_exemptions(self):
        g = self.start_guard(
            settings={'maxSMTPipSessions': 1, 'logLevel': 'debug'},
            ip_lists=[('whiteListedIPs', '127.9.0.1'),
                      ('ispip', '127.9.1.0/24')])
        since = g.mark()
        for src, lst, entry in (('127.9.0.1', 'whiteListedIPs',
                                 '127.9.0.1/32'),
                                ('127.9.1.5', 'ispip', '127.9.1.0/24')):
            for _ in range(3):
                self.open_session(src)
            c = self.client(src, expect_greeting=220)
            self.assertEqual(c.send_mail().code, 250)
            ev = g.wait_event('session_limits_exempt', since, client=src)
            self.assertEqual(ev['id'], '00200161')
            self.assertEqual(ev['severity'], 'debug')
            self.assertEqual(ev['list'], lst)
            self.assertEqual(ev['entry'], entry)
            g.assert_no_event('00200153', since, client=src)
        # The limit itself is in force for others.
        ml = self.maillog_mark()
        self.open_session('127.9.2.1')
        c = self.client('127.9.2.1')
        self.assert_connect_refused(c, 421, '00200153', '127.9.2.1', ml)

    def test_score_mode(self):
        src = '127.10.0.1'
        g = self.start_guard(settings={
            'DoMaxSMTPipSessions': 3, 'maxSMTPipSessions': 1,
            'scoreMaxSMTPipSessions': 30, 'penaltyScoreThreshold': 50,
            'DoFrequencyIP': 3, 'maxSMTPipConnects': 2,
            'maxSMTPipDuration': 60, 'scoreFrequencyIP': 30})
        since = g.mark()
        self.open_session(src)                  # 1st: within both limits
        # 2nd: over maxSMTPipSessions only: score 30, accepted
        one = self.open_session(src)
        ev = g.wait_event('max_smtp_ip_sessions_reached', since, client=src)
        self.assertEqual(ev['action'], 'score')
        g.assert_no_event('penalty_score_exceeded', since)
        self.assertEqual(one.send_mail().code, 250)
        # 3rd: over both: 30 + 30 >= 50
        ml = self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 554, '00200160', src, ml)
        r = c.mail('sender@sender.test')
        self.assertEqual(r.code, 554, r)
        self.assertRegex(r.text, r'\[smtpguard 00200160\]$')
        ev = g.wait_event('penalty_score_exceeded', since, client=src)
        self.assertEqual(ev['id'], '00200160')
        self.assertEqual(ev['action'], 'reject')
        self.assertEqual(ev['score'], '60')
        self.assertEqual(ev['threshold'], '50')
        self.assertEqual(sorted(ev['parts'].split(',')),
                         ['FrequencyIP=30', 'MaxSMTPipSessions=30'])
        freq = g.find('smtp_ip_frequency_exceeded', since, client=src)
        self.assertIsNotNone(freq)
        self.assertEqual(freq['action'], 'score')
        # Score mode bans nobody.
        self.assertEqual(g.sql("SELECT * FROM bans"), [])

    def test_monitor_mode(self):
        src = '127.11.0.1'
        g = self.start_guard(settings={
            'DoFrequencyIP': 2, 'maxSMTPipConnects': 2,
            'maxSMTPipDuration': 60})
        since = g.mark()
        for i in range(5):
            c = self.client(src, expect_greeting=220)
            self.assertEqual(c.send_mail().code, 250, f'connection {i + 1}')
            c.quit()
        ev = g.wait_event('smtp_ip_frequency_exceeded', since, client=src)
        self.assertEqual(ev['action'], 'monitor')
        self.assertEqual(ev['connections'], '3')
        # One line per window, not one per connection.
        self.assertEqual(g.count_events('00200154', since, client=src), 1)
        self.assertEqual(g.sql("SELECT * FROM bans"), [])

    def test_live_policy_change(self):
        src = '127.12.0.1'
        g = self.start_guard()
        self.open_session(src)
        self.open_session(src)
        since, ml = g.mark(), self.maillog_mark()
        g.sql("UPDATE settings SET value = '2' WHERE name = "
              "'maxSMTPipSessions'")
        t0 = time.monotonic()
        ev = g.wait_event('policy_reloaded', since, timeout=2.0,
                          trigger='database change')
        self.assertEqual(ev['id'], '00290003')
        c = self.client(src)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assert_connect_refused(c, 421, '00200153', src, ml)
        self.assertEqual(g.wait_event('00200153', since,
                                      client=src)['max_sessions'], '2')
        self.assertEqual(g.pid, g.proc.pid)
        self.assertTrue(g.running())

    def test_live_policy_change_slow_flush(self):
        """flushInterval 60 (counters written once a minute): a policy
        change written to the database is still in force within 2 s."""
        src = '127.12.0.2'
        g = self.start_guard(settings={'flushInterval': '60'})
        self.open_session(src)
        self.open_session(src)
        time.sleep(1.5)             # past the first poll after the start
        since, ml = g.mark(), self.maillog_mark()
        g.sql("UPDATE settings SET value = '2' WHERE name = "
              "'maxSMTPipSessions'")
        t0 = time.monotonic()
        g.wait_event('policy_reloaded', since, timeout=2.0,
                     trigger='database change')
        c = self.client(src)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assert_connect_refused(c, 421, '00200153', src, ml)

    def test_sighup_reloads(self):
        g = self.start_guard()
        since = g.mark()
        g.hup()
        ev = g.wait_event('policy_reloaded', since, trigger='signal')
        self.assertEqual(ev['id'], '00290003')
        # Still running and serving.
        c = self.client('127.13.0.1', expect_greeting=220)
        self.assertEqual(c.send_mail().code, 250)
        self.assertTrue(g.running())
        g.assert_no_event('daemon_stopped', since)
        # A change written to the database is in force after SIGHUP at once.
        g.set_settings({'maxSMTPipSessions': 1})
        since = g.mark()
        g.hup()
        g.wait_event('policy_reloaded', since, trigger='signal')
        self.open_session('127.13.0.2')
        ml = self.maillog_mark()
        c = self.client('127.13.0.2')
        self.assert_connect_refused(c, 421, '00200153', '127.13.0.2', ml)

    def test_sigterm_flushes_counters(self):
        # No periodic flush during the test: only the one at shutdown.
        g = self.start_guard(settings={'flushInterval': 60})
        sent = {'127.14.0.1': 4, '127.14.0.2': 2}
        for src, n in sent.items():
            for _ in range(n):
                c = self.client(src, expect_greeting=220)
                c.quit()
        # A session still open does not hold the shutdown up.
        held = self.open_session('127.14.0.3')
        sent['127.14.0.3'] = 1
        self.assertEqual({k: v for k, v in self.ip_rate(g).items()
                          if k in sent}, {})
        since = g.mark()
        t0 = time.monotonic()
        rc = g.stop(timeout=10, wake=False)
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(rc, 0, harness.tail(g.stderr_path))
        ev = g.wait_event('daemon_stopped', since)
        self.assertEqual(ev['id'], '00290002')
        self.assertEqual({k: v for k, v in self.ip_rate(g).items()
                          if k in sent}, sent)
        # Postfix's session continues without it (milter_default_action).
        self.assertEqual(held.mail('sender@sender.test').code, 451)

    def test_invalid_setting_keeps_old_value(self):
        src = '127.15.0.1'
        g = self.start_guard(settings={
            'maxSMTPipConnects': 2, 'maxSMTPipDuration': 60,
            'maxSMTPipExpiration': 60})
        # What SQL can tell, it refuses.
        with self.assertRaises(sqlite3.IntegrityError):
            g.sql("UPDATE settings SET value = 'many' WHERE name = "
                  "'maxSMTPipConnects'")
        since = g.mark()
        g.sql("UPDATE settings SET value = '0' WHERE name = "
              "'maxSMTPipDuration'")
        ev = g.wait_event('setting_invalid', since, timeout=3,
                          setting='maxSMTPipDuration')
        self.assertEqual(ev['id'], '00290004')
        self.assertEqual(ev['value'], '0')
        self.assertEqual(ev['kept'], '60')
        g.wait_event('policy_reloaded', since, trigger='database change')
        # Behaviour unchanged: the 60 s window still counts.
        for _ in range(2):
            self.client(src, expect_greeting=220).quit()
        ml = self.maillog_mark()
        c = self.client(src)
        self.assert_connect_refused(c, 421, '00200154', src, ml)
        ev = g.wait_event('smtp_ip_frequency_exceeded', since, client=src)
        self.assertEqual(ev['duration'], '60')
        self.assertEqual(ev['ban_seconds'], '60')

    def test_unix_socket_with_user(self):
        if os.geteuid() != 0:
            self.fail('needs root to create user sgtest and drop to it')
        pw = harness.ensure_system_user('sgtest')
        os.makedirs(self.env.unix_sock_dir, exist_ok=True)
        os.chmod(self.env.unix_sock_dir, 0o755)
        g = self.start_guard(
            socket_spec=f'unix:{self.env.unix_sock}',
            args=['-u', 'sgtest:postfix', '-m', '0660'],
            ip_lists=[('denySMTPConnectionsFromAlways', '127.16.0.2')],
            owner='sgtest')
        st = os.stat(self.env.unix_sock)
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_uid, pw.pw_uid)
        self.assertEqual(st.st_gid, grp.getgrnam('postfix').gr_gid)
        with open(f'/proc/{g.pid}/status') as f:
            uids = re.search(r'^Uid:\s+(\d+)\s+(\d+)', f.read(), re.M)
        self.assertEqual(int(uids.group(2)), pw.pw_uid, 'not running as '
                         'sgtest')
        since = g.mark()
        # Postfix's smtpd (user postfix) talks to it: mail goes through...
        c = self.client('127.16.0.1', service='svcU', expect_greeting=220)
        self.assertEqual(c.send_mail().code, 250)
        c.quit()
        # ... and smtpguard's verdicts arrive.
        c = self.client('127.16.0.2', service='svcU')
        self.assertEqual(c.greeting.code, 554)
        r = c.mail('sender@sender.test')
        self.assertEqual(r.code, 554, r)
        self.assertRegex(r.text, r'\[smtpguard 00200159\]$')
        ev = g.wait_event('smtp_connection_denied', since,
                          client='127.16.0.2')
        self.assertEqual(ev['service'], 'svcU')


if __name__ == '__main__':
    unittest.main()
