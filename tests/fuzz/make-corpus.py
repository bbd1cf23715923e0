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
    for i, data in enumerate(items):
        if isinstance(data, str):
            data = data.encode('utf-8', 'surrogateescape')
        h = hashlib.sha1(data).hexdigest()[:12]
        with open(os.path.join(d, f'{i:03d}-{h}'), 'wb') as f:
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

n = 0
n += write('corpus', 'mailaddr', mail_seed) + write('regress', 'mailaddr', mail_bad)
n += write('corpus', 'addr', addr_seed) + write('regress', 'addr', addr_bad)
n += write('corpus', 'dns', dns_seed) + write('regress', 'dns', dns_bad)
n += write('corpus', 'spf', spf_seed) + write('regress', 'spf', spf_bad)
n += write('corpus', 'setting', set_seed) + write('regress', 'setting', set_bad)
n += write('corpus', 'logline', line_seed) + write('regress', 'logline', line_bad)
hostile = sum(len(x) for x in (mail_bad, addr_bad, dns_bad, spf_bad, set_bad,
                               line_bad))
print(f'make-corpus: {n} files, {hostile} hostile cases in regress/')
