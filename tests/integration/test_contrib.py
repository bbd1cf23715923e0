"""contrib/ as shipped: the Postfix main.cf lines in front of a real
Postfix, and the example policy sets loaded into a running smtpguard.

The Postfix instance gets every parameter of contrib/postfix/main.cf except
smtpd_milters (the harness points each service at the test's smtpguard),
so a change there that Postfix refuses, or that loses a macro smtpguard
reads, fails here. A private nsd serves the zone "test" so that SPF and
the DNS lists of the examples get real answers (NXDOMAIN, REFUSED for the
public lists) and never leave the machine.
"""

import os
import re

from harness import REPO, IntegrationTestCase

CONTRIB = os.path.join(REPO, 'contrib')


def shipped_main_cf():
    """The parameters of contrib/postfix/main.cf, smtpd_milters aside."""
    params = {}
    with open(os.path.join(CONTRIB, 'postfix', 'main.cf')) as f:
        for line in f:
            m = re.match(r'^([a-z_]+)\s*=\s*(.*)$', line.rstrip('\n'))
            if m and m.group(1) != 'smtpd_milters':
                params[m.group(1)] = m.group(2)
    return params


def example(name):
    with open(os.path.join(CONTRIB, 'examples', name)) as f:
        return f.read()


class ContribTest(IntegrationTestCase):

    # The example MX's domains are Postfix's relay_domains, as on a real MX.
    postfix_extra = dict(shipped_main_cf(),
                         relay_domains='example.com example.net')
    dns_zones = {'test': 'ns A 127.0.0.1\n'}

    def guard_with(self, sql):
        g = self.start_guard(start=False)
        g.sql_script(sql)
        g.start()
        # Everything in the example is valid for the daemon.
        for ev in ('setting_invalid', 'list_entry_invalid'):
            g.assert_no_event(ev, g.started_at)
        return g

    def test_shipped_main_cf_is_in_force(self):
        self.assertIn('milter_rcpt_macros', self.postfix_extra)
        r = self.env.postfix.postfix_cmd('check')
        self.assertEqual(r.returncode, 0, r.stderr)
        g = self.start_guard()
        since = g.mark()
        c = self.client('127.9.50.1', expect_greeting=220)
        self.assertEqual(c.send_mail(sender='a@sender.test',
                                     rcpt='user@example.test').code, 250)
        # Postfix sent {rcpt_mailer}: the transport it chose (the test
        # Postfix delivers everything with discard:).
        ev = g.wait_event('rcpt_local_delivery', since, client='127.9.50.1')
        self.assertEqual((ev['source'], ev['entry']),
                         ('mta unlisted mailer', 'discard'))

    def test_inbound_mx(self):
        g = self.guard_with(example('inbound-mx.sql'))
        since = g.mark()
        self.assertEqual(len(g.sql('SELECT * FROM dnsbl_zones')), 3)
        c = self.client('127.9.51.1', expect_greeting=220)
        # A client from outside (loopback may relay, as the example keeps).
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.xclient('203.0.113.5').code, 220)
        self.assertEqual(c.send_mail(sender='a@sender.test',
                                     rcpt='alice@example.com').code, 250)
        self.assertEqual(len(g.find_all('rcpt_local_delivery', since,
                                        client='203.0.113.5')), 1)
        # The catch-all of the alias domain.
        self.assertEqual(c.send_mail(sender='a@sender.test',
                                     rcpt='anyone@example.net',
                                     ehlo=False).code, 250)
        self.assertEqual(c.mail('a@sender.test').code, 250)
        self.assertReply(c.rcpt('nobody@example.com'), 550, '00210202')
        # Relaying is refused by Postfix itself here (not in mynetworks);
        # smtpguard's own relay refusals have tests of their own.
        self.assertEqual(c.rcpt('victim@far.test').code, 554)
        c.quit()
        # The public lists are not reachable here: counted as lookup
        # failures, nobody refused for them.
        g.wait_event('dns_lookup_failed', since, client='203.0.113.5')
        g.assert_no_event('DNSBLfailed', since)

    def test_office_relay(self):
        g = self.guard_with(example('office-relay.sql'))
        c = self.client('127.9.52.1', expect_greeting=220)
        # Loopback stays a relay network; the sender must be local.
        self.assertEqual(c.send_mail(sender='carol@example.org',
                                     rcpt='partner@far.test').code, 250)
        self.assertEqual(c.mail('eve@evil.test').code, 250)
        self.assertReply(c.rcpt('partner@far.test'), 550, '00210109')
        self.assertEqual(g.sql("SELECT value FROM settings WHERE name = "
                               "'maxEmailPerMinute'"), [('30',)])

    def test_submission(self):
        g = self.guard_with(example('submission.sql'))
        self.assertEqual(g.sql("SELECT max_sessions FROM service_limits WHERE "
                               "service = 'submission'"), [(50,)])
        c = self.client('127.9.53.1', expect_greeting=220)
        self.assertEqual(c.send_mail(sender='a@sender.test',
                                     rcpt='user@example.test').code, 250)


if __name__ == '__main__':
    import unittest
    unittest.main()
