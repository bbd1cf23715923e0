"""smtpguard over the milter protocol, without Postfix: replies and syslog.

These tests play the MTA themselves (with_postfix = False), so that they
can send what a real Postfix in front of the daemon never would: Sendmail's
macro set, address families other than IPv4/IPv6, missing macros, IPv6
clients, sessions dropped half-way.

Two clients:
  * sg-loadclient (tests/bench, $SG_LOADCLIENT): whole sessions as Postfix
    3.7 or (--sendmail) Sendmail 8.17 runs them; its trace (-v) gives the
    reply to every stage. See LoadRun.
  * MilterClient below: a small raw client for what sg-loadclient cannot
    do: hold a session open after HELO, choose the macros and the address
    family of CONNECT, send commands out of order, drop the connection at
    any point.

Client addresses come from the documentation ranges (192.0.2.0/24,
198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32), each test its own. They
are only written into milter packets: all traffic goes to smtpguard on
127.0.0.1.

What libmilter (8.17) does with CONNECT before smtpguard sees it, and what
the tests rely on:
  * family '4'/'6': the address is parsed into a sockaddr; smtpguard takes
    the client address from it (an IPv4-mapped IPv6 address counts as the
    IPv4 address);
  * family 'U' (unknown) and 'L' (unix socket): smtpguard falls back to the
    {client_addr} macro; without one the client is "unknown" and no
    session limit applies ("no address (local submission): no limits");
  * any other family: libmilter drops the connection without a reply and
    without calling smtpguard;
  * a session ends (xxfi_close, which releases the concurrency counts) on
    QUIT, on QUIT_NC (new connection follows) and on EOF or a reset;
    libmilter closes the socket only after xxfi_close has returned, so a
    client that sees EOF after QUIT knows the session is released.
  * {daemon_name} missing or empty: the service is logged as "default".
  * SMFIC_UNKNOWN: unlike HELO, libmilter does not check that the payload
    ends with a NUL before passing it to smtpguard as a string; the
    clients here (and Postfix) always terminate it.
"""

import concurrent.futures
import re
import socket
import struct
import subprocess
import threading

import harness
from harness import IntegrationTestCase, wait_until

# ---------------------------------------------------------------- protocol

# MTA -> milter commands (libmilter mfdef.h)
SMFIC_ABORT = b'A'
SMFIC_CONNECT = b'C'
SMFIC_MACRO = b'D'
SMFIC_HELO = b'H'
SMFIC_QUIT_NC = b'K'
SMFIC_MAIL = b'M'
SMFIC_OPTNEG = b'O'
SMFIC_QUIT = b'Q'
SMFIC_RCPT = b'R'
SMFIC_UNKNOWN = b'U'

# milter -> MTA replies
REPLY_WORDS = {b'c': 'continue', b'a': 'accept', b'r': 'reject',
               b't': 'tempfail', b'd': 'discard', b's': 'skip',
               b'4': 'shutdown', b'f': 'conn_fail'}

# What Postfix 3.x offers with milter_protocol = 6.
OFFER_VERSION, OFFER_ACTIONS, OFFER_PROTOCOL = 6, 0x1FF, 0x1FFFFF

EVENT_ID_RE = re.compile(r'\[smtpguard (\d{8})\]$')


class MilterReply(tuple):
    """(word, code): word as sg-loadclient names it (continue, tempfail,
    reject, ...; 'eof' when the milter closed the connection); code the
    text of a reply code ("421 4.7.0 ... [smtpguard 00200153]") or None."""

    def __new__(cls, word, code=None):
        return super().__new__(cls, (word, code))

    word = property(lambda self: self[0])
    code = property(lambda self: self[1])

    @property
    def event_id(self):
        m = EVENT_ID_RE.search(self.code or '')
        return m.group(1) if m else None

    def __str__(self):
        return self.word + (f' "{self.code}"' if self.code else '')


def postfix_macros(addr, daemon_name='smtpd'):
    """Postfix 3.7's connect macros (as sg-loadclient sends them)."""
    return [('j', 'mx.example.test'), ('{daemon_name}', daemon_name),
            ('{daemon_addr}', '198.51.100.25'), ('{daemon_port}', '25'),
            ('v', 'Postfix 3.7.11'), ('_', f'unknown [{addr}]'),
            ('{client_addr}', addr), ('{client_port}', '40025'),
            ('{client_name}', 'unknown'), ('{client_ptr}', 'unknown'),
            ('{client_resolve}', 'FAIL')]


def sendmail_macros(addr, daemon_name='MTA'):
    """Sendmail 8.17's default connect macros: no {client_addr}, but
    {daemon_name} (DaemonPortOptions Name=) and {if_addr}."""
    return [('j', 'mx.example.test'), ('_', f'[{addr}]'),
            ('{daemon_name}', daemon_name),
            ('{if_name}', 'mx.example.test'), ('{if_addr}', '198.51.100.25')]


