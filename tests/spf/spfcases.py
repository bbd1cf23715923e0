"""Permanent cases of the differential test (spfdiff.py): shapes that
once differed, or that the random cases reach too rarely, with the
result each side must give (want_py None: pyspf's is not checked, for
the known differences of DIFFERENCES.md).

Each case has its own names (under NAME.fixed.test) and client address.
"""

import spfgen

# (name, client, helo, mailfrom, {name: [records]}, want_sg, want_py)
FIXED = [
    ('basic-fail', '192.0.2.1', 'h.basic-fail.fixed.test',
     'a@basic-fail.fixed.test',
     {'basic-fail.fixed.test': [('TXT', ['v=spf1 -all'])]}, 'fail', 'fail'),
    # redirect= before a matching mechanism: the mechanism decides (6.1)
    ('redirect-first', '192.0.2.2', 'h.redirect-first.fixed.test',
     'a@redirect-first.fixed.test',
     {'redirect-first.fixed.test': [('TXT', [
         'v=spf1 redirect=none.redirect-first.fixed.test '
         'a:h.redirect-first.fixed.test'])],
      'h.redirect-first.fixed.test': [('A', '192.0.2.2')]}, 'pass', 'pass'),
    # the transformer R is r (7.1, RFC 5234 2.3); pyspf ignores it
    ('upper-r', '192.0.2.3', 'h.upper-r.fixed.test', 'a@upper-r.fixed.test',
     {'upper-r.fixed.test': [('TXT', ['v=spf1 exists:%{dR}.x.test -all'])],
      'test.fixed.upper-r.x.test': [('A', '127.0.0.2')]}, 'pass', None),
    # %{d2} of a two-label domain is the whole domain (7.1)
    ('digits-all', '192.0.2.4', 'h.digits-all.test', 'a@digits-all.test',
     {'digits-all.test': [('TXT', ['v=spf1 a:%{d2}.x.test -all'])],
      'digits-all.test.x.test': [('A', '192.0.2.4')]}, 'pass', 'pass'),
    # every MX host is looked up (5.4); one that fails is a temperror (5),
    # even after one that matched
    ('mx-servfail', '192.0.2.5', 'h.mx-servfail.test', 'a@mx-servfail.test',
     {'mx-servfail.test': [('TXT', ['v=spf1 mx -all']),
                           ('MX', (10, 'good.mx-servfail.test')),
                           ('MX', (20, 'bad.mx-servfail.test'))],
      'good.mx-servfail.test': [('A', '192.0.2.5')],
      'bad.mx-servfail.test': ['SERVFAIL']}, 'temperror', 'temperror'),
    # the delimiters , and / (7.1), which libspf2 refuses
    ('delim-comma', '192.0.2.6', 'h.delim.test', 'a@delim.test',
     {'delim.test': [('TXT', ['v=spf1 a:%{d1,}.x.test -all'])],
      'delim.test.x.test': [('A', '192.0.2.6')]}, 'pass', 'pass'),
    # an upper-case macro is URL-escaped, "'" too (7.3, RFC 3986 2.3)
    ('upper-escape', '192.0.2.7', 'h.upper-escape.test',
     "o'b@upper-escape.test",
     {'upper-escape.test': [('TXT', ['v=spf1 exists:%{L}.x.test -all'])],
      'o%27b.x.test': [('A', '127.0.0.2')]}, 'pass', 'pass'),
    # %{p1r} of "unknown" is "unknown" (7.1; libspf2 drops the part)
    ('p-digit', '192.0.2.8', 'h.p-digit.test', 'a@p-digit.test',
     {'p-digit.test': [('TXT', ['v=spf1 -exists:%{p1r}.x.test'])],
      'unknown.x.test': [('A', '127.0.0.2')]}, 'fail', 'fail'),
]


def cases():
    out = []
    for k, (name, ip, helo, mailfrom, zone, want_sg, want_py) in \
            enumerate(FIXED):
        c = spfgen.Case(-1 - k, ip, helo, mailfrom,
                        {n.lower(): list(r) for n, r in zone.items()},
                        {'fixed'})
        c.name, c.want_sg, c.want_py = name, want_sg, want_py
        out.append(c)
    return out
