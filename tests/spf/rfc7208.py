#!/usr/bin/env python3
"""Run the RFC 7208 test suite through smtpguard's SPF layer.

The suite (rfc7208-tests.yml, in Debian's python3-spf package) gives, per
scenario, DNS zone data and tests (client IP, HELO, MAIL FROM, acceptable
results, sometimes the explanation). A small DNS server of our own, on
127.0.0.1 (UDP, and TCP for answers over 512 bytes), serves each
scenario's zone data (spfdns.py) with the suite's rules (an SPF entry is also a TXT
record unless the name lists TXT records itself; TIMEOUT never answers);
tests/spf/sg-spf-query runs each test through sg_spf_check() and our
resolver.

  rfc7208.py --query PATH/sg-spf-query [--suite FILE.yml[.gz]]
             [--min-pass N] [-v]

Prints PASS/FAIL per test and the total. Exits 1 below --min-pass, on a
failure not listed in EXPECTED_FAIL, and on a pass of a test listed
there (the list must say what fails today, no more, no less).
Needs python3-yaml.
"""

import argparse
import gzip
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spfdns import Zone, start_servers  # noqa: E402

try:
    import yaml
except ImportError:
    sys.exit('rfc7208.py: python3-yaml is missing '
             '(apt-get install python3-yaml)')

SUITE = '/usr/share/doc/python3-spf/rfc7208-tests.yml.gz'

# Tests known to fail through smtpguard's SPF layer, with the cause. Empty:
# all 203 of the suite pass (with libspf2 1.2.10 as the evaluator).
EXPECTED_FAIL = {
}


def load_zone(zonedata):
    """{name: [(type, value) or 'TIMEOUT']} with the suite's SPF->TXT."""
    zone = {}
    for name, records in (zonedata or {}).items():
        out, spf, has_txt = [], [], False
        for rec in records:
            if rec == 'TIMEOUT':
                out.append('TIMEOUT')
                continue
            (t, v), = rec.items()
            if t in ('TXT', 'SPF') and isinstance(v, str):
                v = [v]
            if t == 'TXT':
                has_txt = True
            elif t == 'SPF':
                spf.append(v)
            if v != ['NONE']:
                out.append((t, v))
        if not has_txt:
            out += [('TXT', v) for v in spf]
        zone[name.lower().rstrip('.')] = out
    return zone


def parse_output(line):
    out, key, i = {}, None, 0
    for part in line.strip().split(' ', 1)[:1]:
        out['result'] = part.split('=', 1)[1]
    rest = line.strip()[len('result=' + out['result']):]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--query', required=True)
    ap.add_argument('--suite', default=SUITE)
    ap.add_argument('--min-pass', type=int, default=0)
    ap.add_argument('-v', action='store_true')
    args = ap.parse_args()
    opener = gzip.open if args.suite.endswith('.gz') else open
    try:
        with opener(args.suite, 'rt', encoding='utf-8',
                    errors='surrogateescape') as f:
            scenarios = list(yaml.safe_load_all(f))
    except OSError as e:
        sys.exit(f'rfc7208.py: {e} (apt-get install python3-spf)')
    port = start_servers(who='rfc7208')
    passed = failed = 0
    failures = []
    for sc in scenarios:
        if not sc:
            continue
        Zone.data = load_zone(sc.get('zonedata'))
        for name, t in sorted(sc['tests'].items()):
            want = t['result']
            want = want if isinstance(want, list) else [want]
            argv = [args.query, '-s', f'127.0.0.1:{port}', '-t', '200',
                    str(t['host']), str(t.get('helo', '')),
                    str(t.get('mailfrom', ''))]
            if 'receiver' in t:
                argv[1:1] = ['-r', str(t['receiver'])]
            proc = subprocess.run(argv, capture_output=True, text=True,
                                  errors='replace', timeout=30)
            if proc.returncode != 0:
                got = {'result': f'crash({proc.returncode})',
                       'reason': proc.stderr.strip()[-200:]}
            else:
                got = parse_output(proc.stdout)
            ok = got['result'] in want
            exp = t.get('explanation')
            if ok and exp is not None and exp != 'DEFAULT' and \
                    got['result'] == 'fail' and got.get('explanation') != exp:
                ok = False
            if ok:
                passed += 1
            else:
                failed += 1
                failures.append(name)
            if args.v or not ok:
                print(f'{"PASS" if ok else "FAIL"} {name}: want {want}'
                      f'{" exp=" + repr(exp) if exp else ""}, got '
                      f'{got.get("result")} reason={got.get("reason")!r}'
                      f' exp={got.get("explanation")!r}')
    total = passed + failed
    print(f'rfc7208: {passed} of {total} passed')
    rc = 0
    for name in failures:
        if name in EXPECTED_FAIL:
            print(f'rfc7208: expected failure {name}: {EXPECTED_FAIL[name]}')
        else:
            print(f'rfc7208: UNEXPECTED failure {name}')
            rc = 1
    for name in sorted(set(EXPECTED_FAIL) - set(failures)):
        print(f'rfc7208: UNEXPECTED pass {name} (listed in EXPECTED_FAIL)')
        rc = 1
    if passed < args.min_pass:
        print(f'rfc7208: below the required {args.min_pass}')
        rc = 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
