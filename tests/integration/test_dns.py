"""DNS reputation against a real authoritative server: DNSBL and DNSWL
zones, forward-confirmed reverse DNS.

A private nsd (Debian's nsd package) on a loopback port serves the zones
below; smtpguard is pointed at it with --dns-servers. sg-loadclient plays
the MTA (no Postfix here: the client addresses are the documentation
ranges the zones describe; test_postfix_dns.py does the same through a real
Postfix).

nsd answers REFUSED for names outside its zones and SERVFAIL for a zone it
could not load (broken.test): that is how the tests get temporary DNS
failures (198.51.100.0/24 has no reverse zone here).
"""

import harness
from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin

def _long_txt(text, size=250):
    return ' '.join('"%s"' % text[i:i + size]
                    for i in range(0, len(text), size))


# CVE-2023-42118: "v=spf1 a:" then many %{d} macros and ~4 KB of text;
# too big for UDP (nsd sets TC), so it arrives over TCP.
CVE_RECORD = 'v=spf1 a:' + '%{d}' * 500 + 'x' * 2100 + '.spf.test'
# The same shape as the explanation of a record that fails: 500 %{d} and
# ~4 KB of text, over TCP too. It must not reach libspf2's macro compiler.
CVE_EXPLANATION = '%{d}' * 500 + 'x' * 4000

SPF_ZONE = """
pass      TXT  "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 -all"
fail      TXT  "v=spf1 ip4:203.0.113.0/24 -all exp=exp.spf.test"
exp       TXT  "%{i} is not one of %{d}'s designated mail servers."
softfail  TXT  "v=spf1 ~all"
neutral   TXT  "v=spf1 ?all"
none      A    192.0.2.1
perm      TXT  "v=spf1 foo:bar.spf.test -all"
two       TXT  "v=spf1 +all"
two       TXT  "v=spf1 -all"
include   TXT  "v=spf1 include:pass.spf.test -all"
redirect  TXT  "v=spf1 redirect=pass.spf.test"
macro     TXT  "v=spf1 exists:%{ir}.ok.spf.test -all"
60.2.0.192.ok A 127.0.0.2
temp      TXT  "v=spf1 include:elsewhere.unserved.example -all"
servfail  TXT  "v=spf1 include:spf.broken.test -all"
limit     TXT  "v=spf1 a:h1.spf.test a:h2.spf.test a:h3.spf.test a:h4.spf.test a:h5.spf.test a:h6.spf.test a:h7.spf.test a:h8.spf.test a:h9.spf.test a:h10.spf.test a:h11.spf.test ip4:192.0.2.0/24 -all"
h1  A 203.0.113.1
h2  A 203.0.113.1
h3  A 203.0.113.1
h4  A 203.0.113.1
h5  A 203.0.113.1
h6  A 203.0.113.1
h7  A 203.0.113.1
h8  A 203.0.113.1
h9  A 203.0.113.1
h10 A 203.0.113.1
h11 A 203.0.113.1
void      TXT  "v=spf1 a:v1.spf.test a:v2.spf.test a:v3.spf.test ip4:192.0.2.0/24 -all"
helo      TXT  "v=spf1 ip4:192.0.2.70 -all"
cve       TXT  """ + _long_txt(CVE_RECORD) + """
cveexp    TXT  "v=spf1 ip4:203.0.113.0/24 -all exp=bad.spf.test"
bad       TXT  """ + _long_txt(CVE_EXPLANATION) + """
"""