class MilterClient:
    """The MTA side of one milter connection, packet by packet."""

    def __init__(self, port, timeout=5.0):
        self.timeout = timeout
        self.sock = socket.create_connection(('127.0.0.1', port), timeout)
        self.sock.settimeout(timeout)
        self.pflags = 0

    # -- wire

    def send(self, cmd, payload=b''):
        self.sock.sendall(struct.pack('>I', len(payload) + 1) + cmd + payload)

    def _recv_exact(self, n):
        data = b''
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionResetError:
                chunk = b''
            except socket.timeout:
                raise AssertionError(f'no reply from smtpguard within '
                                     f'{self.timeout}s') from None
            if not chunk:
                return None
            data += chunk
        return data

    def read(self):
        """One packet (cmd, data), or None when the milter closed."""
        head = self._recv_exact(4)
        if head is None:
            return None
        (length,) = struct.unpack('>I', head)
        body = self._recv_exact(length)
        if body is None or length < 1:
            return None
        return body[:1], body[1:]

    def reply(self):
        """The decision for the command just sent (progress skipped)."""
        while True:
            pkt = self.read()
            if pkt is None:
                return MilterReply('eof')
            cmd, data = pkt
            if cmd == b'p':
                continue
            if cmd == b'y':
                text = data.rstrip(b'\0').decode('utf-8', 'replace')
                return MilterReply('tempfail' if text[:1] == '4'
                                   else 'reject', text)
            if cmd in REPLY_WORDS:
                return MilterReply(REPLY_WORDS[cmd])
            raise AssertionError(f'unexpected milter reply {cmd!r} {data!r}')

    # -- commands

    def negotiate(self):
        self.send(SMFIC_OPTNEG, struct.pack('>III', OFFER_VERSION,
                                            OFFER_ACTIONS, OFFER_PROTOCOL))
        pkt = self.read()
        if pkt is None or pkt[0] != SMFIC_OPTNEG or len(pkt[1]) < 12:
            raise AssertionError(f'bad OPTNEG answer {pkt!r}')
        version, _actions, self.pflags = struct.unpack('>III', pkt[1][:12])
        return version

    def macros(self, stage, pairs):
        self.send(SMFIC_MACRO, stage + b''.join(
            k.encode() + b'\0' + v.encode() + b'\0' for k, v in pairs))

    def connect_packet(self, addr, family=None, host=None, port=40025):
        """SMFIC_CONNECT payload: host\\0 family [port addr\\0]."""
        if family is None:
            family = '6' if ':' in addr else '4'
        host = host or f'[{addr}]'
        payload = host.encode() + b'\0' + family.encode()
        if family != 'U':
            payload += struct.pack('>H', port) + addr.encode() + b'\0'
        return payload

    def connect(self, addr, family=None, macros=(), host=None):
        """macros: pairs sent in a macro packet before CONNECT; None sends
        no macro packet at all."""
        if macros is not None:
            self.macros(SMFIC_CONNECT, macros)
        self.send(SMFIC_CONNECT, self.connect_packet(addr, family, host))
        return self.reply()

    def helo(self, name='client.example.test'):
        self.send(SMFIC_HELO, name.encode() + b'\0')
        return self.reply()

    def mail(self, sender='sender@sender.example', macros=None):
        if macros is not None:
            self.macros(SMFIC_MAIL, macros)
        self.send(SMFIC_MAIL, f'<{sender}>'.encode() + b'\0')
        return self.reply()

    def unknown(self, line):
        self.send(SMFIC_UNKNOWN, line.encode() + b'\0')
        return self.reply()

    def abort(self):
        self.send(SMFIC_ABORT)

    def quit_nc(self):
        self.send(SMFIC_QUIT_NC)

    def quit(self, timeout=5.0):
        """QUIT, then wait for the milter to close: once it has, its close
        callback has run (libmilter closes the socket after it)."""
        try:
            self.send(SMFIC_QUIT)
        except OSError:
            pass
        return self.wait_eof(timeout)

    def wait_eof(self, timeout=5.0):
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return True
        except ConnectionResetError:
            return True
        except (socket.timeout, OSError):
            return False
        finally:
            self.close()

    def drop(self, how='close'):
        """End the connection without QUIT: 'close' (FIN), 'reset' (RST)
        or 'shutdown' (FIN, then wait until the milter has closed)."""
        if how == 'reset':
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack('ii', 1, 0))
        elif how == 'shutdown':
            try:
                self.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self.wait_eof()
        self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


# ---------------------------------------------------------------- loadclient

class LoadRun:
    """One sg-loadclient run (-v): per session its client, its stages
    (dicts: stage, reply, code, ...) and its result; the summary."""

    def __init__(self, argv, proc):
        self.argv = argv
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.sessions = {}
        self.summary = {}
        for line in self.stdout.splitlines():
            kv = {k: harness._unquote(v)
                  for k, v in harness.KV_RE.findall(line)}
            if 'session' in kv and 'client' in kv:
                self.sessions[kv['session']] = dict(
                    client=kv['client'], stages=[], result=None)
            elif 'session' in kv and 'result' in kv:
                self.sessions[kv['session']]['result'] = kv['result']
            elif 'stage' in kv:
                # -c 1: a session's lines come together, in order
                list(self.sessions.values())[-1]['stages'].append(kv)
            elif len(kv) == 1:
                self.summary.update(kv)

    def session(self, n=0):
        return self.sessions[str(n)]

    @property
    def result(self):
        return self.session()['result']

    def stages(self, name, n=0):
        return [s for s in self.session(n)['stages'] if s['stage'] == name]

    def headers(self, n=0):
        """Headers smtpguard inserted at end of message: [(name, value)]."""
        return [(s['arg'], s['value']) for s in self.stages('eom', n)
                if s.get('action') == 'insheader']

    def __str__(self):
        return (f'$ {" ".join(self.argv)}\n(exit {self.rc})\n{self.stdout}'
                f'{self.stderr}')


