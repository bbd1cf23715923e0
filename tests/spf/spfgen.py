"""Seeded random SPF test cases for the differential test (spfdiff.py).

generate(seed, index) is a pure function of its arguments: the same
(seed, index) always gives the same case, so any difference found can be
reproduced alone (spfdiff.py --seed S --case INDEX).

A case is a client address, a HELO name, a MAIL FROM (possibly the null
sender, so that postmaster@HELO is checked) and the zone data behind them
(spfdns.py's format). Every name of case INDEX lies under cINDEX.test, so
the zones of many cases can be served at once. Client addresses come from
the documentation ranges: IPv4 ones are distinct over any 768 consecutive
cases aligned on 768 (their reverse names do not collide in a batch of up
to 768 aligned cases); IPv6 ones always are.

What is generated: every mechanism (all include a mx ptr ip4 ip6 exists)
with and without qualifiers and prefix lengths; redirect= and exp= (and
unknown modifiers) in any position; macros of every letter of RFC 7208 7
with transformers and delimiters, in domain-specs and explanations (with
%% %_ %-); include and redirect chains; CNAMEs; void lookups; cases at the
edges of the limits of 4.6.4 (9, 10, 11 DNS-querying terms; 10 and 11 MX
names; 2 and 3 void lookups; 10+ PTR names); syntax errors; several SPF
records at one name; TXT records in several strings; SERVFAIL answers.
"""

import ipaddress
import random

DOC4 = ('192.0.2.', '198.51.100.', '203.0.113.')
LOCALS = ('user', 'first.last', 'a-b+c', 'x_y', 'Strong-Bad', 'postmaster',
          'a.b.c.d', 'UPPER', 'o\'brien', 'tag+list-x')
QUALS = ('+', '-', '~', '?')
DELIMS = '.-+,/_='
BROKEN = ('a:', 'ip4:192.0.2.300', 'ip4:192.0.2.1/33', 'ip4:192.0.2.1/08',
          'ip6:2001:db8:::1', 'ip6:2001:db8::1/129', 'include:', 'exists',
          'exists:', '-all:x', 'mx/33', 'a//129', 'foo:bar.example',
          'x=%{q}', 'a:%{d', 'redirect=', '=foo', 'all.', 'ip4:',
          'a:example', 'include:x.123', '%{d}', 'mx:%{i0}.example',
          'a:host%zz.example', 'ptr:', 'ip4:192.0.2', '+-all',
          'exists:%{l1r-}%.example', 'v=spf1')


class Case:
    def __init__(self, index, ip, helo, mailfrom, zone, tags):
        self.index = index
        self.ip = ip
        self.helo = helo
        self.mailfrom = mailfrom
        self.zone = zone
        self.tags = tags
        self.receiver = 'receiver.test'

    def line(self):
        """The case as an sg-spf-query -b line."""
        return f'{self.ip}\t{self.helo}\t{self.mailfrom}\t{self.receiver}'

    def dump(self):
        out = [f'case {self.index}: ip={self.ip} helo={self.helo} '
               f'mailfrom={self.mailfrom!r} tags={sorted(self.tags)}']
        for name in sorted(self.zone):
            for rec in self.zone[name]:
                out.append(f'  {name} {rec}')
        return '\n'.join(out)


def rev_name(ip):
    a = ipaddress.ip_address(ip)
    if a.version == 4:
        return '.'.join(reversed(ip.split('.'))) + '.in-addr.arpa'
    return '.'.join(reversed(a.exploded.replace(':', ''))) + '.ip6.arpa'


