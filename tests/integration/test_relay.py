"""Relay authorization, local recipients, directory harvest and the mail
rate, through a real Postfix with real SMTP AUTH (Cyrus SASL, sasldb).

Postfix here lets 127.0.0.0/8 relay (mynetworks) and accepts any
recipient (no local_recipient_maps), so every decision below is
smtpguard's: each test configures smtpguard's relay tables for a small MX
(local domains example.test and catch.test, two mailboxes, a catch-all
for catch.test) and removes the loopback relay network, so the test
clients (127.9.x.y) are strangers unless they authenticate.

What Postfix shows (3.7): smtpguard's RCPT and MAIL replies are passed
through with their text ("550 5.7.1 Relay access denied [smtpguard
00210111]"); a 421 at RCPT closes the connection.
"""

import re
import unittest

import harness
from harness import IntegrationTestCase

MX_TABLES = """
DELETE FROM relay_networks;
INSERT INTO local_domains (domain) VALUES ('example.test'), ('catch.test');
INSERT INTO local_addresses (address) VALUES ('user@example.test'),
    ('alice@example.test');
INSERT INTO catchalls (domain, mailbox) VALUES
    ('catch.test', 'bucket@catch.test');
"""


class RelayTest(IntegrationTestCase):

    sasl_users = (('alice', 'correct horse'),)

    def start_mx(self, settings=None, extra_sql=''):
        g = self.start_guard(start=False, settings=settings)
        g.sql_script(MX_TABLES + extra_sql)
        g.start()
        return g

    def maillog_mark(self):
        return harness.LogFile(self.env.postfix.maillog).mark()

    def test_unauthenticated_relay_refused(self):
        src = '127.9.1.1'
        g = self.start_mx()
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('spammer@remote.test').code, 250)
        r = c.rcpt('victim@far.test')
        self.assertReply(r, 550, '00210111')
        self.assertRegex(r.text, r'^5\.7\.1 Relay access denied')
        # Local recipients in the same transaction still go through.
        self.assertEqual(c.rcpt('user@example.test').code, 250)
        self.assertEqual(c.data().code, 250)
        c.quit()
        ev = g.wait_event('relay_denied', since, client=src)
        self.assertEqual(ev['id'], '00210111')
        self.assertEqual(ev['action'], 'reject')
        self.assertEqual(ev['recipient'], 'victim@far.test')
        self.assertEqual(ev['sender'], 'spammer@remote.test')
        kerio = g.wait_event('relay_attempt_rejected', since, client=src)
        self.assertEqual(kerio['id'], '00210201')
        self.assertEqual(kerio['ip'], src)
        self.assertEqual(
            kerio['msg'], f'Relay attempt from IP address {src}, mail from '
            '<spammer@remote.test> to <victim@far.test> rejected')
        # Postfix opens the queue file only after the first accepted
        # recipient (smtpd_delay_open_until_valid_rcpt), so a refused
        # first recipient has no queue ID yet: the line says NOQUEUE, as
        # Postfix's own reject lines do.
        self.assertEqual(kerio.qid, 'NOQUEUE')

    def test_local_delivery_and_catchall(self):
        src = '127.9.2.1'
        g = self.start_mx()
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        r = c.send_mail(sender='someone@remote.test',
                        rcpt='User@Example.Test')
        self.assertEqual(r.code, 250, r)
        ev = g.wait_event('rcpt_local_delivery', since, client=src)
        self.assertEqual(ev['id'], '00210101')
        self.assertEqual(ev['recipient'], 'user@example.test')
        self.assertEqual(ev['source'], 'local_addresses')
        r = c.send_mail(sender='someone@remote.test',
                        rcpt='whoever@catch.test', ehlo=False)
        self.assertEqual(r.code, 250, r)
        ev = g.wait_event('rcpt_catchall_delivery', since, client=src)
        self.assertEqual(ev['id'], '00210102')
        self.assertEqual(ev['mailbox'], 'bucket@catch.test')
        # postmaster without a domain is always local (RFC 5321 4.5.1).
        self.assertEqual(c.mail('someone@remote.test').code, 250)
        self.assertEqual(c.cmd('RCPT TO:<postmaster>').code, 250)
        c.quit()
        g.assert_no_event('relay_denied', since)

    def test_unknown_recipient_and_harvest_ban(self):
        src = '127.9.3.1'
        g = self.start_mx(settings={'maxHarvestUnknown': 3,
                                    'MaxErrors': 50})
        since, ml = g.mark(), self.maillog_mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('probe@remote.test').code, 250)
        for i in range(3):
            r = c.rcpt(f'guess{i}@example.test')
            self.assertReply(r, 550, '00210202')
            self.assertRegex(r.text, r'^5\.1\.1 ')
        r = c.rcpt('guess3@example.test')
        self.assertReply(r, 421, '00210203')
        self.assertTrue(c.wait_closed(), 'not closed after 421')
        ev = g.wait_event('directory_harvest_attack', since, client=src)
        self.assertEqual(ev['id'], '00210203')
        self.assertEqual(ev['unknown'], '4')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(
            g.sql("SELECT reason FROM bans WHERE kind = 'ip' AND key = ?",
                  (src,)), [('00210203',)])
        # Later sessions from the client are refused while the ban lasts.
        ml = self.maillog_mark()
        c = self.client(src)
        self.assertEqual(c.greeting.code, 421)
        self.env.postfix.wait_maillog(
            rf'milter-reject: CONNECT from \S+\[{re.escape(src)}\]: 421 '
            rf'.*\[smtpguard 00200155\]', ml)
        ev = g.wait_event('smtp_ip_banned', since, client=src)
        self.assertEqual(ev['ban_reason'], '00210203')
        # ... and survive a restart of smtpguard.
        g.restart()
        c = self.client(src)
        self.assertEqual(c.greeting.code, 421)
        # Another client is fine.
        self.assertEqual(self.client('127.9.3.2').send_mail().code, 250)

    def test_mail_rate_per_sender(self):
        src = '127.9.4.1'
        g = self.start_mx(settings={'maxEmailPerMinute': 2})
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        for i in range(2):
            r = c.send_mail(sender='news@bulk.test', ehlo=(i == 0))
            self.assertEqual(r.code, 250, r)
        r = c.mail('news@bulk.test')
        self.assertReply(r, 451, '00200151')
        self.assertRegex(r.text, r'^4\.7\.1 ')
        # Another sender, and the same sender from another client by
        # another key, are counted separately.
        c.cmd('RSET')
        self.assertEqual(c.send_mail(sender='other@bulk.test',
                                     ehlo=False).code, 250)
        c.quit()
        ev = g.wait_event('maximum_email_per_minute_reached', since,
                          client=src)
        self.assertEqual(ev['id'], '00200151')
        self.assertEqual(ev['sender_email_address'], 'news@bulk.test')
        self.assertEqual(ev['key_type'], 'sender')
        self.assertEqual(ev['count'], '2')
        self.assertEqual(ev['action'], 'tempfail')
        # The window is persisted (flushed within a second).
        harness.wait_until(lambda: g.sql(
            "SELECT count FROM rate_windows WHERE key = "
            "'mail:sender:news@bulk.test'") == [(2,)], 5,
            'the mail rate window in the database')

    def test_authenticated_relay(self):
        src = '127.9.5.1'
        g = self.start_mx()
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        r = c.ehlo()
        self.assertEqual(r.code, 250)
        self.assertIn('AUTH', r.text, 'Postfix offers no AUTH')
        self.assertEqual(c.auth_plain('alice@example.test', 'wrong').code,
                         535)
        self.assertEqual(
            c.auth_plain('alice@example.test', 'correct horse').code, 235)
        r = c.send_mail(sender='alice@example.test',
                        rcpt='friend@far.test', ehlo=False)
        self.assertEqual(r.code, 250, r)
        c.quit()
        ev = g.wait_event('relay_granted_authenticated', since, client=src)
        self.assertEqual(ev['id'], '00210108')
        self.assertEqual(ev['user'], 'alice@example.test')
        self.assertEqual(ev['recipient'], 'friend@far.test')
        # Without AUTH the same transaction is a relay attempt.
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('alice@example.test').code, 250)
        self.assertReply(c.rcpt('friend@far.test'), 550, '00210111')

    def test_relay_network_and_live_policy_change(self):
        src = '127.9.6.1'
        g = self.start_mx()
        since = g.mark()
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('app@office.test').code, 250)
        self.assertReply(c.rcpt('x@far.test'), 550, '00210111')
        c.quit()
        # The operator authorizes the network; no restart.
        g.sql("INSERT INTO relay_networks (network) VALUES ('127.9.6.0/24')")
        g.wait_event('policy_reloaded', since)

        def relays():
            cl = self.client(src)
            return cl.send_mail(sender='app@office.test',
                                rcpt='x@far.test').code == 250
        harness.wait_until(relays, 5, 'the relay network to take effect')
        ev = g.wait_event('relay_granted_network', since, client=src)
        self.assertEqual(ev['entry'], '127.9.6.0/24')
        # relayPolicy deny stops even authorized networks.
        since = g.mark()
        g.set_settings({'relayPolicy': 'deny'})
        g.wait_event('policy_reloaded', since)
        c = self.client(src, expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('app@office.test').code, 250)
        self.assertReply(c.rcpt('x@far.test'), 550, '00210112')
        # An invalid value is refused by the database and changes nothing.
        with self.assertRaisesRegex(Exception, 'not one of the choices'):
            g.set_settings({'relayPolicy': 'sometimes'})

    def test_start_warning_without_local_domains(self):
        g = self.start_guard()
        ev = g.wait_event('relay_policy_warning')
        self.assertEqual(ev['id'], '00210204')
        self.assertIn('local_domains is empty', ev['problem'])
        # Unconfigured, smtpguard leaves inbound mail alone.
        self.assertEqual(self.client('127.9.7.1').send_mail(
            sender='a@remote.test', rcpt='anyone@example.test').code, 250)


if __name__ == '__main__':
    unittest.main()
