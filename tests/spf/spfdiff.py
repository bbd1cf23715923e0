#!/usr/bin/env python3
"""Differential test of smtpguard's SPF layer against pyspf.

Random cases from spfgen.py (deterministic from --seed and the case
index), and the permanent cases of spfcases.py, are evaluated by both:

  smtpguard  tests/spf/sg-spf-query -b (sg_spf_check() and our resolver),
             asking the DNS server of spfdns.py on 127.0.0.1;
  pyspf      spf.query(...).check() (Debian's python3-spf), whose DNS
             lookup function is replaced by a direct read of the same
             answers (spfdns.Zone.answer), in the form pydns gives them.

Both see the same zone data, a batch of up to 768 cases at a time (each
case's names are its own). The results (pass fail softfail neutral none
permerror temperror) are compared, and for a fail the explanation when
both give one (pyspf's default text "SPF fail - not authorized" is no
explanation). A difference is either of a known class (KNOWN below,
documented with the RFC 7208 text in DIFFERENCES.md) or unexplained; any
unexplained difference, and any permanent case whose result is not the
one it wants, fails the run (exit 1).

  spfdiff.py --query PATH/sg-spf-query [--seed N] [--cases N]
             [--start I] [--show N] [--case I] [--no-fixed]

--case I prints case I's zone and both results, for a difference found.
Prints the figures: cases, agreements, differences by class, wall time.
"""

import argparse
import linecache
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spfcases  # noqa: E402
import spfdns  # noqa: E402
import spfgen  # noqa: E402

try:
    import spf
except ImportError:
    # Debian's python3-spf lives in the system's dist-packages, which a
    # python3 of its own (pyenv, a venv) does not look in.
    sys.path.append('/usr/lib/python3/dist-packages')
    try:
        import spf
    except ImportError:
        sys.exit('spfdiff.py: pyspf is missing (apt-get install python3-spf)')

BATCH = 256
PYSPF_DEFAULT_EXP = 'SPF fail - not authorized'


def pyspf_lookup(name, qtype, strict=True, timeout=None):
    """pyspf's DNSLookup, answered from spfdns.Zone as pydns would."""
    got = spfdns.Zone.answer(name, spfdns.TYPES.get(qtype, 0))
    if got is None:
        raise spf.TempError('DNS timeout')
    rcode, rrs = got
    if rcode not in (0, 3):
        raise spf.TempError(f'DNS rcode {rcode}')
    out = []
    for owner, t, v in rrs:
        if t == 'AAAA':
            v = socket.inet_pton(socket.AF_INET6, v)
        elif t in ('TXT', 'SPF'):
            raw = b''.join(s.encode('utf-8', 'surrogateescape')
                           for s in v)
            # the character-strings of the wire (spfdns.rdata)
            v = tuple(raw[i:i + 255] for i in range(0, max(len(raw), 1),
                                                    255))
        elif t == 'MX':
            v = (int(v[0]), str(v[1]))
        out.append(((owner, t), v))
    return out


spf.DNSLookup = pyspf_lookup


def run_pyspf(case, cls=None):
    try:
        q = (cls or spf.query)(i=case.ip, s=case.mailfrom, h=case.helo,
                               receiver=case.receiver, querytime=20,
                               timeout=20)
        res, _code, exp = q.check()
    except Exception as e:      # noqa: BLE001 - a crash is a result too
        return {'result': 'crash', 'reason': f'{type(e).__name__}: {e}'}
    out = {'result': res, 'reason': exp if res in ('permerror',
                                                    'temperror') else ''}
    if res == 'fail' and exp and exp != PYSPF_DEFAULT_EXP:
        out['explanation'] = exp
    return out


def parse_sg(line):
    """sg-spf-query's result line as a dict."""
    line = line.rstrip('\n')
    out = {}
    head, _, rest = line.partition(' ')
    out['result'] = head.split('=', 1)[1] if '=' in head else 'garbled'
    i = 0
    while i < len(rest):
        eq = rest.find('="', i)
        if eq < 0:
            break
        key = rest[i:eq].strip()
        j, val = eq + 2, ''
        while j < len(rest) and rest[j] != '"':
            if rest[j] == '\\':
                j += 1
            val += rest[j]
            j += 1
        out[key] = val
        i = j + 1
    return out