# ---------------------------------------------------------------- tests

class LoadClientMixin:
    """sg-loadclient runs against this class's smtpguard (with_postfix =
    False); shared with the DNS tests."""

    with_postfix = False

    @classmethod
    def setUpClass(cls):
        # Fails the class (never skips it) when sg-loadclient is missing.
        cls.loadclient_path = harness.loadclient_binary()
        super().setUpClass()

    @property
    def port(self):
        return self.env.guard_port

    def loadclient(self, *args, client=None, sessions=1, concurrency=1,
                   expect_rc=0, timeout=20):
        argv = [self.loadclient_path, '-s', f'inet:{self.port}@127.0.0.1',
                '-c', str(concurrency), '-n', str(sessions), '--timeout',
                '5', '-v']
        if client is not None:
            argv += ['--client', client]
        argv += list(args)
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True,
                              timeout=timeout)
        run = LoadRun(argv, proc)
        if expect_rc is not None:
            self.assertEqual(run.rc, expect_rc, f'sg-loadclient:\n{run}')
        return run

    def assert_accepted(self, run):
        """Every stage sent got "continue" and the message was accepted."""
        self.assertEqual(run.result, 'accepted', str(run))
        # Replies only: "stage=eom action=insheader" lines are changes.
        stages = [s for s in run.session()['stages'] if 'reply' in s]
        self.assertLessEqual({s['reply'] for s in stages},
                             {'ok', 'continue', 'notsent'}, str(run))
        for name in ('connect', 'helo', 'mail', 'rcpt', 'eom'):
            self.assertEqual([s['reply'] for s in run.stages(name)
                              if 'reply' in s],
                             ['continue'], f'{name}:\n{run}')

    def assert_closed_at(self, run, stage, event_id):
        """The session ended at `stage` with smtpguard's 421 and the event
        ID: sg-loadclient's result "closed", no stage after it."""
        replies = run.stages(stage)
        self.assertTrue(replies, f'no stage {stage}:\n{run}')
        last = replies[-1]
        self.assertEqual(last['reply'], 'tempfail', str(run))
        self.assertRegex(last.get('code', ''),
                         rf'^421 4\.7\.0 .*\[smtpguard {event_id}\]$',
                         str(run))
        self.assertEqual(run.result, 'closed', str(run))
        self.assertIs(run.session()['stages'][-1], last,
                      f'stages after the 421:\n{run}')