ZONES = {
    # Forward names of the test clients.
    'dns.test': """
ns          A     127.0.0.1
host20      A     192.0.2.20
host21      A     192.0.2.99
host23      A     192.0.2.99
host23b     A     192.0.2.23
host30      AAAA  2001:db8::30
""",
    # Reverse DNS of 192.0.2.0/24 (RFC 2317-less, the whole /24 here).
    '2.0.192.in-addr.arpa': """
20   PTR  host20.dns.test.
21   PTR  host21.dns.test.
23   PTR  host23.dns.test.
23   PTR  host23b.dns.test.
10   PTR  host20.dns.test.
""",
    '8.b.d.0.1.0.0.2.ip6.arpa': """
0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0  PTR  host30.dns.test.
""",
    # A blacklist: 192.0.2.10 (with a reason), .11 (also allow-listed),
    # .12 (an answer the filter does not count), 2001:db8::10.
    'bl.test': """
10.2.0.192   A    127.0.0.2
10.2.0.192   TXT  "Listed for spam, see http://bl.test/192.0.2.10"
11.2.0.192   A    127.0.0.2
12.2.0.192   A    127.0.0.3
13.2.0.192   A    127.0.0.2
0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2 A 127.0.0.4
""",
    'bl2.test': """
13.2.0.192   A    127.0.0.10
""",
    'wl.test': """
11.2.0.192   A    127.0.2.5
""",
    # The score-mode test: 192.0.2.21 (PTR not confirmed) listed here.
    'sbl.test': """
21.2.0.192   A    127.0.0.2
""",
    # The senders of the DNSBL and rDNS tests: SPF pass from anywhere here.
    'sender.test': """
@   TXT  "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ?all"
""",
    'spf.test': SPF_ZONE,
    # Configured without a zone file: nsd answers SERVFAIL.
    'broken.test': None,
}

BL = ("INSERT INTO dnsbl_zones (zone, weight, answers, txt) VALUES "
      "('bl.test', 2, '127.0.0.2, 127.0.0.4', 1), "
      "('wl.test', -5, '127.0.2.[0..10]', 0);")