# The known classes of difference. Each is a way in which pyspf departs
# from RFC 7208 (or smtpguard does, deliberately), documented with a
# minimal example and the RFC's text in DIFFERENCES.md, and each is shown
# here as pyspf with that one departure undone: a difference is of the
# class when that pyspf gives smtpguard's result. A class pyspf cannot be
# patched for is a test of the case instead.

class VoidPerTerm(spf.query):
    """Void lookups counted per term (4.6.4), not per address lookup of
    the names an mx or ptr term (or %{p}) found."""

    def dns_a(self, domainname, A='A'):
        if getattr(self, '_sub', False):
            return self.dns(domainname, A, ignore_void=True) \
                if domainname else []
        return super().dns_a(domainname, A)

    def dns_mx(self, domainname):
        mxnames = self.dns(domainname, 'MX')
        if len(mxnames) > spf.MAX_MX:
            raise spf.PermError('More than %d MX records returned'
                                % spf.MAX_MX)
        mxnames.sort()
        self._sub = True
        try:
            return [a for mx in mxnames for a in self.dns_a(mx[1], self.A)]
        finally:
            self._sub = False

    def validated_ptrs(self):
        self._sub = True
        try:
            return super().validated_ptrs()
        finally:
            self._sub = False


class CnameVoidOnce(VoidPerTerm):
    """With VoidPerTerm: a name that is a CNAME to a name without the
    records asked is one void lookup, not two (pyspf counts the CNAME's
    target again when it follows it)."""

    def dns(self, name, qtype, cnames=None, ignore_void=False):
        return super().dns(name, qtype, cnames=cnames,
                           ignore_void=ignore_void or cnames is not None)


def _called_at(depth, text, offset=0):
    """The caller `depth` frames up is check0, at a line with text."""
    f = sys._getframe(depth + 1)
    return f.f_code.co_name == 'check0' and text in linecache.getline(
        f.f_code.co_filename, f.f_lineno + offset)


class RedirectWhenUsed(CnameVoidOnce):
    """With the above: redirect= counted among the 10 lookups when it is
    followed, not when the record is read (pyspf counts it even when a
    mechanism matches or the record has "all")."""

    def check_lookups(self):
        if _called_at(1, 'redirect = self.expand_domain', 1):
            return
        super().check_lookups()

    def dns_spf(self, domain):
        if _called_at(1, 'redirect_record = self.dns_spf'):
            super().check_lookups()
        return super().dns_spf(domain)


class PWhenEvaluated(RedirectWhenUsed):
    """With the above: the lookups of %{p} made when the record is read
    (pyspf expands every term first, and fetches exp= then) count no void
    lookup and give "unknown" on an error (7.3)."""

    def getp(self):
        if self.p:
            return self.p
        self._sub, saved = True, getattr(self, '_sub', False)
        try:
            return super().getp()
        except (spf.TempError, spf.PermError):
            self.p = 'unknown'
            return self.p
        finally:
            self._sub = saved

    def dns_ptr(self, i):
        if getattr(self, '_sub', False):
            return self.dns('%s.%s.arpa' % (spf.reverse_dots(i), self.v),
                            'PTR', ignore_void=True)
        return super().dns_ptr(i)


class PCounted(PWhenEvaluated):
    """With the above: %{p}'s PTR lookup counted among the 10, once
    (4.6.4: "When evaluating the "ptr" mechanism or the %{p} macro, the
    number of "PTR" resource records queried is included in the overall
    limit of 10"); and its validated name chosen with the domain compared
    without regard to case (7.3, RFC 4343)."""

    def getp(self):
        if self.p:
            return self.p
        self.check_lookups()
        self._sub, saved = True, getattr(self, '_sub', False)
        try:
            names = self.validated_ptrs()
        except (spf.TempError, spf.PermError):
            names = []
        finally:
            self._sub = saved
        d = self.d.lower()
        self.p = next((n for n in names if n.lower() == d), None) or \
            next((n for n in names if n.lower().endswith('.' + d)), None) \
            or (names[0] if names else 'unknown')
        return self.p


class _Dot(dict):
    def get(self, key, default=None):
        return '.'


class JoinWithDot(PCounted):
    """With the above: the parts of a macro split at its delimiters are
    rejoined with "." (7.3), not with the delimiter (pyspf does so for
    every letter but l and s)."""

    def check(self, *args, **kw):
        saved, spf.JOINERS = spf.JOINERS, _Dot()
        try:
            return super().check(*args, **kw)
        finally:
            spf.JOINERS = saved


