"""DNS reputation and SPF through the real Postfix: a DNSBL-listed client
refused with the zone in the reply, an SPF fail refused, an SPF pass
accepted with Received-SPF and Authentication-Results in the message.

libspf2 passes every loopback client without looking at the record
("localhost gets a free ride"), so the SPF test gives Postfix a client
from 192.0.2.0/24 with XCLIENT (the milter sees that address).

Postfix here puts every accepted message on hold
(smtpd_end_of_data_restrictions = static:HOLD), so the test reads the
message as Postfix would deliver it, with smtpguard's headers, from the
queue (postcat). A private nsd serves the zones; the clients are
127.9.30.0/24.
"""

import re

from harness import IntegrationTestCase

def _txt(text, size=250):
    """A zone file's TXT data: strings of at most 250 octets."""
    return ' '.join('"%s"' % text[i:i + size]
                    for i in range(0, len(text), size))


# The explanation that smashed libspf2's stack through SPF_record_compile_
# macro() (CVE-2023-42118's macro buffer): an SPF-looking record of ~720
# octets, too big for UDP without EDNS (nsd sets TC: it comes over TCP),
# and a shorter one of the same shape that UDP carries.
HOSTILE_EXP = ('v=spf1 exists:' + 'a' * 236 + '%{d} exists:' + 'b' * 232 +
               '%{d} exists:' + 'c' * 200 + '.example -all')
HOSTILE_EXP_UDP = 'v=spf1 exists:' + 'a' * 200 + '%{d}%{i}%{l} -all'

ZONES = {
    '2.0.192.in-addr.arpa': """
30     PTR  client30.dns.test.
""",
    '9.127.in-addr.arpa': """
1.30   PTR  client1.dns.test.
2.30   PTR  client2.dns.test.
""",
    'dns.test': """
client1  A  127.9.30.1
client2  A  127.9.30.2
client30 A  192.0.2.30
""",
    'bl.test': """
2.30.9.127   A    127.0.0.2
2.30.9.127   TXT  "Listed: see http://bl.test/127.9.30.2"
""",
    'spf.test': """
pass  TXT  "v=spf1 ip4:192.0.2.30 -all"
fail  TXT  "v=spf1 ip4:203.0.113.0/24 -all"
hostile-tcp  TXT  "v=spf1 -all exp=e.hostile-tcp.spf.test"
e.hostile-tcp  TXT  """ + _txt(HOSTILE_EXP) + """
hostile-udp  TXT  "v=spf1 -all exp=e.hostile-udp.spf.test"
e.hostile-udp  TXT  """ + _txt(HOSTILE_EXP_UDP) + """
hostile-macro  TXT  "v=spf1 -all exp=%{l}.e.hostile-macro.spf.test"
x.e.hostile-macro  TXT  """ + _txt(HOSTILE_EXP) + """
hostile-redir  TXT  "v=spf1 redirect=t.hostile-redir.spf.test"
t.hostile-redir  TXT  "v=spf1 -all exp=e.hostile-redir.spf.test"
e.hostile-redir  TXT  """ + _txt(HOSTILE_EXP) + """
hostile-two  TXT  "v=spf1 -all exp=e.hostile-two.spf.test"
e.hostile-two  TXT  """ + _txt(HOSTILE_EXP_UDP) + """
e.hostile-two  TXT  """ + _txt(HOSTILE_EXP) + """
""",
}