class MilterProtocolTest(LoadClientMixin, IntegrationTestCase):

    # ------------------------------------------------------------ helpers

    def milter(self):
        """A raw milter connection, negotiated; closed at the end."""
        c = MilterClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.negotiate(), OFFER_VERSION)
        return c

    def attempt(self, addr, family=None, macros='postfix', daemon_name=None,
                host=None):
        """A new session from addr: (client, reply to CONNECT).
        macros: 'postfix', 'sendmail', a list of pairs, or None (no macro
        packet)."""
        if macros == 'postfix':
            macros = postfix_macros(addr, daemon_name or 'smtpd')
        elif macros == 'sendmail':
            macros = sendmail_macros(addr, daemon_name or 'MTA')
        c = self.milter()
        return c, c.connect(addr, family, macros, host)

    def hold(self, addr, **kw):
        """A session held open after CONNECT and HELO, both accepted."""
        c, r = self.attempt(addr, **kw)
        self.assertEqual(r, ('continue', None), f'CONNECT from {addr}: {r}')
        r = c.helo()
        self.assertEqual(r, ('continue', None), f'HELO from {addr}: {r}')
        return c

    def hold_when_free(self, addr, timeout=5.0, **kw):
        """hold(), retried while smtpguard still refuses: it learns of a
        dropped connection asynchronously (libmilter's EOF)."""
        def once():
            c, r = self.attempt(addr, **kw)
            if r.word == 'continue':
                return c
            self.release(c)
            return None
        c = wait_until(once, timeout, f'a session from {addr} to be '
                       f'accepted', interval=0.05,
                       diag=self.guard.diag)
        self.assertEqual(c.helo(), ('continue', None))
        return c

    def release(self, c):
        """QUIT and wait until smtpguard has closed the session."""
        self.assertTrue(c.quit(), 'smtpguard did not close the session '
                        'after QUIT')

    def assert_refused(self, reply, event_id, code='421'):
        self.assertEqual(reply.word, 'tempfail' if code[0] == '4'
                         else 'reject', str(reply))
        self.assertTrue((reply.code or '').startswith(code + ' '),
                        str(reply))
        self.assertEqual(reply.event_id, event_id, str(reply))

    def start_guard(self, **kw):
        self.guard = super().start_guard(**kw)
        return self.guard

    def reload(self, g, settings):
        """Write settings and make them current at once (SIGHUP)."""
        g.set_settings(settings)
        since = g.mark()
        g.hup()
        g.wait_event('policy_reloaded', since, trigger='signal')

    def assert_no_trouble(self, g, since):
        """No internal error, no failed session, daemon still serving."""
        for ev in ('internal_error', 'failed_create_new_session'):
            g.assert_no_event(ev, since)
        self.assertTrue(g.running(), harness.tail(g.stderr_path))

    # ------------------------------------------------------------ tests

    def test_sendmail_macros(self):
        """Sendmail's macro set: accepted; the service is Sendmail's
        {daemon_name}; service_limits applies to it."""
        g = self.start_guard(service_limits=[('MTA', 1)])
        since = g.mark()
        # A normal session as Sendmail runs it ({daemon_name} "MTA", the
        # default Name= of DaemonPortOptions; no {client_addr} macro: the
        # address comes from CONNECT).
        self.assert_accepted(self.loadclient('--sendmail',
                                             client='192.0.2.10'))
        run = self.loadclient('--sendmail', '--unknown', 'XYZZY',
                              client='192.0.2.11')
        self.assert_accepted(run)
        self.assertEqual([s['reply'] for s in run.stages('unknown')],
                         ['continue'])
        ev = g.wait_event('smtp_unknown_command', since, client='192.0.2.11')
        self.assertEqual(ev['service'], 'MTA')
        self.assertEqual(ev['command'], 'XYZZY')
        self.assertEqual(ev['action'], 'none')
        # service_limits row "MTA" (1 session): one held, the next closed.
        held = self.hold('192.0.2.12', macros='sendmail')
        run = self.loadclient('--sendmail', client='192.0.2.13')
        self.assert_closed_at(run, 'connect', '00200150')
        self.assertRegex(run.stages('connect')[0]['code'],
                         r'^421 4\.7\.0 Too many concurrent sessions, try '
                         r'again later \[smtpguard 00200150\]$')
        ev = g.wait_event('max_smtp_sessions_reached', since,
                          client='192.0.2.13')
        self.assertEqual(ev['id'], '00200150')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['scope'], 'service')
        self.assertEqual(ev['service'], 'MTA')
        self.assertEqual(ev['max_sessions'], '1')
        # Sendmail's submission daemon (Name=MSA) has no limit.
        self.assert_accepted(self.loadclient(
            '--sendmail', '--daemon-name', 'MSA', client='192.0.2.14'))
        # The same name from Postfix's macro set is the same service.
        c, r = self.attempt('192.0.2.15', daemon_name='MTA')
        self.assert_refused(r, '00200150')
        self.release(c)
        # Releasing the held session makes room again.
        self.release(held)
        self.assert_accepted(self.loadclient('--sendmail',
                                             client='192.0.2.13'))
        self.assertEqual(g.count_events('00200150', since), 2)
        self.assertEqual(
            [(e['client'], e['scope']) for e in g.find_all('00200150',
                                                           since)],
            [('192.0.2.13', 'service'), ('192.0.2.15', 'service')])
        # Those two are the only refusals.
        self.assertEqual(
            [e['client'] for e in g.events(since)
             if e.get('action') in ('reject', 'tempfail', 'close')],
            ['192.0.2.13', '192.0.2.15'])
        self.assert_no_trouble(g, since)

    def test_relay_decisions_sendmail_macros(self):
        """The relay decision behind Sendmail: {auth_authen} at MAIL,
        the mailer name of each recipient, no Postfix-only macro."""
        g = self.start_guard(start=False)
        g.sql_script("DELETE FROM relay_networks;")
        g.start()
        since = g.mark()
        # Before any local domain is configured, Sendmail's mailer decides
        # what is local: "local" is, "esmtp" is a relay attempt.
        self.assert_accepted(self.loadclient(
            '--sendmail', '--rcpt', 'user@example.test',
            '--rcpt-mailer', 'local', client='203.0.113.20'))
        ev = g.wait_event('rcpt_local_delivery', since,
                          client='203.0.113.20')
        self.assertEqual(ev['source'], 'mta')
        run = self.loadclient('--sendmail', '--mail', 'x@remote.test',
                              '--rcpt', 'friend@far.test', '--rcpt-mailer',
                              'esmtp', client='203.0.113.21')
        self.assertEqual(run.result, 'rejected', str(run))
        self.assertRegex(run.stages('rcpt')[0].get('code', ''),
                         r'^550 5\.7\.1 .*\[smtpguard 00210111\]$')
        ev = g.wait_event('relay_attempt_rejected', since,
                          client='203.0.113.21')
        self.assertEqual(ev['msg'], 'Relay attempt from IP address '
                         '203.0.113.21, mail from <x@remote.test> to '
                         '<friend@far.test> rejected')
        # Authenticated (Sendmail sends {auth_authen} with MAIL): relayed.
        self.assert_accepted(self.loadclient(
            '--sendmail', '--auth', 'alice', '--mail', 'alice@example.test',
            '--rcpt', 'friend@far.test', '--rcpt-mailer', 'esmtp',
            client='203.0.113.22'))
        ev = g.wait_event('relay_granted_authenticated', since,
                          client='203.0.113.22')
        self.assertEqual(ev['user'], 'alice')
        # Configured: the tables decide, whatever the mailer says.
        since = g.mark()
        g.sql_script("""
            INSERT INTO local_domains (domain) VALUES ('example.test');
            INSERT INTO local_addresses (address)
                VALUES ('user@example.test');""")
        g.wait_event('policy_reloaded', since)
        self.assert_accepted(self.loadclient(
            '--sendmail', '--rcpt', 'USER@example.test.',
            '--rcpt-mailer', 'esmtp', client='203.0.113.23'))
        ev = g.wait_event('rcpt_local_delivery', since,
                          client='203.0.113.23')
        self.assertEqual(ev['source'], 'local_addresses')
        run = self.loadclient('--sendmail', '--rcpt', 'nobody@example.test',
                              '--rcpt-mailer', 'local',
                              client='203.0.113.24')
        self.assertRegex(run.stages('rcpt')[0].get('code', ''),
                         r'^550 5\.1\.1 .*\[smtpguard 00210202\]$')
        # The same decisions with Postfix's macros ({rcpt_mailer} smtp).
        run = self.loadclient('--mail', 'x@remote.test', '--rcpt',
                              'friend@far.test', '--rcpt-mailer', 'smtp',
                              client='203.0.113.25')
        self.assertRegex(run.stages('rcpt')[0].get('code', ''),
                         r'^550 5\.7\.1 .*\[smtpguard 00210111\]$')
        self.assert_accepted(self.loadclient(
            '--auth', 'alice', '--rcpt', 'friend@far.test',
            '--rcpt-mailer', 'smtp', client='203.0.113.26'))

    def test_hostile_milter_input(self):
        """What no Postfix sends but the protocol allows: oversized and
        NUL-laden HELO/MAIL/RCPT, thousands of recipients, scoped and
        mapped IPv6 clients, a session that never QUITs. Each gets a
        reply; the daemon keeps serving everybody else."""
        g = self.start_guard(settings={'MaxErrors': 10000,
                                       'maxRcptPerMessage': 0,
                                       'DoRcptRate': 0})
        since = g.mark()
        c = self.milter()
        self.assertEqual(c.connect('192.0.2.90',
                                   macros=postfix_macros('192.0.2.90')),
                         ('continue', None))
        for payload in (b'h' * 60000 + b'\0', b'a\0b\0c\0',
                        b'\xff\xfe\x00', b'\0'):
            c.send(SMFIC_HELO, payload)
            self.assertIn(c.reply().word, ('continue', 'reject'), payload[:9])
        for payload in (b'<' + b'x' * 60000 + b'@example.test>\0',
                        b'<a\0b@example.test>\0SIZE=1\0',
                        b'<\x01\x02>\0', b'\0\0\0'):
            c.send(SMFIC_MAIL, payload)
            r = c.reply()
            self.assertIn(r.word, ('continue', 'reject'), payload[:12])
        c.send(SMFIC_MAIL, b'<sender@sender.example>\0')
        self.assertEqual(c.reply(), ('continue', None))
        words = set()
        for i in range(3000):
            c.send(SMFIC_RCPT, f'<u{i}@example.test>'.encode() + b'\0')
            words.add(c.reply().word)
        c.send(SMFIC_RCPT, b'<' + b'r' * 60000 + b'>\0')
        words.add(c.reply().word)
        # NUL-laden RCPT: libmilter's argv ends the address at the first
        # NUL; the rest are ESMTP parameters, or nothing at all.
        for payload in (b'<a\0b@example.test>\0NOTIFY=NEVER\0',
                        b'<\0>\0', b'\0\0\0', b'\0',
                        b'<u@example.test>\0' + b'\0' * 1000):
            c.send(SMFIC_RCPT, payload)
            r = c.reply()
            self.assertIn(r.word, ('continue', 'reject', 'tempfail'),
                          payload[:12])
            words.add(r.word)
        self.assertLessEqual(words, {'continue', 'reject', 'tempfail'})
        c.abort()
        # This one never sends QUIT; others are served meanwhile.
        self.assert_accepted(self.loadclient(client='192.0.2.92'))
        # IPv6 with a zone: libmilter drops a CONNECT whose address it
        # cannot parse (family 6); as {client_addr} (family U) smtpguard
        # takes it, zone dropped. IPv4-mapped: the IPv4 client.
        c2, r = self.attempt('fe80::1%eth0', family='6')
        self.assertEqual(r.word, 'eof')
        c2, r = self.attempt('fe80::1%eth0', family='U',
                             macros=postfix_macros('fe80::1%eth0'))
        self.assertEqual(r.word, 'continue')
        self.release(c2)
        c3, r = self.attempt('::ffff:192.0.2.93', family='6')
        self.assertEqual(r.word, 'continue')
        self.release(c3)
        c.drop('reset')
        self.assert_accepted(self.loadclient(client='192.0.2.94'))
        self.assert_no_trouble(g, since)

    def test_unknown_commands_count_as_errors(self):
        """SMFIC_UNKNOWN: one smtp_unknown_command per command; over
        MaxErrors the reply is 421 with max_errors_reached."""
        src, src2 = '198.51.100.20', '198.51.100.21'
        g = self.start_guard(settings={'MaxErrors': 2})
        since = g.mark()
        run = self.loadclient('--unknown', 'FOO', '--unknown', 'BAR baz qux',
                              '--unknown', 'X"Y\\Z', client=src)
        self.assertEqual([s['reply'] for s in run.stages('unknown')],
                         ['continue', 'continue', 'tempfail'], str(run))
        self.assert_closed_at(run, 'unknown', '00200158')
        self.assertRegex(run.stages('unknown')[2]['code'],
                         r'^421 4\.7\.0 Too many errors, closing connection '
                         r'\[smtpguard 00200158\]$')
        self.assertEqual(run.stages('mail'), [])
        unknown = wait_until(
            lambda: len(g.find_all('smtp_unknown_command', since,
                                   client=src)) == 3
            and g.find_all('smtp_unknown_command', since, client=src),
            what='three smtp_unknown_command lines', diag=g.diag)
        # The verb only, logged safely quoted.
        self.assertEqual([e['command'] for e in unknown],
                         ['FOO', 'BAR', 'X"Y\\Z'])
        self.assertIn('command="X\\"Y\\\\Z"', unknown[2].line)
        self.assertEqual([e['errors'] for e in unknown], ['1', '2', '3'])
        for e in unknown:
            self.assertEqual((e['id'], e['action'], e['severity'],
                              e['max_errors'], e['service']),
                             ('00200162', 'none', 'info', '2', 'smtpd'),
                             e.line)
        ev = g.wait_event('max_errors_reached', since, client=src)
        self.assertEqual(ev['id'], '00200158')
        self.assertEqual(ev['action'], 'close')
        self.assertEqual(ev['errors'], '3')
        self.assertEqual(ev['max_errors'], '2')
        # At MaxErrors, not over it: the session goes on and is accepted;
        # errors are counted per session, not per client.
        for _ in range(2):
            run = self.loadclient('--unknown', 'FOO', '--unknown', 'FOO',
                                  client=src2)
            self.assert_accepted(run)
            self.assertEqual([s['reply'] for s in run.stages('unknown')],
                             ['continue', 'continue'])
        g.assert_no_event('max_errors_reached', since, client=src2)
        self.assertEqual([e['errors'] for e in g.find_all(
            'smtp_unknown_command', since, client=src2)],
            ['1', '2', '1', '2'])
        self.assertEqual(g.count_events('max_errors_reached', since), 1)
        self.assert_no_trouble(g, since)

    def test_ipv6_aggregation(self):
        """Concurrent sessions from one IPv6 /64 count together for
        maxSMTPipSessions; other /64s do not; ipv6AggregatePrefix sets the
        size; IPv4-mapped addresses count as IPv4."""
        g = self.start_guard(settings={'maxSMTPipSessions': 2})
        since = g.mark()
        held = [self.hold(a) for a in ('2001:db8:1:2::1',
                                       '2001:db8:1:2:ffff:ffff:ffff:fffe')]
        run = self.loadclient(client='2001:db8:1:2::3')
        self.assert_closed_at(run, 'connect', '00200153')
        ev = g.wait_event('max_smtp_ip_sessions_reached', since,
                          client='2001:db8:1:2::3')
        self.assertEqual(ev['id'], '00200153')
        self.assertEqual(ev['network'], '2001:db8:1:2::/64')
        self.assertEqual(ev['max_sessions'], '2')
        self.assertEqual(ev['action'], 'close')
        # The neighbouring /64s are other clients.
        for addr in ('2001:db8:1:3::1', '2001:db8:1:1:ffff:ffff:ffff:ffff'):
            self.assert_accepted(self.loadclient(client=addr))
        # An IPv4-mapped IPv6 address (family '6') is the IPv4 client.
        held += [self.hold('198.51.100.7') for _ in range(2)]
        run = self.loadclient(client='::ffff:198.51.100.7')
        self.assert_closed_at(run, 'connect', '00200153')
        ev = g.wait_event('00200153', since, client='198.51.100.7')
        self.assertEqual(ev['network'], '198.51.100.7')
        # ipv6AggregatePrefix 48: the whole 2001:db8:1::/48 is one client.
        for c in held:
            self.release(c)
        self.reload(g, {'ipv6AggregatePrefix': 48})
        mark = g.mark()
        held = [self.hold(a) for a in ('2001:db8:1:2::1', '2001:db8:1:3::1')]
        run = self.loadclient(client='2001:db8:1:ffff::1')
        self.assert_closed_at(run, 'connect', '00200153')
        ev = g.wait_event('00200153', mark, client='2001:db8:1:ffff::1')
        self.assertEqual(ev['network'], '2001:db8:1::/48')
        self.assert_accepted(self.loadclient(client='2001:db8:2::1'))
        self.assertEqual(g.count_events('00200153', mark), 1)
        self.assert_no_trouble(g, since)

    # The ways a storm session ends without QUIT: where, then how.
    DROP_POINTS = ('optneg', 'connect_sent', 'connect', 'helo', 'mail',
                   'abort', 'partial', 'unknown', 'quit_nc')
    DROP_KINDS = ('close', 'reset', 'shutdown')

    def storm_session(self, i, limited):
        """One session that the MTA abandons. Returns the CONNECT reply
        (None when dropped before it was read)."""
        point = self.DROP_POINTS[i % len(self.DROP_POINTS)]
        how = self.DROP_KINDS[(i // len(self.DROP_POINTS))
                              % len(self.DROP_KINDS)]
        if i % 2 == 0:
            addr = limited
        elif i % 4 == 1:
            addr = f'198.51.100.{100 + i % 100}'
        else:
            addr = f'2001:db8:5:{i:x}::1'

        def expect(r, what):
            if r != ('continue', None):
                raise AssertionError(f'storm session {i} ({addr}, drop '
                                     f'at {point}): {what} -> {r}')

        c = MilterClient(self.port)
        reply = None
        try:
            c.negotiate()
            if point == 'optneg':
                return None
            macros = postfix_macros(addr)
            if point == 'connect_sent':
                c.macros(SMFIC_CONNECT, macros)
                c.send(SMFIC_CONNECT, c.connect_packet(addr))
                return None
            reply = c.connect(addr, macros=macros)
            if reply.word != 'continue' or point == 'connect':
                return reply            # a refused MTA session ends here
            if point == 'partial':      # half a HELO packet
                c.sock.sendall(struct.pack('>I', 20) + SMFIC_HELO + b'half')
                return reply
            expect(c.helo(), 'HELO')
            if point == 'unknown':
                expect(c.unknown('FOO'), 'UNKNOWN')
            elif point == 'quit_nc':
                # Connection reuse (allowed after an unknown command):
                # QUIT_NC ends this session, CONNECT starts another.
                expect(c.unknown('FOO'), 'UNKNOWN')
                c.quit_nc()
                other = f'192.0.2.{100 + i % 100}'
                expect(c.connect(other, macros=postfix_macros(other)),
                       'CONNECT after QUIT_NC')
            elif point in ('mail', 'abort'):
                expect(c.mail(), 'MAIL')
                if point == 'abort':
                    c.abort()
            return reply
        finally:
            c.drop(how)

    def test_dropped_sessions_release_counts(self):
        """A storm of sessions the MTA abandons at every stage, in every
        way, while whole sessions run alongside, leaks no concurrency
        count: afterwards a client limited to one session gets exactly
        one, and the global limit counts exactly the open sessions."""
        limited = '203.0.113.200'
        g = self.start_guard(settings={'maxSMTPipSessions': 1,
                                       'DoFrequencyIP': 0})
        since = g.mark()
        # Whole sessions alongside, from other addresses (sg-loadclient's
        # first 60 IPv4 clients are hosts 1-20 of the three ranges).
        load = subprocess.Popen(
            [self.loadclient_path, '-s', f'inet:{self.port}@127.0.0.1',
             '-c', '4', '-n', '300', '--clients', '60', '--ipv6-percent',
             '20', '--unknown', 'FOO', '--timeout', '5'],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.addCleanup(harness.stop_process, load, timeout=5)
        n = len(self.DROP_POINTS) * len(self.DROP_KINDS) * 4   # 108
        replies = []
        lock = threading.Lock()

        def one(i):
            r = self.storm_session(i, limited)
            with lock:
                replies.append(r)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for f in [pool.submit(one, i) for i in range(n)]:
                f.result()              # re-raises a failed session
        out, err = load.communicate(timeout=20)
        summary = dict(line.split('=', 1) for line in out.splitlines()
                       if '=' in line)
        self.assertEqual(load.returncode, 0, out + err)
        self.assertEqual((summary['sessions'], summary['errors']),
                         ('300', '0'), out + err)
        # Some storm sessions were refused or dropped before CONNECT was
        # answered; the rest were accepted. Nothing else came back.
        words = {r.word for r in replies if r is not None}
        self.assertLessEqual(words, {'continue', 'tempfail'}, replies)
        for r in replies:
            if r is not None and r.word == 'tempfail':
                self.assert_refused(r, '00200153')

        # The limited client gets one session, exactly one.
        x = self.hold_when_free(limited)
        mark = g.mark()
        c, r = self.attempt(limited)
        self.assert_refused(r, '00200153')
        ev = g.wait_event('00200153', mark, client=limited)
        self.assertEqual((ev['network'], ev['max_sessions']), (limited, '1'))
        self.release(c)
        # The global limit counts exactly the open sessions: with a limit
        # of 3 and `x` open, two more are accepted and the next refused.
        self.reload(g, {'maxSMTPSessions': 3})
        mark = g.mark()
        others = [self.hold_when_free(a) for a in ('198.51.100.201',
                                                  '2001:db8:6::1')]
        c, r = self.attempt('192.0.2.201')
        self.assert_refused(r, '00200150')
        ev = g.wait_event('max_smtp_sessions_reached', mark,
                          client='192.0.2.201')
        self.assertEqual(ev['scope'], 'global')
        self.assertEqual(ev['max_sessions'], '3')
        self.release(c)
        # ... and closing them gives all three places back.
        for s in [x] + others:
            self.release(s)
        again = [self.hold(a) for a in (limited, '198.51.100.202',
                                        '2001:db8:6::2')]
        for s in again:
            self.release(s)
        self.assert_no_trouble(g, since)

    def test_missing_macros_and_address_families(self):
        """Missing macros, CONNECT families 'U' and 'L', a family libmilter
        does not know, commands before CONNECT: a clean verdict each time,
        and the daemon goes on serving."""
        g = self.start_guard(settings={'maxSMTPipSessions': 1})
        since = g.mark()

        def unknown_event(c, verb):
            self.assertEqual(c.unknown(verb), ('continue', None))
            return g.wait_event('smtp_unknown_command', since, command=verb)

        # Sendmail's macros without {daemon_name} and {if_addr}: accepted
        # at every stage, service "default".
        a = self.hold('192.0.2.30', macros=[('j', 'mx.example.test'),
                                            ('_', '[192.0.2.30]')])
        self.assertEqual(a.mail(macros=[('i', 'ABC123')]),
                         ('continue', None))
        ev = unknown_event(a, 'NOMACROS')
        self.assertEqual((ev['client'], ev['service']),
                         ('192.0.2.30', 'default'))
        # The limits still apply (address from CONNECT).
        c, r = self.attempt('192.0.2.30', macros=None)
        self.assert_refused(r, '00200153')
        ev = g.wait_event('00200153', since, client='192.0.2.30')
        self.assertEqual(ev['service'], 'default')
        self.release(c)
        # No macro packet at all; an empty {daemon_name}.
        for addr, macros in (('192.0.2.31', None),
                             ('192.0.2.32', [('{daemon_name}', '')])):
            c = self.hold(addr, macros=macros)
            self.assertEqual(c.mail(), ('continue', None))
            ev = unknown_event(c, f'EMPTY{addr[-2:]}')
            self.assertEqual((ev['client'], ev['service']),
                             (addr, 'default'))

        # Family 'U' (address unknown) and 'L' (unix socket), no
        # {client_addr}: client "unknown", no session limit: two at once.
        for family, addr, macros, service in (
                ('U', '', None, 'default'),
                ('L', '/run/smtpd.sock', [('{daemon_name}', 'local')],
                 'local')):
            for i in range(2):
                c = self.hold(addr, family=family, macros=macros,
                              host='localhost')
                self.assertEqual(c.mail(), ('continue', None))
            ev = unknown_event(c, f'FAMILY{family}')
            self.assertEqual((ev['client'], ev['service']),
                             ('unknown', service))
        # Family 'U' with {client_addr} (Sendmail writes IPv6 as IPv6:...):
        # the macro's address is the client, limits apply.
        for macro, client in (('192.0.2.33', '192.0.2.33'),
                              ('IPv6:2001:db8:7::1', '2001:db8:7::1')):
            c = self.hold('', family='U', host='localhost',
                          macros=[('{client_addr}', macro)])
            ev = unknown_event(c, f'MACRO{client[-2:].strip(":")}')
            self.assertEqual(ev['client'], client)
            c2, r = self.attempt('', family='U', host='localhost',
                                 macros=[('{client_addr}', macro)])
            self.assert_refused(r, '00200153')
            self.release(c2)
        # A family libmilter does not know ('X'): it drops the connection
        # without a reply and without calling smtpguard.
        x = self.milter()
        x.macros(SMFIC_CONNECT, postfix_macros('192.0.2.34'))
        x.send(SMFIC_CONNECT, x.connect_packet('192.0.2.34', family='X'))
        self.assertEqual(x.reply(), ('eof', None))
        # HELO and MAIL before CONNECT: no session state; 451 and an
        # internal_error line, the connection stays usable.
        e = self.milter()
        for stage, where in ((e.helo, 'helo'), (e.mail, 'envfrom')):
            r = stage()
            self.assertEqual(r, ('tempfail', '451 4.3.0 Temporary local '
                             'problem, try again later [smtpguard '
                             '00290010]'))
            ev = g.wait_event('internal_error', since, where=where)
            self.assertEqual(ev['id'], '00290010')
            self.assertEqual(ev['action'], 'tempfail')
        self.release(e)
        g.assert_no_event('internal_error', since,
                          where=re.compile('^(?!helo$|envfrom$)'))
        # The daemon goes on serving, with its limits.
        self.assert_accepted(self.loadclient(client='192.0.2.35'))
        self.assert_accepted(self.loadclient('--sendmail',
                                             client='192.0.2.36'))
        run = self.loadclient(client='192.0.2.30')      # `a` still open
        self.assert_closed_at(run, 'connect', '00200153')
        g.assert_no_event('failed_create_new_session', since)
        self.assertTrue(g.running(), harness.tail(g.stderr_path))


if __name__ == '__main__':
    import unittest
    unittest.main()