RE_UPPER_R = re.compile(r'(%\{[a-zA-Z][0-9]*)R')
RE_ZERO = re.compile(r'%\{[a-zA-Z]0+[^0-9]')


def _texts(case):
    return [''.join(v) for recs in case.zone.values() for rec in recs
            if rec not in ('TIMEOUT', 'SERVFAIL') and rec[0] == 'TXT'
            for v in [rec[1]]]


def _rewritten_agrees(case, sg, pattern, repl):
    """With the zone's TXT records rewritten (pattern -> repl), does
    pyspf (as it is, or with the departures above undone) give
    smtpguard's result?"""
    if all(pattern.sub(repl, t) == t for t in _texts(case)):
        return False            # the rewriting changes nothing
    saved = case.zone
    # on the record as one string: a split may cut a name in two
    case.zone = {n: [(r[0], [pattern.sub(repl, ''.join(r[1]))])
                     if r not in ('TIMEOUT', 'SERVFAIL') and r[0] == 'TXT'
                     else r for r in recs] for n, recs in saved.items()}
    spfdns.Zone.data, zone = dict(spfdns.Zone.data), spfdns.Zone.data
    spfdns.Zone.data.update(case.zone)
    try:
        for cls in (None, JoinWithDot):
            if compare(sg, run_pyspf(case, cls), fold=True) is None:
                return True
        return False
    finally:
        case.zone = saved
        spfdns.Zone.data = zone


def upper_r(case, sg, py):
    """pyspf takes the transformer "R" for no transformer: with every R
    written r, pyspf gives smtpguard's result."""
    return _rewritten_agrees(case, sg, RE_UPPER_R, r'\1r')


RE_UPPER_MOD = re.compile(r'(^| )(redirect|exp)=', re.IGNORECASE)


def upper_modifier(case, sg, py):
    """pyspf takes REDIRECT= (or Exp=) for an unknown modifier: with the
    names written in lower case, pyspf gives smtpguard's result."""
    return _rewritten_agrees(case, sg, RE_UPPER_MOD,
                             lambda m: m.group(1) + m.group(2).lower() + '=')


def zero_digit(case, sg, py):
    """pyspf takes the digit transformer 0 (as "all parts")."""
    return 'transformer must be 1-128' in sg.get('reason', '') and \
        any(RE_ZERO.search(t) for t in _texts(case))


def cname_with_data(case, sg, py):
    """Not SPF: the generated zone has a name with a CNAME and other
    records (RFC 1034 3.6.2: "If a CNAME RR is present at a node, no
    other data should be present"); smtpguard follows the CNAME, pyspf
    takes the records."""
    return any(any(r not in ('TIMEOUT', 'SERVFAIL') and r[0] == 'CNAME'
                   for r in recs) and
               any(r not in ('TIMEOUT', 'SERVFAIL') and r[0] != 'CNAME'
                   for r in recs) for recs in case.zone.values())


def exp_case(case, sg, py):
    """smtpguard's %{d} %{o} %{s} are the domain in lower case."""
    return compare(sg, py, fold=True) is None


KNOWN = [
    ('exp-domain-case', exp_case),      # first: the others fold case
    ('pyspf-void-subquery', VoidPerTerm),
    ('pyspf-cname-void-twice', CnameVoidOnce),
    ('pyspf-redirect-counted-unused', RedirectWhenUsed),
    ('pyspf-p-at-parse', PWhenEvaluated),
    ('pyspf-p-uncounted', PCounted),
    ('pyspf-joiner', JoinWithDot),
    ('pyspf-zero-digit', zero_digit),
    ('pyspf-uppercase-R', upper_r),
    ('pyspf-uppercase-modifier', upper_modifier),
    ('zone-cname-with-data', cname_with_data),
]


def classify(case, sg, py):
    for name, test in KNOWN:
        if isinstance(test, type):
            # explanations without regard to case (exp-domain-case)
            if compare(sg, run_pyspf(case, test), fold=True) is None:
                return name
        elif test(case, sg, py):
            return name
    return None