class PostfixDnsTest(IntegrationTestCase):

    dns_zones = ZONES
    postfix_extra = {
        'smtpd_end_of_data_restrictions': 'check_client_access static:HOLD',
    }

    def start_dns_guard(self):
        g = self.start_guard(start=False, settings={'DoFCrDNS': 1})
        g.sql_script("DELETE FROM relay_networks; INSERT INTO dnsbl_zones "
                     "(zone, weight) VALUES ('bl.test', 1);")
        g.start()
        return g

    def test_dnsbl_listed_client_refused(self):
        g = self.start_dns_guard()
        since = g.mark()
        c = self.client('127.9.30.2', expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.mail('someone@pass.spf.test').code, 250)
        r = c.rcpt('user@example.test')
        self.assertReply(r, 554, '00230106')
        self.assertEqual(r.text, '5.7.1 Service unavailable; client '
                         '[127.9.30.2] blocked using bl.test; Listed: see '
                         'http://bl.test/127.9.30.2 [smtpguard 00230106]')
        ev = g.wait_event('dnsbl_listed', since, client='127.9.30.2')
        self.assertEqual(ev['zone'], 'bl.test')
        self.assertEqual(ev['sender'], 'someone@pass.spf.test')

    def test_spf_fail_refused_and_pass_headers(self):
        g = self.start_dns_guard()
        since = g.mark()
        c = self.client('127.9.30.1', expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.xclient('192.0.2.30').code, 220)
        self.assertEqual(c.ehlo().code, 250)
        r = c.mail('someone@fail.spf.test')
        self.assertReply(r, 550, '00240108')
        self.assertRegex(r.text, r'^5\.7\.23 ')
        g.wait_event('SPFfail', since, client='192.0.2.30')
        c.cmd('RSET')
        r = c.send_mail(sender='someone@pass.spf.test', ehlo=False)
        self.assertEqual(r.code, 250, r)
        qid = re.search(r'queued as ([0-9A-F]+)', r.text).group(1)
        c.quit()
        g.wait_event('SPFpass', since, client='192.0.2.30')
        headers = self.env.postfix.queued_headers(qid)
        names = [n for n, _ in headers]
        self.assertIn('Received-SPF', names)
        self.assertIn('Authentication-Results', names)
        spf = dict(headers)['Received-SPF']
        self.assertTrue(spf.startswith(
            'pass (mx.example.test: domain of someone@pass.spf.test '
            'designates 192.0.2.30 as permitted sender) '
            'client-ip=192.0.2.30;'), spf)
        self.assertEqual(dict(headers)['Authentication-Results'],
                         'mx.example.test; spf=pass '
                         'smtp.mailfrom=someone@pass.spf.test')
        # Prepended: above Postfix's own Received header.
        self.assertLess(names.index('Received-SPF'), names.index('Received'))

    def test_spf_hostile_explanations(self):
        """The explanation records that stopped the daemon (an SPF-looking
        exp= target of ~720 octets, over TCP; a short one over UDP; behind
        a macro, a redirect, two records): each MAIL gets the fail reply
        without their text, the daemon stays the same process with the same
        workers alive, and the next message is accepted."""
        g = self.start_dns_guard()
        since = g.mark()
        pid = g.pid
        c = self.client('127.9.30.1', expect_greeting=220)
        self.assertEqual(c.ehlo().code, 250)
        self.assertEqual(c.xclient('192.0.2.30').code, 220)
        self.assertEqual(c.ehlo().code, 250)
        # The short one is only text to us (RFC 7208 6.2): expanded by our
        # own code, it is what the client is told. The long ones are over
        # the bound of an explanation, two records are none (6.2): the
        # reply is the fixed text.
        short = ('v=spf1 exists:' + 'a' * 200 +
                 'hostile-udp.spf.test192.0.2.30x -all')
        for name, expl in (('hostile-tcp', ''), ('hostile-udp', short),
                           ('hostile-macro', ''), ('hostile-redir', ''),
                           ('hostile-two', '')):
            sender = f'x@{name}.spf.test'
            r = c.mail(sender)
            self.assertReply(r, 550, '00240108')
            told = expl or f'SPF fail for {sender} from 192.0.2.30'
            # What the reply holds of it (a long text is cut to fit).
            self.assertTrue(r.text.startswith('5.7.23 ') and
                            r.text.endswith(' [smtpguard 00240108]'), r.text)
            said = r.text[len('5.7.23 '):-len(' [smtpguard 00240108]')]
            self.assertTrue(len(said) >= min(len(told), 100) and
                            told.startswith(said),
                            f'{r.text!r}: not from {told!r}')
            ev = g.wait_event('SPFfail', since, identity=sender)
            self.assertEqual(ev['explanation'], expl)
            c.cmd('RSET')
        r = c.send_mail(sender='someone@pass.spf.test', ehlo=False)
        self.assertEqual(r.code, 250, r)
        c.quit()
        self.assertEqual(g.pid, pid)
        self.assertIsNone(g.proc.poll())
        g.assert_no_event('spf_worker_lost', since)
        # Both ways: the long explanation comes over TCP, the short over UDP.
        self.assertTrue(self.env.nsd.truncated_over_udp(
            'e.hostile-tcp.spf.test'))
        self.assertFalse(self.env.nsd.truncated_over_udp(
            'e.hostile-udp.spf.test'))


if __name__ == '__main__':
    import unittest
    unittest.main()