class DnsTest(LoadClientMixin, IntegrationTestCase):

    dns_zones = ZONES

    def guard(self, sql='', settings=None):
        g = self.start_guard(start=False, settings=settings)
        g.sql_script(sql)
        g.start()
        return g

    def run_from(self, client, *args, **kw):
        return self.loadclient('--mail', 'someone@sender.test', '--rcpt',
                               'user@example.test', *args, client=client,
                               **kw)

    def rcpt_code(self, run):
        return run.stages('rcpt')[0].get('code', '')

    def test_dnsbl_listed_refused_with_zone_and_reason(self):
        g = self.guard(BL, {'DoFCrDNS': 0})
        since = g.mark()
        run = self.run_from('192.0.2.10')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertEqual(
            self.rcpt_code(run),
            '554 5.7.1 Service unavailable; client [192.0.2.10] blocked '
            'using bl.test; Listed for spam, see http://bl.test/192.0.2.10 '
            '[smtpguard 00230106]')
        ev = g.wait_event('DNSBLfailed', since, client='192.0.2.10')
        self.assertEqual(ev['id'], '00230106')
        self.assertEqual(ev['zone'], 'bl.test')
        self.assertEqual(ev['answer'], '127.0.0.2')
        self.assertEqual(ev['score'], '2')
        self.assertEqual(ev['action'], 'reject')
        kerio = g.wait_event('dnsbl_listed', since, client='192.0.2.10')
        self.assertEqual(kerio['id'], '00230201')
        self.assertEqual(
            kerio['msg'], 'IP address 192.0.2.10 found in DNS blacklist '
            'bl.test, mail from <someone@sender.test> to '
            '<user@example.test>')
        # Not listed: accepted, nothing logged about DNSBLs.
        self.assert_accepted(self.run_from('192.0.2.50'))
        g.assert_no_event('dnsbl_listed', since, client='192.0.2.50')
        # The answer was cached: the second session asked nothing.
        run = self.run_from('192.0.2.10')
        self.assertEqual(run.result, 'rejected', str(run))

    def test_allow_list_and_answer_filter(self):
        g = self.guard(BL, {'DoFCrDNS': 0})
        since = g.mark()
        # Listed in bl.test (2) and wl.test (-5): accepted.
        self.assert_accepted(self.run_from('192.0.2.11'))
        ev = g.wait_event('dnswl_listed', since, client='192.0.2.11')
        self.assertEqual(ev['zone'], 'wl.test')
        self.assertEqual(ev['weight'], '-5')
        g.assert_no_event('DNSBLfailed', since)
        # bl.test answers 127.0.0.3 for .12: not one the filter counts.
        self.assert_accepted(self.run_from('192.0.2.12'))
        g.assert_no_event('dnsbl_listed', since, client='192.0.2.12')
        # IPv6, reversed nibbles, answer 127.0.0.4.
        run = self.run_from('2001:db8::10')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertIn('blocked using bl.test', self.rcpt_code(run))

    def test_weights_below_threshold_feed_the_score(self):
        g = self.guard(
            "INSERT INTO dnsbl_zones (zone, weight) VALUES ('bl.test', 1), "
            "('bl2.test', 1);",
            {'DoFCrDNS': 0, 'dnsblThreshold': 3, 'penaltyScoreThreshold': 5})
        since = g.mark()
        self.assert_accepted(self.run_from('192.0.2.13'))
        ev = g.wait_event('dnsbl_score', since, client='192.0.2.13')
        self.assertEqual(ev['score'], '2')
        self.assertEqual(ev['zones'], 'bl.test=1,bl2.test=1')
        self.assertEqual(ev['action'], 'score')
        # With a threshold of 2 the same listings refuse.
        since = g.mark()
        g.set_settings({'dnsblThreshold': 2})
        g.wait_event('policy_reloaded', since)
        run = self.run_from('192.0.2.13')
        self.assertEqual(run.result, 'rejected', str(run))

    def test_dnsbl_at_connect_and_monitor(self):
        g = self.guard(BL, {'DoFCrDNS': 0, 'dnsCheckStage': 'connect'})
        since = g.mark()
        run = self.run_from('192.0.2.10')
        self.assertEqual(run.stages('connect')[0]['reply'], 'reject',
                         str(run))
        self.assertRegex(run.stages('connect')[0]['code'],
                         r'^554 5\.7\.1 .*bl\.test.*\[smtpguard 00230106\]$')
        # Monitor: logged, not refused.
        g.set_settings({'DoDNSBL': 2})
        g.wait_event('policy_reloaded', since)
        since = g.mark()
        self.assert_accepted(self.run_from('192.0.2.10'))
        ev = g.wait_event('DNSBLfailed', since, client='192.0.2.10')
        self.assertEqual(ev['action'], 'monitor')

    def test_fcrdns(self):
        g = self.guard(settings={'DoFCrDNS': 1})
        since = g.mark()
        # PTR host20.dns.test, whose A is the client: confirmed.
        self.assert_accepted(self.run_from('192.0.2.20'))
        # Two PTR names, the second one confirms.
        self.assert_accepted(self.run_from('192.0.2.23'))
        # IPv6: PTR host30.dns.test, AAAA back to the client.
        self.assert_accepted(self.run_from('2001:db8::30'))
        g.assert_no_event('rDNSfailed', since)
        # PTR host21.dns.test, whose A is another address.
        run = self.run_from('192.0.2.21')
        self.assertEqual(
            self.rcpt_code(run), '550 5.7.25 Client host rejected: cannot '
            'find your reverse hostname, [192.0.2.21] [smtpguard 00230107]')
        ev = g.wait_event('rDNSfailed', since, client='192.0.2.21')
        self.assertEqual(ev['id'], '00230107')
        self.assertEqual(ev['hostname'], 'host21.dns.test')
        self.assertEqual(ev['result'], 'mismatch')
        # No PTR at all.
        run = self.run_from('192.0.2.22')
        self.assertRegex(self.rcpt_code(run), r'^550 5\.7\.25 ')
        ev = g.wait_event('rDNSfailed', since, client='192.0.2.22')
        self.assertEqual(ev['result'], 'no_ptr')
        self.assertEqual(ev['hostname'], 'unknown')
        # The reverse zone is not served: REFUSED, a temporary error.
        run = self.run_from('198.51.100.5')
        self.assertRegex(self.rcpt_code(run),
                         r'^450 4\.7\.25 .*\[smtpguard 00230205\]$')
        g.wait_event('rdns_temperror', since, client='198.51.100.5')
        ev = g.wait_event('dns_lookup_failed', since, client='198.51.100.5')
        self.assertEqual(ev['status'], 'refused')
        self.assertEqual(ev['name'], '5.100.51.198.in-addr.arpa')

    def test_score_mode_adds_up(self):
        """DoDNSBL, DoFCrDNS and DoSPF in score mode (3): a DNSBL weight
        below dnsblThreshold, an unconfirmed PTR and an SPF softfail add
        into one penalty score; at penaltyScoreThreshold the client is
        refused with the parts logged, below it the message is accepted
        with the score in Authentication-Results."""
        g = self.guard(
            "INSERT INTO dnsbl_zones (zone, weight) VALUES ('sbl.test', 5);",
            {'DoDNSBL': 3, 'DoFCrDNS': 3, 'DoSPF': 3, 'dnsblThreshold': 100,
             'scoreFCrDNS': 25, 'scoreSPFSoftfail': 10,
             'penaltyScoreThreshold': 40})
        parts = 'SPFsoftfail=10,DNSBL=5,FCrDNS=25'
        since = g.mark()
        run = self.spf_run('a@softfail.spf.test', '192.0.2.21')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertRegex(self.rcpt_code(run), r'^5\d\d .*\[smtpguard '
                         r'00200160\]$')
        ev = g.wait_event('penalty_score_exceeded', since,
                          client='192.0.2.21')
        self.assertEqual(ev['score'], '40')
        self.assertEqual(ev['threshold'], '40')
        self.assertEqual(ev['parts'], parts)
        for name, extra in (('SPFsoftfail', {}), ('dnsbl_score', {}),
                            ('rDNSfailed', {'result': 'mismatch'})):
            ev = g.wait_event(name, since, client='192.0.2.21')
            self.assertEqual(ev['action'], 'score', name)
            for k, val in extra.items():
                self.assertEqual(ev[k], val, name)
        # One point more of room: accepted, the score as a comment.
        g.set_settings({'penaltyScoreThreshold': 41})
        g.wait_event('policy_reloaded', since)
        since = g.mark()
        run = self.spf_run('a@softfail.spf.test', '192.0.2.21')
        self.assert_accepted(run)
        self.assertEqual(
            dict(run.headers())['Authentication-Results'],
            'mx.example.com (smtpguard score=40/41 ' + parts + '); '
            'spf=softfail smtp.mailfrom=a@softfail.spf.test')
        g.assert_no_event('penalty_score_exceeded', since)

    def test_own_users_not_checked(self):
        g = self.guard(BL + "INSERT INTO relay_networks (network) "
                       "VALUES ('192.0.2.13/32');", {'DoFCrDNS': 1})
        since = g.mark()
        # Authenticated: submission, not inbound mail.
        self.assert_accepted(self.run_from('192.0.2.10', '--auth', 'alice'))
        # In relay_networks: listed, no PTR, still accepted.
        self.assert_accepted(self.run_from('192.0.2.13'))
        g.assert_no_event('DNSBLfailed', since)
        g.assert_no_event('rDNSfailed', since)
        # Exempt lists skip the lookups altogether.
        g.sql("INSERT INTO ip_lists (list, network) VALUES "
              "('whiteListedIPs', '192.0.2.10')")
        g.wait_event('policy_reloaded', since)
        self.assert_accepted(self.run_from('192.0.2.10'))

    def test_bad_zone_rows_refused(self):
        g = self.guard("INSERT INTO dnsbl_zones (zone, answers) VALUES "
                       "('bl.test', '127.0.0.[2..]'), ('bad zone', '');")
        ev = g.wait_event('list_entry_invalid')
        self.assertEqual(ev['list'], 'dnsbl_zones')
        self.assertIn('a <= b <= 255', ev['reason'])
        # A weight of 0 is refused by the table itself.
        with self.assertRaisesRegex(Exception, 'CHECK constraint'):
            g.sql("INSERT INTO dnsbl_zones (zone, weight) VALUES "
                  "('x.test', 0)")
        self.assertTrue(g.running())

    # ---------------------------------------------------------------- SPF

    def spf_run(self, sender, client='192.0.2.50', *args):
        return self.loadclient('--mail', sender, '--rcpt',
                               'user@example.test', *args, client=client)

    def mail_code(self, run):
        return run.stages('mail')[0].get('code', '')

    def test_spf_pass_headers(self):
        g = self.guard(settings={'DoFCrDNS': 0})
        since = g.mark()
        run = self.spf_run('user@pass.spf.test')
        self.assert_accepted(run)
        ev = g.wait_event('SPFpass', since, client='192.0.2.50')
        self.assertEqual(ev['id'], '00240111')
        self.assertEqual(ev['identity'], 'user@pass.spf.test')
        self.assertEqual(ev['domain'], 'pass.spf.test')
        headers = dict(run.headers())
        self.assertEqual(
            headers['Received-SPF'],
            'pass (mx.example.com: domain of user@pass.spf.test designates '
            '192.0.2.50 as permitted sender) client-ip=192.0.2.50; '
            'envelope-from="user@pass.spf.test"; '
            'helo="host-0.clients.example.net"; receiver=mx.example.com; '
            'identity=mailfrom;')
        self.assertEqual(headers['Authentication-Results'],
                         'mx.example.com; spf=pass '
                         'smtp.mailfrom=user@pass.spf.test')
        # include: and redirect= of a passing record, macros in exists:.
        for sender, client in (('a@include.spf.test', '192.0.2.50'),
                               ('a@redirect.spf.test', '192.0.2.50'),
                               ('a@macro.spf.test', '192.0.2.60')):
            self.assert_accepted(self.spf_run(sender, client))
            g.wait_event('SPFpass', since, identity=sender)
        # authservId names the receiver; the score is a comment.
        since = g.mark()
        g.set_settings({'authservId': 'mx.guard.test'})
        g.wait_event('policy_reloaded', since)
        run = self.spf_run('user@softfail.spf.test')
        self.assertEqual(
            dict(run.headers())['Authentication-Results'],
            'mx.guard.test (smtpguard score=10/50 SPFsoftfail=10); '
            'spf=softfail smtp.mailfrom=user@softfail.spf.test')

    def test_spf_fail_refused_with_explanation(self):
        g = self.guard(settings={'DoFCrDNS': 0})
        since = g.mark()
        run = self.spf_run('user@fail.spf.test')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertEqual(
            self.mail_code(run), "550 5.7.23 192.0.2.50 is not one of "
            "fail.spf.test's designated mail servers. [smtpguard 00240108]")
        ev = g.wait_event('SPFfail', since, client='192.0.2.50')
        self.assertEqual(ev['action'], 'reject')
        self.assertEqual(ev['explanation'], "192.0.2.50 is not one of "
                         "fail.spf.test's designated mail servers.")
        # spfFailAction tempfail; monitor mode only logs.
        g.set_settings({'spfFailAction': 'tempfail'})
        g.wait_event('policy_reloaded', since)
        run = self.spf_run('user@fail.spf.test')
        self.assertRegex(self.mail_code(run), r'^451 4\.7\.23 ')
        since = g.mark()
        g.set_settings({'DoSPF': 2})
        g.wait_event('policy_reloaded', since)
        self.assert_accepted(self.spf_run('user@fail.spf.test'))
        self.assertEqual(g.wait_event('SPFfail', since)['action'], 'monitor')

    def test_spf_every_result(self):
        g = self.guard(settings={'DoFCrDNS': 0})
        since = g.mark()
        cases = [
            ('a@softfail.spf.test', 'SPFsoftfail', '00240109', 'accepted'),
            ('a@neutral.spf.test', 'SPFneutral', '00240110', 'accepted'),
            ('a@none.spf.test', 'SPFnone', '00240112', 'accepted'),
            ('a@perm.spf.test', 'SPFpermerror', '00240114', 'accepted'),
            ('a@two.spf.test', 'SPFpermerror', '00240114', 'accepted'),
            ('a@limit.spf.test', 'SPFpermerror', '00240114', 'accepted'),
            ('a@void.spf.test', 'SPFpermerror', '00240114', 'accepted'),
            ('a@temp.spf.test', 'SPFtemperror', '00240113', 'tempfailed'),
            ('a@servfail.spf.test', 'SPFtemperror', '00240113',
             'tempfailed'),
            ('a@unserved.example', 'SPFtemperror', '00240113', 'tempfailed'),
        ]
        for sender, name, eid, result in cases:
            run = self.spf_run(sender)
            self.assertEqual(run.result, result, f'{sender}:\n{run}')
            ev = g.wait_event(name, since, identity=sender)
            self.assertEqual(ev['id'], eid, sender)
        reasons = {e['identity']: e.get('reason', '')
                   for e in g.find_all('SPFpermerror', since)}
        self.assertIn('unknown mechanism', reasons['a@perm.spf.test'])
        self.assertIn('more than one SPF record', reasons['a@two.spf.test'])
        self.assertIn('more than 10 DNS lookups', reasons['a@limit.spf.test'])
        self.assertIn('more than 2 void lookups', reasons['a@void.spf.test'])
        run = self.spf_run('a@temp.spf.test')
        self.assertRegex(self.mail_code(run),
                         r'^451 4\.4\.3 .*\[smtpguard 00240113\]$')
        # The null sender: the HELO identity.
        run = self.loadclient('--mail', '', '--rcpt', 'user@example.test',
                              '--helo', 'helo.spf.test', client='192.0.2.70')
        self.assert_accepted(run)
        ev = g.wait_event('SPFpass', since, client='192.0.2.70')
        self.assertEqual(ev['identity'], 'helo.spf.test')
        self.assertIn('smtp.helo=helo.spf.test',
                      dict(run.headers())['Authentication-Results'])
        # permerror refused when the operator says so: 550 5.7.24.
        since = g.mark()
        g.set_settings({'spfPermerrorAction': 'reject'})
        g.wait_event('policy_reloaded', since)
        run = self.spf_run('a@perm.spf.test')
        self.assertRegex(self.mail_code(run), r'^550 5\.7\.24 ')

    def test_spf_cve_2023_42118_record(self):
        """The record that smashes libspf2 1.2.10's stack never reaches it:
        refused by our check, permerror, and the daemon keeps serving."""
        g = self.guard(settings={'DoFCrDNS': 0,
                                 'spfPermerrorAction': 'reject'})
        since = g.mark()
        run = self.spf_run('x@cve.spf.test')
        self.assertRegex(self.mail_code(run), r'^550 5\.7\.24 ')
        ev = g.wait_event('spf_record_refused', since, client='192.0.2.50')
        self.assertEqual(ev['domain'], 'cve.spf.test')
        self.assertIn('record too long', ev['reason'])
        self.assertTrue(ev['record'].startswith('v=spf1 a:%{d}%{d}'))
        ev = g.wait_event('SPFpermerror', since, client='192.0.2.50')
        self.assertTrue(g.running())
        self.assert_accepted(self.spf_run('user@pass.spf.test'))

    def test_spf_cve_2023_42118_explanation(self):
        """An explanation of the attack's shape (served over TCP) is not
        handed to libspf2 and not used: fail without an explanation, and
        the daemon keeps serving."""
        g = self.guard(settings={'DoFCrDNS': 0})
        since = g.mark()
        for _ in range(2):      # the second from the cache
            run = self.spf_run('x@cveexp.spf.test')
            self.assertEqual(run.result, 'rejected', str(run))
            self.assertEqual(
                self.mail_code(run), '550 5.7.23 SPF fail for '
                'x@cveexp.spf.test from 192.0.2.50 [smtpguard 00240108]')
        ev = g.wait_event('SPFfail', since, client='192.0.2.50')
        self.assertEqual(ev.get('explanation', ''), '')
        self.assertTrue(g.running())
        self.assert_accepted(self.spf_run('user@pass.spf.test'))
        run = self.spf_run('user@fail.spf.test')
        self.assertIn("is not one of fail.spf.test's designated",
                      self.mail_code(run))


if __name__ == '__main__':
    import unittest
    unittest.main()