class SG:
    """One sg-spf-query -b process for the whole run."""

    def __init__(self, query, port):
        self.proc = subprocess.Popen(
            [query, '-s', f'127.0.0.1:{port}', '-t', '1000', '-b'],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            errors='replace', bufsize=1)

    def run(self, cases):
        out = []
        for c in cases:         # one at a time: the pipe never fills
            self.proc.stdin.write(c.line() + '\n')
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
            if not line:
                sys.exit(f'spfdiff: sg-spf-query ended (rc '
                         f'{self.proc.wait()}) at case {c.index}')
            out.append(parse_sg(line))
        return out

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def serve(cases):
    zone = {}
    for c in cases:
        for name, recs in c.zone.items():
            zone.setdefault(name, []).extend(recs)
    spfdns.Zone.data = zone


def compare(sg, py, fold=False):
    """None when they agree, else a short text of the difference (fold:
    explanations compared without regard to case)."""
    if sg['result'] != py['result']:
        return f'{sg["result"]}/{py["result"]}'
    se, pe = sg.get('explanation'), py.get('explanation')
    if fold and se and pe:
        se, pe = se.lower(), pe.lower()
    if sg['result'] == 'fail' and se and pe and se != pe:
        return 'explanation'
    return None


def show(case, sg, py, what):
    print(f'--- {what}')
    print(case.dump())
    print(f'  smtpguard: {sg}')
    print(f'  pyspf:     {py}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--query', required=True)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--cases', type=int, default=10000)
    ap.add_argument('--start', type=int, default=0)
    ap.add_argument('--show', type=int, default=5,
                    help='unexplained differences printed in full')
    ap.add_argument('--show-known', type=int, default=0,
                    help='known differences printed in full, per class')
    ap.add_argument('--case', type=int, default=None)
    ap.add_argument('--no-fixed', action='store_true')
    ap.add_argument('--max-unexplained', type=int, default=0,
                    help='unexplained differences tolerated (default 0)')
    args = ap.parse_args()

    port = spfdns.start_servers(threaded_udp=False, who='spfdiff')
    sg = SG(args.query, port)
    t0 = time.monotonic()
    rc = 0

    if args.case is not None:
        case = spfgen.generate(args.seed, args.case)
        serve([case])
        s, p = sg.run([case])[0], run_pyspf(case)
        show(case, s, p, f'seed {args.seed}: {compare(s, p) or "agree"}'
             f' {classify(case, s, p) or ""}')
        sg.close()
        return 0

    if not args.no_fixed:
        fixed = spfcases.cases()
        serve(fixed)
        for case, s in zip(fixed, sg.run(fixed)):
            p = run_pyspf(case)
            ok = s['result'] == case.want_sg and \
                (case.want_py is None or p['result'] == case.want_py)
            if not ok:
                rc = 1
                show(case, s, p, f'permanent case {case.name}: want '
                     f'smtpguard {case.want_sg}, pyspf {case.want_py}')
        print(f'spfdiff: {len(fixed)} permanent cases, '
              f'{"all as wanted" if rc == 0 else "NOT as wanted"}')

    agree = 0
    classes = {}
    unexplained = 0
    shown_known = {}
    first = args.start
    end = args.start + args.cases
    while first < end:
        # batches aligned on BATCH: the cases' IPv4 clients are distinct
        last = min(end, (first // BATCH + 1) * BATCH)
        cases = [spfgen.generate(args.seed, i) for i in range(first, last)]
        serve(cases)
        for case, s in zip(cases, sg.run(cases)):
            p = run_pyspf(case)
            diff = compare(s, p)
            if diff is None:
                agree += 1
                continue
            cls = classify(case, s, p)
            if cls is None:
                unexplained += 1
                cls = 'UNEXPLAINED ' + diff
                if unexplained <= args.show:
                    show(case, s, p, f'seed {args.seed}: unexplained '
                         f'{diff}')
            elif shown_known.get(cls, 0) < args.show_known:
                shown_known[cls] = shown_known.get(cls, 0) + 1
                show(case, s, p, f'seed {args.seed}: {cls} ({diff})')
            classes[cls] = classes.get(cls, 0) + 1
        first = last
    sg.close()
    wall = time.monotonic() - t0
    n = args.cases
    print(f'spfdiff: seed {args.seed}, cases {args.start}..{end - 1}: '
          f'{n} cases, {agree} agree, {n - agree} differ '
          f'({unexplained} unexplained), {wall:.1f} s, '
          f'{n / wall if wall else 0:.0f} cases/s')
    for cls in sorted(classes, key=lambda k: -classes[k]):
        print(f'spfdiff:   {classes[cls]:7d}  {cls}')
    if unexplained > args.max_unexplained:
        rc = 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