class Gen:
    def __init__(self, seed, index):
        r = self.r = random.Random(f'spfgen:{seed}:{index}')
        self.index = index
        self.base = f'c{index}.test'
        self.zone = {}
        self.tags = set()
        self.n = 0
        self.v6 = r.random() < 0.3
        if self.v6:
            self.ip = '2001:db8:%x:%x::%x' % ((index >> 16) & 0xffff,
                                              index & 0xffff,
                                              r.randint(1, 0xffff))
            self.tags.add('ipv6')
        else:
            self.ip = DOC4[(index // 256) % 3] + str(index % 256)
        self.rev = rev_name(self.ip)
        self.local = r.choice(LOCALS)
        self.null = r.random() < 0.15
        self.helo = r.choice((self.base, 'mail.' + self.base,
                              'HeLo.' + self.base.upper()))
        if self.null:
            self.tags.add('null-sender')
            self.domain = self.helo
            self.mailfrom = ''
        else:
            self.domain = r.choice((self.base, self.base, 'sub.' + self.base,
                                    'Mixed.' + self.base))
            self.mailfrom = f'{self.local}@{self.domain}'
        self.ptr_names = None

    # -- names and addresses --------------------------------------------

    def name(self, prefix='n'):
        self.n += 1
        return f'{prefix}{self.n}.{self.base}'

    def add(self, name, rec):
        self.zone.setdefault(name.lower().rstrip('.'), []).append(rec)

    def addr(self, v6, match):
        """An address of the family; the client's when match."""
        r = self.r
        if v6 == self.v6 and match:
            return self.ip
        if v6:
            if self.v6 and r.random() < 0.5:   # same /64, other host
                return str(ipaddress.ip_address(
                    int(ipaddress.ip_address(self.ip)) ^
                    r.randint(1, 0xffff)))
            return '2001:db8:ffff:%x::%x' % (r.randint(0, 0xffff),
                                             r.randint(1, 0xffff))
        if not self.v6 and r.random() < 0.5:   # same /24
            last = int(self.ip.rsplit('.', 1)[1])
            return self.ip.rsplit('.', 1)[0] + '.' + str(
                (last + r.randint(1, 255)) % 256)
        return r.choice(DOC4) + str(r.randint(0, 255))

    def host(self, match_p=0.4, allow_void=True, cname=True):
        """A host name with addresses (the client's with match_p), or a
        name that is void, has no address, is a CNAME, or fails."""
        r = self.r
        x = r.random()
        name = self.name('h')
        if allow_void and x < 0.08:
            self.tags.add('void')
            return name                          # NXDOMAIN
        if allow_void and x < 0.12:
            self.add(name, ('TXT', ['not an address']))   # NODATA
            self.tags.add('void')
            return name
        if x < 0.14:
            self.add(name, 'SERVFAIL')
            self.tags.add('servfail')
            return name
        if x < 0.22 and cname:
            # one level: the server answers a CNAME with its target's
            # records, not with a chain (spfdns.py)
            target = self.host(match_p, allow_void=False, cname=False)
            self.add(name, ('CNAME', target))
            self.tags.add('cname')
            return name
        match = r.random() < match_p
        for v6 in (False, True):
            if r.random() < (0.8 if v6 == self.v6 else 0.4):
                for _ in range(r.randint(1, 3)):
                    self.add(name, ('AAAA' if v6 else 'A',
                                    self.addr(v6, match and
                                              v6 == self.v6)))
                    match = False
        return name

    def ptrs(self):
        """The client's PTR names (made once per case)."""
        if self.ptr_names is not None:
            return self.ptr_names
        r = self.r
        self.ptr_names = []
        if r.random() < 0.15:
            return self.ptr_names               # no PTR at all
        n = r.choice((1, 1, 1, 2, 3, 10, 11, 12))
        if n >= 10:
            self.tags.add('ptr-many')
        for k in range(n):
            under = self.domain if r.random() < 0.6 else 'other.' + self.base
            name = f'p{k}.{under}'.lower()
            self.ptr_names.append(name)
            self.add(self.rev, ('PTR', name))
            if r.random() < 0.7:                 # forward confirmed
                self.add(name, ('AAAA' if self.v6 else 'A',
                                self.addr(self.v6, r.random() < 0.6)))
        return self.ptr_names

    # -- macros ---------------------------------------------------------

    def macro(self, letters='slodiphv', explain=False):
        r = self.r
        letter = r.choice(letters)
        if r.random() < 0.15:
            letter = letter.upper()
        spec = letter
        if r.random() < 0.3:
            spec += str(r.randint(1, 5))
        if r.random() < 0.3:
            spec += r.choice('rR')
        if r.random() < 0.2:
            spec += ''.join(r.sample(DELIMS, r.randint(1, 2)))
        if letter in 'pP':
            self.ptrs()
        return '%{' + spec + '}'

    def expand(self, spec, d):
        """What a domain-spec made by macro_spec() expands to, for the
        zone to hold a name it leads to (a generator's guess: when it is
        wrong, a case only matches less)."""
        vals = {'s': f'{self.local}@{self.domain}' if not self.null
                else f'postmaster@{self.domain}',
                'l': self.local if not self.null else 'postmaster',
                'o': self.domain, 'd': d, 'h': self.helo,
                'v': 'ip6' if self.v6 else 'in-addr'}
        if self.v6:
            vals['i'] = '.'.join(ipaddress.ip_address(self.ip).exploded
                                 .replace(':', ''))
        else:
            vals['i'] = self.ip
        out, i = '', 0
        while i < len(spec):
            if spec[i] != '%':
                out += spec[i]
                i += 1
                continue
            if spec[i + 1] in '%_-':
                out += {'%': '%', '_': ' ', '-': '%20'}[spec[i + 1]]
                i += 2
                continue
            j = spec.index('}', i)
            body = spec[i + 2:j]
            letter = body[0].lower()
            v = vals.get(letter, 'unknown')
            k = 1
            digits = ''
            while k < len(body) and body[k].isdigit():
                digits += body[k]
                k += 1
            rev = k < len(body) and body[k] in 'rR'
            k += rev
            delims = body[k:] or '.'
            parts = [v]
            for dl in delims:
                parts = [q for p in parts for q in p.split(dl)]
            if rev:
                parts.reverse()
            if digits:
                parts = parts[-int(digits):]
            out += '.'.join(parts)
            i = j + 1
        return out

    def macro_spec(self, d):
        """A domain-spec with macros, ending in the case's names."""
        r = self.r
        forms = (lambda: self.macro() + '.m.' + self.base,
                 lambda: '%{ir}.%{v}._spf.' + self.base,
                 lambda: '%{l}.u.%{d}',
                 lambda: self.macro('ldio') + '.' + self.macro('lv') +
                 '.x.%{o}',
                 lambda: '%{d}',
                 lambda: '%{h}',
                 lambda: self.macro('ih') + '.%{d2}',
                 lambda: '%{p}.' + self.base)
        spec = r.choice(forms)()
        self.tags.add('macro')
        return spec

    # -- records --------------------------------------------------------

    def mechanism(self, d, depth):
        """(term text, DNS-querying)"""
        r = self.r
        kind = r.choices(('ip4', 'ip6', 'a', 'mx', 'ptr', 'exists',
                          'include', 'all'),
                         (18, 12, 16, 12, 5, 10, 14, 3))[0]
        q = r.choice(QUALS) if r.random() < 0.4 else ''
        if kind in ('ip4', 'ip6'):
            v6 = kind == 'ip6'
            a = self.addr(v6, r.random() < 0.4)
            t = f'{q}{kind}:{a}'
            if r.random() < 0.6:
                t += '/' + str(r.randint(0, 128 if v6 else 32))
            return t, False
        if kind == 'all':
            return q + 'all', False
        if kind in ('a', 'mx'):
            t = q + kind
            x = r.random()
            target = d
            if x < 0.5:
                target = self.mx(match_p=0.4) if kind == 'mx' else \
                    self.host()
                t += ':' + target + ('.' if r.random() < 0.05 else '')
            elif x < 0.6:
                spec = self.macro_spec(d)
                target = self.expand(spec, d)
                t += ':' + spec
            else:
                # the current domain: give it addresses or MX hosts
                if kind == 'mx' and r.random() < 0.6:
                    for _ in range(r.randint(1, 3)):
                        self.add(d, ('MX', (r.randint(0, 50),
                                            self.host(0.3))))
                elif kind == 'a' and r.random() < 0.6:
                    self.add(d, ('AAAA' if self.v6 else 'A',
                                 self.addr(self.v6, r.random() < 0.3)))
            if kind == 'a' and x >= 0.5 and x < 0.6:
                if r.random() < 0.5:
                    self.add(target, ('AAAA' if self.v6 else 'A',
                                      self.addr(self.v6, True)))
            if r.random() < 0.3:
                t += '/' + str(r.choice((0, 8, 16, 24, 30, 31, 32)))
            if r.random() < 0.3:
                t += '//' + str(r.choice((0, 32, 48, 64, 96, 112, 128)))
            return t, True
        if kind == 'ptr':
            self.ptrs()
            t = q + 'ptr'
            if r.random() < 0.5:
                t += ':' + r.choice((self.domain, 'other.' + self.base,
                                     self.base, 'nope.' + self.base))
            return t, True
        if kind == 'exists':
            spec = self.macro_spec(d) if r.random() < 0.8 else self.host(0.5)
            name = self.expand(spec, d)
            if r.random() < 0.5 and ' ' not in name:
                self.add(name, ('A', '127.0.0.2'))
            return f'{q}exists:{spec}', True
        # include
        target = self.target(depth)
        return f'{q}include:{target}', True

    def mx(self, match_p):
        r = self.r
        name = self.name('mx')
        x = r.random()
        if x < 0.1:
            self.tags.add('void')
            return name
        n = r.choice((1, 1, 2, 3, 10, 11)) if x > 0.85 else r.randint(1, 3)
        if n >= 10:
            self.tags.add('mx-many')
        for _ in range(n):
            self.add(name, ('MX', (r.randint(0, 50),
                                   self.host(match_p / n))))
        return name

    def target(self, depth):
        """An include/redirect target, usually with a record."""
        r = self.r
        name = self.name('t')
        x = r.random()
        if x < 0.06:
            self.tags.add('target-none')
            return name
        if x < 0.09:
            self.add(name, ('TXT', ['not spf']))
            self.tags.add('target-none')
            return name
        if x < 0.11:
            self.add(name, 'SERVFAIL')
            self.tags.add('servfail')
            return name
        if x < 0.16:
            real = self.name('t')
            self.add(name, ('CNAME', real))
            self.tags.add('cname')
            self.record(real, depth + 1)
            return name
        self.record(name, depth + 1)
        return name

    def explanation(self):
        r = self.r
        name = self.name('e')
        x = r.random()
        if x < 0.1:
            return name                         # no TXT: no explanation
        if x < 0.15:
            self.add(name, ('TXT', ['one']))
            self.add(name, ('TXT', ['two']))
            return name
        parts = []
        for _ in range(r.randint(1, 5)):
            y = r.random()
            if y < 0.4:
                parts.append(r.choice(('not allowed', 'see', 'for',
                                       'http://www.example.com/why?s=',
                                       ':', 'host')))
            elif y < 0.85:
                parts.append(self.macro('slodiphvcr', explain=True))
            else:
                parts.append(r.choice(('%%', '%_', '%-')))
        text = r.choice((' ', '', '_')).join(parts)
        if r.random() < 0.05:
            text = '%{q} bad macro'
            self.tags.add('exp-bad')
        self.add(name, ('TXT', [text]))
        self.tags.add('exp')
        return name

    def record(self, d, depth):
        """Make d's SPF record (and whatever it refers to)."""
        r = self.r
        terms = []
        nmech = r.choice((0, 1, 2, 3, 3, 4, 5)) if depth < 4 else \
            r.randint(0, 2)
        for _ in range(nmech):
            terms.append(self.mechanism(d, depth)[0])
        if r.random() < 0.55:
            terms.append((r.choice(QUALS) if r.random() < 0.7 else '') +
                         'all')
        mods = []
        if depth < 5 and r.random() < 0.18:
            mods.append('redirect=' + (self.target(depth) if
                                       r.random() < 0.85 else
                                       self.macro_spec(d)))
            self.tags.add('redirect')
        if r.random() < 0.2:
            mods.append('exp=' + self.explanation())
        if r.random() < 0.08:
            mods.append(r.choice(('foo=bar', 'x-y.z=%{d}', 'moo.cow=1',
                                  'ra=postmaster', 'rp=10')))
            self.tags.add('unknown-modifier')
        for m in mods:                          # modifiers anywhere
            terms.insert(r.randint(0, len(terms)), m)
        if r.random() < 0.04:
            terms.insert(r.randint(0, len(terms)), r.choice(BROKEN))
            self.tags.add('syntax')
        if r.random() < 0.05:
            terms = [t.upper() if r.random() < 0.5 else t for t in terms]
        version = 'v=spf1' if r.random() < 0.95 else 'V=SPF1'
        text = ' '.join([version] + terms)
        if r.random() < 0.03:
            text += ' '
        self.publish(d, text)

    def publish(self, d, text):
        r = self.r
        x = r.random()
        if x < 0.08 and len(text) > 10:         # several strings
            cut = r.randint(7, len(text) - 1)
            self.add(d, ('TXT', [text[:cut], text[cut:]]))
            self.tags.add('txt-split')
        else:
            self.add(d, ('TXT', [text]))
        if r.random() < 0.1:
            self.add(d, ('TXT', [r.choice(('google-site-verification=x',
                                           'v=spf10 -all', 'spf1 -all',
                                           'v=DKIM1; p=none'))]))
        if r.random() < 0.02:
            self.add(d, ('TXT', ['v=spf1 ?all']))
            self.tags.add('two-records')

    # -- special shapes ---------------------------------------------------

    def limit_chain(self, d):
        """Exactly k DNS-querying terms (9, 10 or 11) before the term
        that decides, spread over includes."""
        r = self.r
        k = r.choice((9, 10, 11))
        self.tags.add(f'terms-{k}')
        names = [d]
        terms = {d: []}
        left = k
        cur = d
        while left > 0:
            if left > 2 and r.random() < 0.25:
                sub = self.name('t')
                terms[cur].append('include:' + sub)
                terms[sub] = []
                names.append(sub)
                cur = sub
            else:
                kind = r.choice(('a', 'mx', 'exists'))
                if kind == 'mx':
                    h = self.name('mx')
                    self.add(h, ('MX', (10, self.host(0, allow_void=False))))
                elif kind == 'exists':
                    h = self.name('x')
                    self.add(h, ('TXT', ['an exists: miss']))
                else:
                    h = self.host(0, allow_void=False)
                terms[cur].append(f'{kind}:{h}')
            left -= 1
        decide = r.choice(('ip4:%s' % self.addr(False, True) if not self.v6
                           else 'ip6:%s' % self.ip, 'a:' + self.host(1.0, False)))
        terms[d].append(decide)
        terms[d].append('-all')
        for n in names:
            self.publish(n, ' '.join(['v=spf1'] + terms[n]))

    def void_chain(self, d):
        r = self.r
        k = r.choice((2, 3))
        self.tags.add(f'voids-{k}')
        terms = []
        for _ in range(k):
            terms.append(r.choice(('a:', 'mx:', 'exists:')) +
                         self.name('void'))
        terms.insert(r.randint(0, len(terms)), 'ip4:198.51.100.254')
        terms.append(r.choice(('-all', '?all', '+all')))
        self.publish(d, ' '.join(['v=spf1'] + terms))


def generate(seed, index):
    g = Gen(seed, index)
    r = g.r
    x = r.random()
    if x < 0.05:
        g.limit_chain(g.domain)
    elif x < 0.08:
        g.void_chain(g.domain)
    elif x < 0.10:
        g.tags.add('no-record')
        if r.random() < 0.5:
            g.add(g.domain, ('TXT', ['nothing here']))
    else:
        g.record(g.domain, 0)
    return Case(index, g.ip, g.helo, g.mailfrom, g.zone, g.tags)
