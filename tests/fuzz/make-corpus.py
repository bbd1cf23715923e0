#!/usr/bin/env python3
"""Write the fuzzing seed corpus (corpus/NAME/) and the regression corpus of
hostile cases (regress/NAME/) that every CI run replays. Rerun after
changing the lists below; the files are committed.

  tests/fuzz/make-corpus.py
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(kind, name, items):
    d = os.path.join(HERE, kind, name)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.unlink(os.path.join(d, old))
    names = set()
    for i, data in enumerate(items):
        label = None
        if isinstance(data, tuple):     # (a file name that says what, data)
            label, data = data
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        h = hashlib.sha1(data).hexdigest()[:12]
        name = label if label else f'{i:03d}-{h}'
        assert name not in names, name
        names.add(name)
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    return len(items)


# ---- mailaddr
mail_seed = ['<user@example.com>', '<>', '<"quoted local"@example.com>',
             'postmaster', '<User@Example.COM.>', 'user+tag@xn--bcher-kva.example',
             '<@a.example,@b.example:user@example.com>',
             '<user@[IPv6:2001:db8::1]>', '<user@[192.0.2.1]>', 'user@example.com']
mail_bad = ['<' * 600 + '>' * 600, 'a' * 5000 + '@example.com',
            '<user@' + 'a.' * 300 + 'com>', '<"unbalanced@example.com>',
            '<user@example.com', 'user@example.com>', '<"\\"@example.com>',
            '<"a\\', '<\\', '"', '<"">', '<@>', '<@example.com>', '@',
            '@' * 1000, '<user@@example.com>', '<user@.example.com>',
            '<user@example..com>', '<us\x01er@example.com>',
            '<user@exa\x7fmple.com>', '<user\r\n@example.com>',
            '<user@[IPv6:::::::::]>', '<user@[', '<user@[]>',
            '<user@[999.999.999.999]>', '<\xc3\xa9t\xc3\xa9@ex\xc3\xa9mple.com>',
            '<user@' + '\xff' * 10 + '>', '<' + '"' * 101 + '>', ' ' * 3000,
            '<\t>', '<user@example.com> SIZE=1000 BODY=8BITMIME',
            '<a@b> ' + 'X=' * 500, '\\' * 999, '<"' + 'x' * 70 + '"@e.com>',
            '<' + 'x' * 65 + '@e.com>', ':user@example.com', '<,@a:b@c>',
            '<@a:>', '<@:user@example.com>']

# ---- addr
addr_seed = ['192.0.2.1', '2001:db8::1', '192.0.2.0/24', '2001:db8::/32',
             'IPv6:2001:db8::1', '[2001:db8::1]', 'fe80::1%eth0',
             '::ffff:192.0.2.1', '::1', '0.0.0.0/0']
addr_bad = ['999.1.1.1', '1.2.3.4/33', '::/129', '1.2.3.4/-1', '1.2.3.4/',
            '/24', '1.2.3.4/4294967297', '1.2.3.4/024', '[', '[]', 'IPv6:',
            '[2001:db8::1', 'fe80::1%' + 'e' * 500, '1.2.3', '1.2.3.4.5',
            '01.02.03.04', '1..2.3', '::::', '2001:db8:::1', ':' * 100,
            'ffff' * 40, '1.2.3.4 ', ' 1.2.3.4', '1.2.3.4\n', '%%%%',
            '1.2.3.4/24/24', '192.0.2.1/24', 'IPv6:IPv6:::1', '[::1]:25',
            '1e3.0.0.1', '0x7f.0.0.1', '::ffff:999.0.0.1',
            '2001:db8::1/64x', '\x00192.0.2.1', 'a' * 4000, '::ffff:1.2.3.4/129',
            '1.2.3.4%eth0', 'fe80::%', '[fe80::1%eth0]']

# ---- dns: two bytes (type index, name index) then the reply


def name(n):
    return b''.join(bytes([len(p)]) + p for p in n.encode().split(b'.')) + b'\0'


def reply(qid, qname, qtype, answers=b'', an=0, flags=0x8580, ns=0, ar=0,
          extra=b''):
    return (struct.pack('!HHHHHH', qid, flags, 1, an, ns, ar) + name(qname)
            + struct.pack('!HH', qtype, 1) + answers + extra)


def rr(owner, t, rdata, ttl=300):
    return owner + struct.pack('!HHIH', t, 1, ttl, len(rdata)) + rdata


A = reply(0x1234, 'x.test', 1, rr(b'\xc0\x0c', 1, bytes([127, 0, 0, 2])), 1)
TXT = reply(0x1234, 'x.test', 16, rr(b'\xc0\x0c', 16, b'\x06v=spf1\x04 -all'), 1)
PTR = reply(0x1234, '1.2.0.192.in-addr.arpa', 12,
            rr(b'\xc0\x0c', 12, name('mail.example.com')), 1)
MX = reply(0x1234, 'example.com', 15,
           rr(b'\xc0\x0c', 15, b'\x00\x0a' + name('mx.example.com')), 1)
NX = reply(0x1234, 'x.test', 1, flags=0x8583, ns=1,
           extra=rr(name('test'), 6, name('ns.test') + name('h.test')
                    + struct.pack('!IIIII', 1, 2, 3, 4, 60)))
dns_seed = [b'\0\0' + A, b'\x04\0' + TXT, b'\x02\x02' + PTR,
            b'\x03\x03' + MX, b'\0\0' + NX]
loop = reply(9, 'x.test', 1, b'\xc0\x18' + struct.pack('!HHIH', 1, 1, 1, 4)
             + b'\x7f\0\0\x02', 1)
dns_bad = [b'', b'\0', b'\0\0', b'\0\0' + b'\0' * 12, b'\0\0' + loop,
           b'\0\0' + reply(1, 'x.test', 1, an=65535),
           b'\0\0' + reply(1, 'x.test', 1, rr(b'\xc0\x0c', 1, b'\x7f'), 1),
           b'\0\0' + reply(1, 'x.test', 1,
                           b'\xc0\x0c' + struct.pack('!HHIH', 1, 1, 1, 60000), 1),
           b'\0\0' + reply(1, 'x.test', 1, rr(b'\xc0\xff', 1, b'\x7f\0\0\1'), 1),
           b'\0\0' + reply(1, 'x.test', 1, rr(b'\x40' + b'a' * 64 + b'\0', 1,
                                              b'\x7f\0\0\1'), 1),
           b'\x05\0' + reply(1, 'x.test', 5,
                             rr(b'\xc0\x0c', 5, b'\xc0\x0c'), 1),
           b'\0\0' + reply(1, 'x.test', 1,
                           rr(b'\xc0\x0c', 5, name('y.test'))
                           + rr(name('y.test'), 5, name('x.test')), 2),
           b'\x04\0' + reply(1, 'x.test', 16,
                             rr(b'\xc0\x0c', 16, b'\xff' + b'a' * 10), 1),
           b'\x04\0' + reply(1, 'x.test', 16, b''.join(
               rr(b'\xc0\x0c', 16, b'\xff' + b'a' * 255) for _ in range(40)),
               40),
           b'\x02\x02' + reply(1, '1.2.0.192.in-addr.arpa', 12,
                               rr(b'\xc0\x0c', 12, b'\x05a.b\0c\0'), 1),
           b'\x02\x02' + reply(1, '1.2.0.192.in-addr.arpa', 12,
                               rr(b'\xc0\x0c', 12, b'\x03a b\x04test\0'), 1),
           b'\x03\x03' + reply(1, 'example.com', 15,
                               rr(b'\xc0\x0c', 15, b'\x00'), 1),
           b'\0\0' + reply(1, 'x.test', 1, flags=0x0580),
           b'\0\0' + reply(1, 'x.test', 1, flags=0xfd80),
           b'\0\0' + struct.pack('!HHHHHH', 1, 0x8580, 2, 0, 0, 0)
           + name('x.test') + b'\0\1\0\1' + name('x.test') + b'\0\1\0\1',
           b'\0\0' + struct.pack('!HHHHHH', 1, 0x8580, 0, 0, 0, 0),
           b'\0\0' + reply(1, 'x.test', 1, ns=65535, ar=65535),
           b'\0\0' + b'\xff' * 600, b'\0\0' + b'\0' * 4096]
dns_bad += [b'\0\0' + A[:i] for i in range(1, len(A), 3)]
dns_bad += [b'\x04\0' + TXT[:i] for i in range(12, len(TXT), 4)]

# ---- spf records (and explanation strings)
spf_seed = ['v=spf1 -all', 'v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 ~all',
            'v=spf1 a mx include:_spf.example.com -all',
            'v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all',
            'v=spf1 redirect=_spf.example.com', 'v=spf1 -all exp=exp.%{d}',
            '%{i} is not one of %{d}\'s servers', 'v=spf1 a/24//64 mx/0 -all']
cve_42118 = 'v=spf1 a:' + '%{d}' * 500 + 'x' * 2100 + '.example.com'
# libspf2's 2021 CVEs, by shape: URL-encoding upper-case macros written
# with sprintf (CVE-2021-33912), reversal with every delimiter
# (CVE-2021-33913), long macro-laden explanations (CVE-2021-20314).
cve_2021 = ['v=spf1 exists:%{S}%{S}%{S}%{S}%{L}%{O}.x.com -all',
            'v=spf1 exists:%{Lr}%{Sr-+}%{H}%{I}.x.com',
            'v=spf1 exists:%{lr-.+,/_=}%{lr-.+,/_=}%{lr-.+,/_=}.x.com',
            'v=spf1 exists:%{l1r-.+,/_=}%{o2r-.+,/_=}.x.com',
            '%{L}%{S}%{O}%{H}%{C}%{R}%{T}%{I}%{P}%{V}' * 40,
            'v=spf1 -all exp=%{L}%{L}%{L}%{L}.exp.x.com']
spf_bad = cve_2021 + [cve_42118, 'v=spf1 a:' + '%{d}' * 23 + '.example.com',
           'v=spf1 a:' + '%{d}' * 25 + '.example.com',
           'v=spf1 exists:%{lr1000}.%{sr-}.x.com',
           'v=spf1 exists:%{l128r-+,/_=.}.example.com',
           'v=spf1 exists:%{s99r}%{s99r}%{s99r}%{s99r}.example.com',
           'v=spf1 exists:%{h}%{h}%{h}%{h}%{h}%{h}%{h}%{h}.x.com',
           'v=spf1 ' + 'a ' * 5000, 'v=spf1 ' + 'ip4:1.2.3.4 ' * 45,
           'v=spf1 a:%{', 'v=spf1 a:%{d', 'v=spf1 a:%{d}}', 'v=spf1 a:%',
           'v=spf1 a:%%%', 'v=spf1 a:%{z}.x.com', 'v=spf1 a:%{c}.x.com',
           'v=spf1 a:%{d0}.x.com', 'v=spf1 a:%{d999}.x.com',
           'v=spf1 ip4:1.2.3.4/33', 'v=spf1 ip4:1.2.3.4/033',
           'v=spf1 ip6:::/129', 'v=spf1 a//129', 'v=spf1 a/33',
           'v=spf1 redirect=a.x.com redirect=b.x.com',
           'v=spf1 exp=a.x.com exp=b.x.com', 'v=spf1 -all\0x',
           'v=spf1 include:', 'v=spf1 a:x', 'v=spf1 a:x.123',
           'v=spf1 =a', 'v=spf1 a:\x80.x.com', 'v=spf1\ta',
           'v=spf1 ' + 'x=' * 2000, 'v=spf1 a:' + 'a.' * 400 + 'com',
           'v=spf10 -all', 'V=SPF1 A:%{D}.EXAMPLE.COM -ALL',
           'v=spf1 a:foo:bar/baz.example.com/24//64',
           'v=spf1 mx:%{d}.//0 a:%{d}./0', 'x' * 8000, '%' * 600,
           '%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}',
           'v=spf1 ptr:' + '%{p}' * 30 + '.x.com']

# ---- settings
set_seed = ['1', '0', 'yes', 'rules', '15m', '127.0.0.1:53 [::1]:53', 'info',
            'mx.example.test', 'tempfail']
set_bad = ['99999999999999999999', '-1', '1x', '', ' ', '1 ', '1d1', '0x10',
           '9223372036854775807d', 'x' * 300, 'a\x01b', '[::1', ':',
           '127.0.0.1:0', '127.0.0.1:65536', '1.2.3.4:53:53',
           ' '.join(['127.0.0.1'] * 20), '\xff\xfe', 'yes\n', 'YES',
           'Rules ', 'connect,helo', '-0', '+1', '1e3', '\t3']

# ---- log lines
line_seed = [
    '2026-11-22T23:46:38.391759+00:00 mx smtpguard[6537]: NOQUEUE: '
    'id=00230106 event=DNSBLfailed severity=warning action=reject '
    'client=192.0.2.10 service=smtp session=1 ip=192.0.2.10 zone=bl.test '
    'answer=127.0.0.2 reason="Listed \\"x\\"" score=2 threshold=1 '
    'msg="DNSBL lookup"\n',
    'Nov 22 10:00:00 mx smtpguard[1]: 4Xz9YQ: id=00210201 '
    'event=relay_attempt_rejected severity=warning action=reject '
    'client=198.51.100.7 ip=198.51.100.7 sender=a@b.test recipient=c@d.test '
    'msg="Relay attempt"\n',
    'Nov 22 10:00:00 mx postfix/smtpd[1]: connect from unknown[192.0.2.1]\n']
line_bad = [
    'mx smtpguard[', 'smtpguard[1]: ', ' smtpguard[1]: Q: id=1 event=x',
    '2026-11-22T10:00:00+00:00 mx smtpguard[1]: Q: id=00200150 '
    'event=e msg="unterminated', '2026-99-99T99:99:99+99:99 mx smtpguard[1]: '
    'Q: id=00200150 event=e severity=warning action=reject client=x',
    'Xyz 99 99:99:99 mx smtpguard[1]: Q: id=1 event=e severity=s',
    ' smtpguard[1]: Q: ' + 'k=v ' * 5000,
    ' smtpguard[1]: Q: id=1 event=e sender="' + '\\' * 1000,
    ' smtpguard[1]: Q: id=' + '9' * 5000 + ' event=e action=reject',
    ' smtpguard[1]: Q: id=00200150 event=e action=reject sender=@@@@ '
    'domain=',
    ' smtpguard[1]: Q: id=00230201 event=dnsbl_listed zone= action=none',
    ' smtpguard[1]: Q: id=00240108 event=SPF action=reject ban_seconds=1',
    '\0' * 100, '\xff\xfe' * 100, 'a' * 200000,
    ' smtpguard[1]: Q: =x =y =z', ' smtpguard[1]: Q: id=1 event=e '
    'client=' + 'x' * 600 + ' action=reject',
    '2026-11-22T10:00:00 mx smtpguard[1]: Q: id=1 event=e action=close',
    '2026-11-22T10:00:00+0 mx smtpguard[1]: Q: id=1 event=e',
    '\n' * 1000, ' smtpguard[1]: Q: id=00200150 event=e action=reject '
    'sender="a@b' + '\n' + 'c"',
    # Found by fuzz-logline: sscanf() read the unterminated line past its end.
    'Nov 22 10:00:0+ mx smtpguard[1]: 4Xz9YQ: id=00210201 '
    'event=relay_attemp_trejected severity=warni ng a@d.test msg="Relay"\n',
    'Nov 22 10:00:00', '2026-11-22T10:00:00', '2026-11-22T10:00:00+01:00']


# Whole checks (fuzz_spf.c's lines after the record): the client, HELO,
# sender and the zone the in-memory DNS answers from (fakedns.h).
spf_seed += [
    'v=spf1 include:_spf.example.com mx -all exp=exp.example.com\n'
    '_spf.example.com TXT v=spf1 a:%{d}.x.test ~all\n'
    'example.com MX 10 mx.example.com\nmx.example.com A 192.0.2.77\n'
    'exp.example.com TXT %{L} %{S} %{lr} at %{i} not allowed by %{d} '
    '(%{h} %{p} %{v} %{c} %{r} %{t})\nip 198.51.100.1',
    'v=spf1 redirect=r.example.com\nr.example.com TC\n'
    'r.example.com TXT v=spf1 ip4:192.0.2.10 -all',
    'v=spf1 a:x.example.com -all\nx.example.com BADID\n'
    'x.example.com A 192.0.2.10',
    'v=spf1 a:x.example.com -all\nx.example.com DROP',
    'v=spf1 a:%{d} -all\n* CNAME y.example.com\ny.example.com A 192.0.2.10'
    '\nfrom <>\nhelo h.example.com',
    'v=spf1 exists:%{ir}.%{v}._spf.%{d} ip6:2001:db8::/64 -all\n'
    'ip 2001:db8::7\n* A 127.0.0.2',
    'v=spf1 ptr:example.com -all\n'
    '10.2.0.192.in-addr.arpa PTR mail.example.com\n'
    'mail.example.com A 192.0.2.10',
    'v=spf1 mx/24 a//64 -all\nexample.com MX 0 a.example.com\n'
    'example.com MX 10 b.example.com\na.example.com A 192.0.2.1\n'
    'b.example.com AAAA 2001:db8::1\nexample.com A 192.0.2.200',
    'v=spf1 ?all\nfrom <"quoted local"@example.com>\nrcv mx.test',
]
mx20 = ''.join(f'\nexample.com MX {i} m{i}.example.com' for i in range(20))
ptr20 = ''.join(f'\n10.2.0.192.in-addr.arpa PTR p{i}.example.com'
                for i in range(20))
spf_bad += [
    # CVE-2021-33912/-33913 by shape, now expanded: URL-encoded and
    # reversed local parts with every delimiter, a long dotted sender.
    'v=spf1 exists:%{L}%{S}%{O}%{H}.x.test -all\nfrom <'
    + 'a-b+c.' * 9 + 'x@example.com>',
    'v=spf1 exists:%{lr-.+,/_=}.%{sr-.+,/_=}.x.test -all\nfrom <'
    + '-.+,/_=' * 9 + '@example.com>',
    'v=spf1 exists:%{l1r-}.%{o2r}.%{d3r}.x.test -all\nfrom <'
    + 'a-' * 32 + '@a.b.c.d.e.f.example.com>',
    'v=spf1 exists:%{l}.x.test -all\nfrom <"a%{l}b%%c"@example.com>',
    'v=spf1 exists:%{L}.x.test -all\nfrom <"\\"\\\\ %{L}"@example.com>',
    'v=spf1 exists:%{l}.x.test -all\nfrom <' + 'x' * 64 + '@example.com>',
    'v=spf1 exists:%{l}.x.test -all\nfrom <' + 'x' * 65 + '@example.com>',
    # CVE-2021-20314 by shape: the explanation libspf2 expands itself.
    'v=spf1 -all exp=e.example.com\ne.example.com TXT '
    + '%{Lr-+.}%{Sr}%{H}' * 60,
    'v=spf1 -all exp=e.example.com\ne.example.com TXT a\0b%{l}\0',
    'v=spf1 -all exp=e.example.com\ne.example.com TXT ' + 'e' * 8000,
    'v=spf1 -all exp=e.example.com\ne.example.com TXT %{q}%{' + '%' * 5,
    'v=spf1 -all exp=e.example.com\ne.example.com TXT %{p}%{p}%{p}%{p}\n'
    + ptr20.lstrip('\n'),
    'v=spf1 -all exp=e.example.com\ne.example.com CNAME e.example.com',
    'v=spf1 -all exp=%{l}.example.com\nfrom <a.b@example.com>\n'
    '* TXT %{l}%{l}%{l}%{l}%{l}%{l}%{l}%{l}',
    # Our limits across the whole evaluation.
    'v=spf1 +all\nexample.com TXT v=spf1 -all',
    'v=spf1 include:example.com -all',
    'v=spf1 redirect=r0.example.com' + ''.join(
        f'\nr{i}.example.com TXT v=spf1 redirect=r{i + 1}.example.com'
        for i in range(14)),
    'v=spf1 ' + ' '.join(f'include:i{i}.example.com' for i in range(11))
    + ' -all\n* TXT v=spf1 ?all',
    'v=spf1 mx -all' + mx20 + '\n* A 192.0.2.250',
    'v=spf1 ptr -all' + ptr20 + '\n* A 192.0.2.10',
    'v=spf1 a:n1.x.test a:n2.x.test a:n3.x.test -all',
    'v=spf1 a:l.example.com -all\nl.example.com CNAME m.example.com\n'
    'm.example.com CNAME l.example.com',
    'v=spf1 a -all\nexample.com SERVFAIL',
    'v=spf1 a -all\nexample.com REFUSED',
    'v=spf1 a -all\nexample.com NXDOMAIN',
    'v=spf1 include:t.example.com -all\nt.example.com DROP',
    'v=spf1 include:t.example.com -all\nt.example.com TXT ' + 'v=spf1 ' +
    'ip4:192.0.2.1 ' * 39 + '-all',
    'v=spf1 a:t.example.com -all' + ''.join(
        f'\nt.example.com A 192.0.2.{i}' for i in range(60)),
    'v=spf1 exists:%{i}.x.test -all\nip ::ffff:192.0.2.10\n* A 127.0.0.2',
    'v=spf1 exists:%{ir}.x.test -all\nip fe80::1%eth0',
    'v=spf1 a -all\nhelo ' + 'h' * 299 + '\nfrom <>',
    'v=spf1 a:%{h}.%{h}.%{h}.%{h} -all\nhelo ' + 'a.' * 120 + 'x',
    'v=spf1 -all\nfrom <user@' + 'a.' * 126 + 'com>',
    'v=spf1 -all\nexample.com TXT \nexample.com TXT v=spf1',
    'v=spf1 -all\nexample.com TXT ' + 'v' * 255 + '\nexample.com MX 1 .',
    'v=spf1 a:x.example.com -all\nx.example.com CNAME ' + 'a' * 70 + '.com',
    'v=spf1 mx -all\nexample.com MX 10 ' + 'b.' * 130 + 'com',
    'v=spf1 -all\n\n\n\nip\nhelo\nfrom\nrcv\n* \n* TXT',
]


# exp= against libspf2's macro compiler. A sender domain publishing
# 'v=spf1 -all exp=NAME' whose NAME holds an SPF-looking record of ~720
# bytes once crashed the daemon: libspf2 fetched the exp= target through
# our DNS layer, got the one SPF record of the answer (it passes our record
# check) and compiled it in SPF_record_compile_macro(), 511-byte stack
# buffer, stack smashing. Now we fetch and expand explanations ourselves
# (lib/spf.c fetch_exp()); fuzz_spf.c aborts if libspf2 compiles a text of
# the network. The main case, then the shapes around it.


def letters(n, c='a'):
    return c * n


def spfish(runs, macro='%{d}', tail='.example'):
    """v=spf1 exists:<run>MACRO ... exists:<last run>TAIL -all"""
    terms = [f'exists:{letters(r)}{macro}' for r in runs[:-1]]
    terms.append(f'exists:{letters(runs[-1])}{tail}')
    return 'v=spf1 ' + ' '.join(terms) + ' -all'


HOSTILE = spfish([236, 232, 200])
assert 700 < len(HOSTILE) < 730, len(HOSTILE)


def exp_case(target_txt, record='v=spf1 -all exp=e.example.com',
             name='e.example.com', extra=''):
    return record + f'\n{name} TXT {target_txt}' + extra


PTR_CLIENT = ('\n10.2.0.192.in-addr.arpa PTR ' + letters(60, 'p')
              + '.example.com\n' + letters(60, 'p')
              + '.example.com A 192.0.2.10')
exp_regress = [
    ('exp-spf-record-720-bytes-crashed-libspf2', exp_case(HOSTILE)),
    # The same through the harness's exp line (no name to keep in step).
    ('exp-spf-record-720-bytes-exp-line',
     'v=spf1 -all exp=e.example.com\nexp ' + HOSTILE),
    # Longer and shorter targets, around the 511-byte buffer and our 512.
    ('exp-spf-record-1000-bytes', exp_case(spfish([250, 250, 250, 200]))),
    ('exp-spf-record-510-bytes', exp_case(spfish([236, 236]))),
    ('exp-spf-record-530-bytes', exp_case(spfish([246, 246]))),
    ('exp-spf-record-300-bytes', exp_case(spfish([140, 120]))),
    ('exp-spf-record-8-macros', exp_case(
        'v=spf1 ' + ' '.join(f'exists:{letters(60)}%{{d}}%{{d}}'
                             for _ in range(8)) + ' -all')),
    # Each macro letter in an SPF-looking target (%{p} with a PTR name).
    ('exp-spf-record-macro-i', exp_case(spfish([236, 232, 200], '%{i}'))),
    ('exp-spf-record-macro-ir-ipv6',
     exp_case(spfish([236, 232, 200], '%{ir}')) + '\nip 2001:db8::1:2:3:4'),
    ('exp-spf-record-macro-p', exp_case(spfish([236, 232, 200], '%{p}'))
     + PTR_CLIENT),
    ('exp-spf-record-macro-l', exp_case(spfish([236, 232, 200], '%{l}'))
     + '\nfrom <' + letters(64, 'l') + '@example.com>'),
    ('exp-spf-record-macro-h', exp_case(spfish([236, 232, 200], '%{h}'))
     + '\nhelo ' + 'h' * 60 + '.' + 'h' * 60 + '.example'),
    ('exp-spf-record-macro-upper-url-escaped', exp_case(
        spfish([200, 200, 200], '%{L}%{S}%{H}'))
     + '\nfrom <"a b%c"@example.com>'),
    ('exp-spf-record-macro-reversed-delims', exp_case(
        spfish([200, 200, 200], '%{l1r-.+,/_=}'))),
    # Explanations that are text, with macros: ours expands them.
    ('exp-text-every-macro', exp_case(
        '%{s} %{l} %{o} %{d} %{i} %{p} %{v} %{h} %{c} %{r} %{t} '
        '%{d2} %{ir} %{l1r-} %% %_ %-') + PTR_CLIENT),
    ('exp-text-macro-p-ten-ptr-names', exp_case('%{p} %{p} %{p}') + ''.join(
        f'\n10.2.0.192.in-addr.arpa PTR n{i}.example.com' for i in range(12))
     + '\nn11.example.com A 192.0.2.10'),
    ('exp-text-macro-p-ptr-line', 'v=spf1 -all exp=e.example.com\n'
     'exp %{p} is %{P}\nptr ' + 'x' * 63 + '.example.com\nptr- other.test'),
    ('exp-text-200-macros-d', exp_case('%{d}' * 120)),
    ('exp-text-upper-macros-url-escape', exp_case('%{L}' * 40)
     + '\nfrom <' + '"' + '%' * 60 + '"@example.com>'),
    # Several TXT strings: 2 of 255 and a rest (within our 512), 3 strings
    # over it, and an SPF-looking record of 4 strings.
    ('exp-text-three-strings-within-512', exp_case(
        '%{i} ' + letters(250, 'x') + ' %{d} ' + letters(200, 'y'))),
    ('exp-text-three-strings-over-512', exp_case(letters(700, 'z'))),
    ('exp-spf-record-four-strings', exp_case(
        spfish([250, 250, 250], '%{d}.%{d}'))),
    # More than one record at the target (6.2: no explanation).
    ('exp-target-two-records-one-spf', exp_case(HOSTILE)
     + '\ne.example.com TXT %{i} not allowed'),
    ('exp-target-two-spf-records', exp_case(HOSTILE)
     + '\ne.example.com TXT ' + spfish([200, 200])),
    ('exp-target-two-text-records', exp_case('first %{d}')
     + '\ne.example.com TXT second %{i}'),
    # More than one exp= (a permerror of ours), an exp= and a redirect=.
    ('exp-twice-in-record', exp_case(
        HOSTILE, record='v=spf1 -all exp=e.example.com exp=f.example.com')
     + '\nf.example.com TXT ' + HOSTILE),
    # An SPF record as the target, short; one whose exp= points on.
    ('exp-target-short-spf-record', exp_case('v=spf1 -all')),
    ('exp-target-spf-record-with-exp', exp_case(
        'v=spf1 -all exp=g.example.com') + '\ng.example.com TXT ' + HOSTILE),
    ('exp-target-is-the-record-itself', exp_case(
        'v=spf1 -all exp=example.com', record='v=spf1 -all exp=example.com',
        name='x.example.com')),
    # exp= on a redirect= target (it counts) and on an include (it does
    # not); a redirect target that is itself the hostile record.
    ('exp-in-redirect-target',
     'v=spf1 redirect=r.example.com exp=x.example.com\n'
     'r.example.com TXT v=spf1 -all exp=e.r.example.com\n'
     'e.r.example.com TXT ' + HOSTILE + '\nx.example.com TXT ' + HOSTILE),
    ('exp-in-redirect-target-text',
     'v=spf1 redirect=r.example.com\n'
     'r.example.com TXT v=spf1 -all exp=e.r.example.com\n'
     'e.r.example.com TXT %{d} refuses %{i}'),
    ('exp-redirect-target-is-hostile',
     'v=spf1 redirect=r.example.com\nr.example.com TXT ' + HOSTILE),
    ('exp-in-include-target',
     'v=spf1 include:i.example.com -all\n'
     'i.example.com TXT v=spf1 ?all exp=e.i.example.com\n'
     'e.i.example.com TXT ' + HOSTILE),
    ('exp-include-target-hostile-fails',
     'v=spf1 include:i.example.com -all exp=e.example.com\n'
     'i.example.com TXT v=spf1 -all exp=e.i.example.com\n'
     'e.i.example.com TXT ' + HOSTILE + '\ne.example.com TXT ' + HOSTILE),
    # A macro in the exp= domain-spec; one that expands past 253.
    ('exp-target-macro-l', exp_case(
        HOSTILE, record='v=spf1 -all exp=%{l}.e.example.com',
        name='a.e.example.com') + '\nfrom <a@example.com>'),
    ('exp-target-macro-over-253', exp_case(
        HOSTILE, record='v=spf1 -all exp=%{l}.%{l}.%{l}.%{l}.%{d}',
        name='*') + '\nfrom <' + letters(63, 'l') + '@example.com>'),
    ('exp-target-macro-ir-ipv6', exp_case(
        HOSTILE, record='v=spf1 -all exp=%{ir}.%{v}.e.example.com',
        name='*') + '\nip 2001:db8::7'),
    # The HELO identity (null sender).
    ('exp-helo-identity-null-sender',
     'v=spf1 -all exp=e.h.example.com\ne.h.example.com TXT ' + HOSTILE
     + '\nfrom <>\nhelo h.example.com'),
    ('exp-helo-identity-text',
     'v=spf1 -all exp=e.h.example.com\ne.h.example.com TXT %{s} %{h} %{d}'
     '\nfrom <>\nhelo h.example.com'),
    # Softfail and neutral: the target is not fetched at all.
    ('exp-softfail-not-fetched', exp_case(HOSTILE,
                                          record='v=spf1 ~all exp=e.example.com')),
    ('exp-neutral-not-fetched', exp_case(HOSTILE,
                                         record='v=spf1 ?all exp=e.example.com')),
    # Targets that give nothing: NXDOMAIN, void (NODATA), faults, a CNAME
    # to the hostile text, TC (TCP after a truncated reply), .invalid.
    ('exp-target-nxdomain', 'v=spf1 -all exp=e.example.com\n'
     'e.example.com NXDOMAIN'),
    ('exp-target-void-no-records', 'v=spf1 -all exp=e.example.com'),
    ('exp-target-void-nodata', 'v=spf1 -all exp=e.example.com\n'
     'e.example.com A 192.0.2.1'),
    ('exp-target-servfail', exp_case(HOSTILE) + '\ne.example.com SERVFAIL'),
    ('exp-target-drop', 'v=spf1 -all exp=e.example.com\ne.example.com DROP'),
    ('exp-target-truncated-then-tcp', exp_case(HOSTILE)
     + '\ne.example.com TC'),
    ('exp-target-cname-to-hostile', 'v=spf1 -all exp=e.example.com\n'
     'e.example.com CNAME f.example.com\nf.example.com TXT ' + HOSTILE),
    ('exp-target-invalid-tld', 'v=spf1 -all exp=e.invalid\n'
     'e.invalid TXT ' + HOSTILE),
    ('exp-target-empty-text', exp_case('')),
    ('exp-target-nul-in-text', exp_case('abc\0%{d}\0' + HOSTILE)),
    # The hostile record as the sender's own record, and as an explanation
    # string on the first line (our checks and libspf2's compiler).
    ('exp-hostile-as-sender-record', HOSTILE),
    ('exp-hostile-as-sender-record-fails', HOSTILE + '\n* A 127.0.0.2'),
]
spf_bad += exp_regress

# Seeds for the new lines (exp, ptr) and macros in the targets of
# exists:, include:, redirect=.
spf_seed += [
    'v=spf1 -all exp=e.example.com\nexp %{i} may not send for %{d} '
    '(%{p})\nptr mail.example.com',
    'v=spf1 ptr -all\nptr mail.example.com\nptr- x.example.net',
    'v=spf1 -all exp=exp.%{d}\nexp %{L} at %{h}: see %{r}',
    'v=spf1 include:%{l}._i.%{d} redirect=%{d2}._r.example.net\n'
    'user._i.example.com TXT v=spf1 exists:%{ir}.%{o}.x.test -all\n'
    'example.com._r.example.net TXT v=spf1 ?all\nfrom <user@example.com>',
    'v=spf1 redirect=_r.%{d}\n_r.example.com TXT v=spf1 -all exp=e.%{d}\n'
    'e._r.example.com TXT %{d} says no to %{i}',
]

# ---- HELO names (fuzz_helo.c): the C string libmilter hands mlfi_helo
helo_seed = ['mail.example.com', 'MAIL.Example.COM.', '[192.0.2.1]',
             '[IPv6:2001:db8::1]', 'localhost', 'xn--bcher-kva.example',
             'a-b_c.example.test', 'host']
helo_bad = ['h' * 300, 'a.' * 150, '.example.com', 'example..com',
            'ex ample.com', 'exa\x01mple.com', '\xff\xfe.example.com',
            'a\0b.example.com', 'ex%{d}.example.com', '%{h}', '%{h}.x.test',
            'a' * 63 + '.' + 'b' * 64 + '.com', 'a' * 64 + '.com',
            ('a' * 62 + '.') * 4 + 'com', 'x.' * 126 + 'c',
            'x.' * 126 + 'cc', '-.example.com', 'example.com-', '[', '[]',
            '[1.2.3.4', '[IPv6:', 'x' * 9000, '\r\nMAIL FROM:<x>',
            'a\rb.example.com', '"quoted".example.com', 'a;b.example.com',
            'a"b.example.com', 'a\\b.example.com', 'a(b).example.com',
            '*.example.com', '_spf.example.com', '1.2.3.4', '0x7f.1',
            'example.com\t', ' example.com', '', '.', '..', 'a.', '%%%.x',
            '\xc3\xa9t\xc3\xa9.example', '\x7f.example.com']

# ---- milter event sequences (fuzz_milter.c): each one session or more,
# fed to the session API as callbacks.c feeds it, fresh database each.
PFX = 'X {daemon_name} smtpd\nX j mx.receiver.test\n'


def conn(addr='192.0.2.10', fam='4', host='client.example'):
    return f'C {fam} {addr} 40025 {host}\n'


def session(mail='<user@example.com>', rcpt='<postmaster@example.com>',
            helo='client.example', addr='192.0.2.10', fam='4'):
    return (PFX + conn(addr, fam) + f'H {helo}\nX i 4ABC\nF {mail}\n'
            f'R {rcpt}\nE\nQ\n')


big = 20000
milter_seed = [
    session(),
    PFX + conn() + 'H c.example\nF <>\nR <postmaster@example.com>\nA\n'
    'F <a@example.com>\nR <b@example.com>\nE\nQ\n',
    PFX + 'X {client_addr} 192.0.2.20\n' + conn('/run/mta', 'U', 'localhost')
    + 'H c.example\nX {auth_authen} alice\nF <alice@example.com>\n'
    'X {rcpt_mailer} smtp\nR <friend@far.test>\nE\nQ\n',
    'P DoSPF 1\nZ example.com TXT v=spf1 -all exp=e.example.com\n'
    'Z e.example.com TXT %{l} may not send from %{i}\n' + session(),
    PFX + conn('2001:db8::25', '6') + 'H [IPv6:2001:db8::25]\n'
    'F <a@example.com>\nR <b@example.com>\nE\nT\nQ\n',
]
milter_bad = [
    # NUL-laden HELO, MAIL, RCPT (the argument ends at the first NUL).
    PFX + conn() + 'H a\0b\0c\nF <a\0b@example.test>\0SIZE=1\n'
    'R <a\0b@example.test>\0NOTIFY=NEVER\nR \0\0\nE\nQ\n',
    PFX + conn() + 'H \0\nF \0\0\0\nR \0\nU \0\nE\nQ\n',
    PFX + conn() + 'H \xff\xfe\0\nF <\x01\x02>\0\nR <\x7f@\x01>\nQ\n',
    # Oversized arguments.
    PFX + conn() + 'H ' + 'h' * big + '\nF <user@example.com>\nQ\n',
    PFX + conn() + 'H c.example\nF <' + 'x' * big + '@example.test>\n'
    'F <' + 'x' * 64 + '@' + 'd.' * 200 + 'test>\nQ\n',
    PFX + conn() + 'H c.example\nF <a@example.com>\nR <' + 'r' * big
    + '>\nR <a@' + 'b' * big + '>\nE\nQ\n',
    PFX + conn() + 'U ' + 'u' * big + '\nQ\n',
    # Missing macros, no arguments at all.
    conn() + 'H\nF\nR\nU\nE\nA\nQ\n',
    'C 4 192.0.2.10 25\nH c.example\nF <a@b.example>\nR <c@d.example>\nE\n',
    'C U /run/mta 0 localhost\nH c.example\nF <a@b.example>\n'
    'R <c@d.example>\nE\nQ\n',
    'X {client_addr}\nC U /run/mta 0\nH x\nF <>\nR <postmaster@x>\nE\n',
    'C\nC \nC 4\nH x\nQ\n',
    # Unknown address families, addresses no family can parse.
    PFX + 'C 99 whatever 0 host\nH x\nF <a@b.example>\nQ\n',
    PFX + 'X {client_addr} 192.0.2.30\nC 0 x 0 h\nH x\nF <a@b.c>\nQ\n',
    PFX + 'C - - 0 h\nH x\nF <a@b.example>\nR <c@d.example>\nE\nQ\n',
    PFX + 'C 4 256.1.1.1 25 x\nH x\nF <a@b.c>\nQ\n',
    PFX + 'C 6 192.0.2.1 25 x\nH x\nQ\n',
    PFX + 'X {client_addr} ' + 'a' * 5000 + '\nC U x 0 h\nH x\nF <>\nQ\n',
    PFX + 'X {client_addr} \0\nC U x 0 h\nH x\nF <>\nQ\n',
    # IPv6: scoped (libmilter drops it as family 6; as {client_addr}),
    # IPv4-mapped, link-local, loopback, the unspecified address.
    PFX + 'C 6 fe80::1%eth0 25 h\nH x\nF <a@b.c>\nQ\n',
    PFX + 'X {client_addr} fe80::1%eth0\nC U x 0 h\nH x\n'
    'F <a@example.com>\nR <b@example.com>\nE\nQ\n',
    PFX + 'X {client_addr} [fe80::1%' + 'e' * 300 + ']\nC U x 0 h\nH x\n'
    'F <a@example.com>\nQ\n',
    PFX + conn('::ffff:192.0.2.93', '6') + 'H x\nF <a@example.com>\n'
    'R <b@example.com>\nE\nQ\n',
    PFX + conn('::', '6') + conn('::1', '6') + conn('fe80::1', '6')
    + 'H x\nF <a@example.com>\nQ\n',
    PFX + 'X {client_addr} IPv6:::ffff:10.0.0.1\nC U x 0 h\nH x\nF <>\n'
    'R <postmaster@example.com>\nE\nQ\n',
    # Thousands of recipients in one transaction, with and without limits.
    PFX + conn() + 'H c.example\nF <a@example.com>\n5000*R <u@example.test>'
    '\nE\nQ\n',
    'P maxRcptPerMessage 0\nP DoRcptRate 0\nP MaxErrors 100000\n' + PFX
    + conn() + 'H c.example\nF <a@example.com>\n20000*R <u@example.test>\n'
    '99999999*R <v@example.test>\nE\nQ\n',
    PFX + conn() + '3000*R <early@example.test>\nF <a@b.example>\nE\nE\nQ\n',
    # Sessions that never close, and connections reused without close.
    PFX + conn() + 'H c.example\nF <a@example.com>\nR <b@example.com>\n',
    PFX + conn() + conn() + conn('192.0.2.11') + 'H x\n',
    PFX + ''.join(f'S {i}\n' + conn() + 'H x\nF <a@example.com>\n'
                  for i in range(8)) + 'S 1\nQ\nS 3\nA\nQ\nS 5\nE\n',
    PFX + '300*C 4 192.0.2.50 1 h\nH x\nF <a@example.com>\n',
    PFX + 'S 9\nS -1\nS x\nS\n' + conn() + 'S 3\nH x\nQ\nS 1\nQ\n',
    # Events without a session: before connect, after close.
    'H x\nF <a@b>\nR <c@d>\nU X\nE\nA\nQ\nQ\n' + PFX + conn() + 'Q\nH x\n'
    'F <a@example.com>\nR <b@example.com>\nE\nA\n',
    # Errors past MaxErrors, and events after the 421.
    PFX + conn() + '100*U FOO\nH x\nF <a@example.com>\n100*R <bad>\nE\nQ\n',
    PFX + conn() + '50*F <bad\n50*R\nQ\n',
    # Hostile macros: authenticated user, queue ID, mailer, service, host.
    PFX + conn() + 'H x\nX {auth_authen} \x01\x02"\\ \r' + 'a' * 3000
    + '\nF <a@example.com>\nR <b@far.test>\nE\nQ\n',
    PFX + conn() + 'H x\nX i \r"\\\x01' + 'q' * 3000 + '\nF <a@example.com>'
    '\nR <b@example.com>\nE\nQ\n',
    PFX + conn() + 'H x\nF <a@example.com>\nX {rcpt_mailer} \x01local\r\n'
    'R <b@example.com>\nX {rcpt_mailer} ' + 'm' * 3000 + '\nR <c@d.test>\n'
    'X {rcpt_mailer}\nR <e@f.test>\nQ\n',
    'X {daemon_name} ' + 'd' * 3000 + '\n' + conn() + 'H x\nQ\n'
    'X {daemon_name} \x01"\\\r\n' + conn() + 'H x\nQ\nX {daemon_name} \n'
    + conn() + 'H x\nQ\n',
    # (j is the MTA's own name, its configuration: long, quoted, but no
    # control characters, which would reach Received-SPF as they are.)
    'X j ' + 'j' * 3000 + '\n' + conn() + 'H x\nF <a@example.com>\nE\nQ\n'
    'X j "\\;(x)\n' + conn() + 'H x\nF <a@example.com>\nE\nQ\n',
    PFX + conn(host='\x01\r"\\' + 'n' * 3000) + 'H x\nQ\n',
    # SPF through the session: hostile explanations into the reply text.
    'P DoSPF 1\nZ example.com TXT v=spf1 -all exp=e.example.com\n'
    'Z e.example.com TXT \x01\r%{l}%{L}%{h}%{p}' + '%{s}' * 40 + '\n'
    + session(mail='<"\\"%{l}\\\\"@example.com>', helo='%{h}\r\x01'),
    'P DoSPF 1\nZ example.com SERVFAIL\n' + session()
    + 'Z example.com DROP\n' + session(addr='192.0.2.11')
    + 'Z * TC\n' + session(addr='192.0.2.12'),
    'P DoSPF 1\nP DoDNSBL 1\nP DoFCrDNS 1\nZ * CNAME loop.example\n'
    'Z loop.example CNAME loop.example\n' + session(),
    'P DoSPF 1\nZ example.com TXT v=spf1 a -all\nZ example.com TXT '
    'v=spf1 +all\n' + session(mail='<>', helo='example.com'),
    # The clock and the settings underneath a session.
    PFX + conn() + 'W 99999999\nH x\nW -5000\nF <a@example.com>\nT\n'
    'W 86400\nR <b@example.com>\nT\nE\nQ\nT\n',
    'P MaxErrors -1\nP logLevel x\nP maxSMTPipConnects 1\nP DoFrequencyIP 1'
    '\nP nosuchsetting 1\nP\n' + PFX + '5*C 4 192.0.2.60 1 h\nH x\nQ\n',
    '\n\n\n', '', 'C', '?\n!\n\x00\n\xff\n', '50*T\n',
    '9' * 40 + '*H x\n' + PFX + conn() + '12*\n*H\n3*Q\n',
]
n = 0
n += write('corpus', 'mailaddr', mail_seed) + write('regress', 'mailaddr', mail_bad)
n += write('corpus', 'addr', addr_seed) + write('regress', 'addr', addr_bad)
n += write('corpus', 'dns', dns_seed) + write('regress', 'dns', dns_bad)
n += write('corpus', 'spf', spf_seed) + write('regress', 'spf', spf_bad)
n += write('corpus', 'setting', set_seed) + write('regress', 'setting', set_bad)
n += write('corpus', 'logline', line_seed) + write('regress', 'logline', line_bad)
n += write('corpus', 'helo', helo_seed) + write('regress', 'helo', helo_bad)
n += write('corpus', 'milter', milter_seed) + write('regress', 'milter',
                                                   milter_bad)
hostile = sum(len(x) for x in (mail_bad, addr_bad, dns_bad, spf_bad, set_bad,
                               line_bad, helo_bad, milter_bad))
print(f'make-corpus: {n} files, {hostile} hostile cases in regress/')
