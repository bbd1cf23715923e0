"""harness.py - real-Postfix integration harness for smtpguard.

Per test class (see IntegrationTestCase) the harness builds, in a fresh
temporary directory:

  * syslog: a private rsyslogd on /dev/log writing mail.* into the
    temporary directory (or an existing syslog, see Syslog);
  * smtpguard on a free loopback TCP port (Guard), restarted with a fresh
    database for every test (IntegrationTestCase.start_guard);
  * a private Postfix instance (Postfix) with its own config, queue and
    data directories and three smtpd services: svcA and svcB use the TCP
    milter, svcU uses smtpguard's unix socket. A class with
    with_postfix = False (it plays the MTA itself, over the milter
    protocol) gets none.

Every wait is bounded; every process started here is stopped at the end of
its test or class, also on failure, and dies with the test runner even if
that is killed (ctest timeout): PR_SET_PDEATHSIG plus a watchdog process
per child (see _watchdog).

Concurrent runs: /dev/log is one per machine. A second run while one is
going reads the first run's rsyslog file for as long as that exists; ctest
serializes the modules (RESOURCE_LOCK), so run one at a time by hand too.

Python 3 standard library only.
"""

import base64
import ctypes
import errno
import fcntl
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

DEFAULT_TIMEOUT = 10.0          # any single wait
GUARD_USER = 'smtpguard'        # what every smtpguard runs as (-u)
POSTFIX_BIN = '/usr/sbin/postfix'
POSTCONF_BIN = '/usr/sbin/postconf'
POSTFIX_DAEMON_DIR = '/usr/lib/postfix/sbin'
RSYSLOGD_CANDIDATES = ('/usr/sbin/rsyslogd', '/sbin/rsyslogd')
LOGGER_BIN = shutil.which('logger') or '/usr/bin/logger'   # bsdutils
SYSTEM_MAIL_LOG = '/var/log/mail.log'
RSYSLOG_CONF_NAME = 'sgitest-rsyslog.conf'   # identifies our rsyslogd
OWNER_TAG = '# sgitest-owner-lock: '

KEEP = os.environ.get('SGITEST_KEEP') == '1'   # keep temp dirs for debugging
# SGITEST_VALGRIND=1: every smtpguard runs under memcheck; an error or a
# definite leak makes it exit 99, which fails the test that stops it.
VALGRIND = ['valgrind', '--quiet', '--error-exitcode=99', '--leak-check=full',
            '--errors-for-leak-kinds=definite', '--show-leak-kinds=definite',
            '--track-fds=no', '--num-callers=30', '--vgdb=no'] \
    if os.environ.get('SGITEST_VALGRIND') == '1' else []


class HarnessError(AssertionError):
    """The environment cannot be set up: a test failure, never a skip."""


# ---------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    """preexec_fn: die (SIGTERM) when the test runner dies."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _watchdog(pid):
    """A helper that sends SIGTERM to pid once the test runner is gone (its
    stdin, a pipe only the runner writes to, reaches EOF). PDEATHSIG alone
    is not enough: the kernel clears it when a process changes its
    credentials, as Postfix's master (seteuid to mail_owner) and
    smtpguard -u do."""
    return subprocess.Popen(
        ['/bin/sh', '-c', 'read _ignored; kill -TERM "$1" 2>/dev/null',
         'sgitest-watchdog', str(pid)],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)


def _disarm(proc):
    """Stop the watchdog of a child we are about to stop ourselves."""
    dog = getattr(proc, 'watchdog', None)
    if dog is not None:
        dog.kill()
        dog.wait(5)
        dog.stdin.close()
        proc.watchdog = None


def spawn(argv, log_path, **kw):
    """Start a child with stdout+stderr appended to log_path; it dies with
    the test runner (PDEATHSIG and a watchdog)."""
    out = open(log_path, 'ab')
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT,
                                preexec_fn=_child_setup,
                                start_new_session=True, **kw)
    finally:
        out.close()
    try:
        proc.watchdog = _watchdog(proc.pid)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Signal a child of ours and reap it; SIGKILL after timeout.

    Returns its exit status (negative: killed by a signal)."""
    _disarm(proc)
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def session_members(sid):
    """PIDs of live processes whose session id is sid (Postfix's master
    runs in its own session: these are its children)."""
    pids = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        # fields[0] = state, [1] ppid, [2] pgrp, [3] session
        if fields[0] != 'Z' and int(fields[3]) == sid:
            pids.append(int(name))
    return pids


def wait_until(pred, timeout=DEFAULT_TIMEOUT, what='condition',
               interval=0.02, diag=None):
    """Poll pred() until it returns something true; fail after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        now = time.monotonic()
        if now >= deadline:
            msg = f'timed out after {timeout:.1f}s waiting for {what}'
            if diag is not None:
                msg += '\n' + diag()
            raise AssertionError(msg)
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 1.5, 0.2)


_ports_given = set()


def free_port():
    """A free TCP port on 127.0.0.1, never one this process was given
    before: a port handed out but not yet bound (a DNS server's, say) is
    free again to the kernel, and two servers were once given the same."""
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(('127.0.0.1', 0))
            port = s.getsockname()[1]
        finally:
            s.close()
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def tcp_listening(port, addr='127.0.0.1'):
    """True when something LISTENs on addr:port (from /proc/net/tcp: no
    connection is made, so no SMTP or milter session is created)."""
    want = '%08X:%04X' % (int.from_bytes(socket.inet_aton(addr), 'little'),
                          port)
    try:
        with open('/proc/net/tcp') as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1] == want and parts[3] == '0A':
                    return True
    except OSError:
        pass
    return False


def tail(path, n=30):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode('utf-8', 'replace').splitlines()
    except OSError as e:
        return f'  ({path}: {e})'
    return '\n'.join('  ' + line for line in lines[-n:])


# ---------------------------------------------------------------- logs

SYSLOG_TAG_RE = re.compile(r'(?:^|\s)(?P<tag>[\w./-]+)\[(?P<pid>\d+)\]: '
                           r'(?P<msg>.*)$')
KV_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def _unquote(v):
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1]
        v = re.sub(r'\\x([0-9a-f]{2})', lambda m: chr(int(m.group(1), 16)), v)
        v = re.sub(r'\\(.)', r'\1', v)
    return v


class Event(dict):
    """One smtpguard catalogue line: its key=value fields as a dict, plus
    .line (the whole syslog line), .pid and .qid (NOQUEUE or queue id)."""

    def __init__(self, line, pid, msg):
        super().__init__()
        self.line = line
        self.pid = pid
        head, _, rest = msg.partition(': ')
        self.qid = head
        for k, v in KV_RE.findall(rest):
            self.setdefault(k, _unquote(v))

    def __repr__(self):
        return f'Event({self.line!r})'


def parse_event(line):
    """An Event from a syslog line of smtpguard, else None."""
    m = SYSLOG_TAG_RE.search(line)
    if not m or m.group('tag') != 'smtpguard' or ' id=' not in m.group('msg'):
        return None
    return Event(line, int(m.group('pid')), m.group('msg'))


class LogFile:
    """A growing text file read by position (byte offset)."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def lines(self, since=0):
        try:
            with open(self.path, 'rb') as f:
                f.seek(0, os.SEEK_END)
                if f.tell() < since:        # truncated or rotated
                    since = 0
                f.seek(since)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b'\n')             # complete lines only
        if end < 0:
            return []
        return data[:end].decode('utf-8', 'replace').split('\n')

    def wait_line(self, regex, since=0, timeout=DEFAULT_TIMEOUT):
        rx = re.compile(regex)

        def find():
            for line in self.lines(since):
                if rx.search(line):
                    return line
            return None
        return wait_until(find, timeout, f'{regex!r} in {self.path}',
                          diag=lambda: 'last lines:\n' + tail(self.path))


# ---------------------------------------------------------------- syslog

def _devlog_alive():
    """True when a syslog daemon receives on /dev/log."""
    if not os.path.exists('/dev/log'):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect('/dev/log')
        return True
    except OSError:
        return False
    finally:
        s.close()


def _our_rsyslogds():
    """(pid, conf path) of running rsyslogd processes started by this
    harness (recognised by the name of their config file)."""
    found = []
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/cmdline', 'rb') as f:
                argv = f.read().split(b'\0')
        except OSError:
            continue
        argv = [a.decode('utf-8', 'replace') for a in argv if a]
        if not argv or not os.path.basename(argv[0]).startswith('rsyslogd'):
            continue
        for i, a in enumerate(argv[:-1]):
            if a == '-f' and os.path.basename(argv[i + 1]) == \
                    RSYSLOG_CONF_NAME:
                found.append((int(name), argv[i + 1]))
    return found


def _owner_alive(lock_path):
    """True when the test run that owns lock_path still holds it."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)
    return False


class Syslog:
    """Where smtpguard's syslog lines can be read.

    - /dev/log absent (or dead): start our own rsyslogd (imuxsock on
      /dev/log, mail.* into DIR/mail.log, nothing else) and stop it at the
      end.
    - /dev/log served by an rsyslogd of this harness whose run is still
      going (another test module running concurrently): read its file.
      One whose run is gone (crashed) is stopped and replaced by ours.
    - /dev/log served by something else: read /var/log/mail.log.
    Whatever is chosen is verified with `logger -p mail.info MARKER`.
    """

    def __init__(self, directory):
        self.dir = directory
        self.proc = None
        self.mode = None
        self.log = None

    def start(self):
        if not os.access(LOGGER_BIN, os.X_OK):
            raise HarnessError('logger(1) not found: install the Debian '
                               'package "bsdutils"')
        os.makedirs(self.dir, exist_ok=True)
        self.lock_path = os.path.join(self.dir, 'owner.lock')
        self.lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        if _devlog_alive():
            ours = _our_rsyslogds()
            for pid, conf in ours:
                owner, path = self._read_conf(conf)
                if owner and _owner_alive(owner) and path:
                    self.mode = 'shared'
                    self.log = LogFile(path)
                    break
                # Left over by a run that died: it is ours, stop it.
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                wait_until(lambda: not pid_alive(pid), 10,
                           f'leftover rsyslogd {pid} to exit')
            if self.mode is None and _devlog_alive():
                self.mode = 'system'
                self.log = LogFile(SYSTEM_MAIL_LOG)
        if self.mode is None:
            self._start_own()
        self.verify()
        return self

    @staticmethod
    def _read_conf(conf):
        owner = path = None
        try:
            with open(conf) as f:
                for line in f:
                    if line.startswith(OWNER_TAG):
                        owner = line[len(OWNER_TAG):].strip()
                    m = re.search(r'type="omfile" file="([^"]+)"', line)
                    if m:
                        path = m.group(1)
        except OSError:
            pass
        return owner, path

    def _start_own(self):
        rsyslogd = next((p for p in RSYSLOGD_CANDIDATES
                         if os.access(p, os.X_OK)), None)
        if rsyslogd is None:
            raise HarnessError(
                'rsyslogd not found and /dev/log does not exist: install the '
                'Debian package "rsyslog" (apt-get install -y rsyslog)')
        path = os.path.join(self.dir, 'mail.log')
        conf = os.path.join(self.dir, RSYSLOG_CONF_NAME)
        with open(conf, 'w') as f:
            f.write(f"""# smtpguard integration tests: private rsyslogd
{OWNER_TAG}{self.lock_path}
global(workDirectory="{self.dir}")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.Unlink="on"
       SysSock.RateLimit.Interval="0")
mail.* action(type="omfile" file="{path}" template="RSYSLOG_FileFormat")
""")
        self.proc = spawn([rsyslogd, '-n', '-f', conf,
                           '-i', os.path.join(self.dir, 'rsyslogd.pid')],
                          os.path.join(self.dir, 'rsyslogd.out'))
        self.mode = 'own'
        self.log = LogFile(path)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError(
                    f'rsyslogd exited with {self.proc.returncode}:\n'
                    + tail(os.path.join(self.dir, 'rsyslogd.out')))
            return _devlog_alive()
        wait_until(up, DEFAULT_TIMEOUT, 'rsyslogd to listen on /dev/log')

    def verify(self):
        """logger -p mail.info MARKER must show up in the chosen file."""
        marker = f'sgitest-marker-{os.getpid()}-{time.monotonic_ns()}'
        since = self.log.mark()
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        # Resend now and then: the first datagram may race the daemon start.
        while True:
            subprocess.run([LOGGER_BIN, '-p', 'mail.info', '-t', 'sgitest',
                            marker], check=True, timeout=5)
            try:
                left = deadline - time.monotonic()
                self.log.wait_line(re.escape(marker), since,
                                   min(2.0, max(0.1, left)))
                return
            except AssertionError:
                if time.monotonic() >= deadline:
                    raise HarnessError(
                        f'syslog ({self.mode}) does not write mail.* to '
                        f'{self.log.path}: marker not seen within '
                        f'{DEFAULT_TIMEOUT}s')

    def barrier(self, timeout=DEFAULT_TIMEOUT):
        """Return once everything logged to /dev/log before this call is in
        the file: a marker sent now is written after it (one socket, read
        in order). Use before asserting that a line is absent."""
        marker = f'sgitest-barrier-{os.getpid()}-{time.monotonic_ns()}'
        since = self.log.mark()
        subprocess.run([LOGGER_BIN, '-p', 'mail.info', '-t', 'sgitest',
                        marker], check=True, timeout=5)
        self.log.wait_line(re.escape(marker), since, timeout)

    def stop(self):
        if self.proc is not None:
            rc = stop_process(self.proc, timeout=10)
            self.proc = None
            if rc not in (0, -signal.SIGTERM):
                raise HarnessError(f'rsyslogd exited with {rc}')
        if getattr(self, 'lock_fd', None) is not None:
            os.close(self.lock_fd)
            self.lock_fd = None


# ---------------------------------------------------------------- smtpguard

def smtpguard_binary():
    path = os.environ.get('SMTPGUARD') or os.path.join(
        REPO, 'build', 'milter', 'smtpguard')
    if not os.access(path, os.X_OK):
        raise HarnessError(
            f'smtpguard binary {path} not found: build it (cmake --build '
            f'build) or set SMTPGUARD')
    return path


def ctl_binary():
    """smtpguardctl: $SMTPGUARDCTL (set by ctest), else the default build
    directory."""
    path = os.environ.get('SMTPGUARDCTL') or os.path.join(
        REPO, 'build', 'lib', 'smtpguardctl')
    if not os.access(path, os.X_OK):
        raise HarnessError(f'smtpguardctl binary {path} not found: build it '
                           'or set SMTPGUARDCTL')
    return path


def loadclient_binary():
    """sg-loadclient (tests/bench), the MTA side of the milter protocol:
    $SG_LOADCLIENT (set by ctest), else the default build directory."""
    path = os.environ.get('SG_LOADCLIENT') or os.path.join(
        REPO, 'build', 'tests', 'bench', 'sg-loadclient')
    if not os.access(path, os.X_OK):
        raise HarnessError(
            f'sg-loadclient binary {path} not found: build it (cmake --build '
            f'build --target sg-loadclient) or set SG_LOADCLIENT')
    return path


class Guard:
    """One smtpguard process (-f -l), its database and its log lines."""

    def __init__(self, env, workdir, socket_spec, args=()):
        self.env = env
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.db = os.path.join(workdir, 'smtpguard.db')
        self.socket_spec = socket_spec
        self.args = list(args)
        self.stderr_path = os.path.join(workdir, 'smtpguard.stderr')
        self.proc = None
        self.pid = None
        self.started_at = 0        # syslog offset at the last start
        self.stop_requested = False

    # -- process

    def start(self, timeout=DEFAULT_TIMEOUT):
        assert self.proc is None or self.proc.poll() is not None, \
            'smtpguard already running'
        self.started_at = self.env.syslog.log.mark()
        argv = VALGRIND + [smtpguard_binary(), '-f', '-l', '-p',
                           self.socket_spec, '-d', self.db] + self.args
        with open(self.stderr_path, 'ab') as f:
            f.write(('=== ' + ' '.join(argv) + '\n').encode())
        self.proc = spawn(argv, self.stderr_path)
        self.pid = self.proc.pid
        self.stop_requested = False

        def started():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f'smtpguard exited with {self.proc.returncode} at start:\n'
                    + tail(self.stderr_path))
            return self.find('daemon_started', since=self.started_at)
        wait_until(started, timeout, 'daemon_started from smtpguard',
                   diag=self.diag)
        m = re.match(r'inet:(\d+)@(.+)$', self.socket_spec)
        if m:
            port, host = int(m.group(1)), m.group(2)

            def accepts():
                try:
                    socket.create_connection((host, port), 1).close()
                    return True
                except OSError:
                    return False
            wait_until(accepts, timeout, f'smtpguard to accept on {port}')
        else:
            path = self.socket_spec.split(':', 1)[1]
            wait_until(lambda: os.path.exists(path), timeout,
                       f'socket {path}')
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def hup(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=10.0, wake=True):
        """SIGTERM; returns the exit status (SIGKILL after timeout).

        libmilter notices the stop request only when its listener's poll
        returns, which it does every 5 seconds or on a new connection.
        wake=True connects to the milter socket (an empty session) until
        the daemon has exited, which saves those seconds per test;
        wake=False shows the unassisted shutdown."""
        if self.proc is None:
            return None
        self.stop_requested = True
        _disarm(self.proc)
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        # memcheck's exit (the final flush, the leak scan) is many times
        # slower, the more so on a loaded machine.
        deadline = time.monotonic() + timeout * (4 if VALGRIND else 1)
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                self.proc.wait(0.1)
            except subprocess.TimeoutExpired:
                if wake:
                    self._poke()
        if self.proc.poll() is None:        # hung: kill it, report -9
            self.proc.kill()
            self.proc.wait(5)
        return self.proc.returncode

    def _poke(self):
        m = re.match(r'inet:(\d+)@(.+)$', self.socket_spec)
        try:
            if m:
                socket.create_connection((m.group(2), int(m.group(1))),
                                         1).close()
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(1)
                try:
                    s.connect(self.socket_spec.split(':', 1)[1])
                finally:
                    s.close()
        except OSError:
            pass

    def restart(self, timeout=DEFAULT_TIMEOUT):
        rc = self.stop()
        if rc != 0:
            raise AssertionError(f'smtpguard exited with {rc} on SIGTERM:\n'
                                 + tail(self.stderr_path))
        return self.start(timeout)

    # -- database

    def connect_db(self):
        con = sqlite3.connect(self.db, timeout=5, isolation_level=None)
        con.execute('PRAGMA busy_timeout = 5000')
        return con

    def sql(self, statement, params=()):
        """Run one statement (in its own transaction); rows as a list."""
        con = self.connect_db()
        try:
            return con.execute(statement, params).fetchall()
        finally:
            con.close()

    def sql_script(self, script):
        """Run several statements (executescript: its own transactions)."""
        con = self.connect_db()
        try:
            con.executescript(script)
        finally:
            con.close()

    def set_settings(self, settings):
        """Insert or update settings rows (one transaction)."""
        self.apply_policy(settings)

    def apply_policy(self, settings=None, ip_lists=(), domain_lists=(),
                     service_limits=()):
        """Write policy rows in one transaction."""
        con = self.connect_db()
        try:
            con.execute('BEGIN IMMEDIATE')
            for name, value in (settings or {}).items():
                con.execute('INSERT INTO settings (name, value) VALUES (?, ?)'
                            ' ON CONFLICT (name) DO UPDATE SET value ='
                            ' excluded.value', (name, str(value)))
            for lst, net in ip_lists:
                con.execute('INSERT OR REPLACE INTO ip_lists (list, network)'
                            ' VALUES (?, ?)', (lst, net))
            for domain in domain_lists:
                con.execute("INSERT OR REPLACE INTO domain_lists (list,"
                            " domain) VALUES ('maxSMTPdomainIPWL', ?)",
                            (domain,))
            for service, limit in service_limits:
                con.execute('INSERT OR REPLACE INTO service_limits (service,'
                            ' max_sessions) VALUES (?, ?)', (service, limit))
            con.execute('COMMIT')
        finally:
            con.close()

    # -- log

    def events(self, since=None, pid=None):
        """Parsed catalogue lines of this daemon (default: of its current
        process, since its last start)."""
        since = self.started_at if since is None else since
        pid = self.pid if pid is None else pid
        out = []
        for line in self.env.syslog.log.lines(since):
            ev = parse_event(line)
            if ev is not None and (pid == 'any' or ev.pid == pid):
                out.append(ev)
        return out

    def find(self, event, since=None, pid=None, **fields):
        """First event named `event` (name or ID) whose fields match
        (values: str for equality, compiled regex for search)."""
        for ev in self.events(since, pid):
            if event not in (ev.get('event'), ev.get('id')):
                continue
            if all(_field_matches(ev.get(k), v) for k, v in fields.items()):
                return ev
        return None

    def find_all(self, event, since=None, pid=None, **fields):
        return [ev for ev in self.events(since, pid)
                if event in (ev.get('event'), ev.get('id'))
                and all(_field_matches(ev.get(k), v)
                        for k, v in fields.items())]

    def assert_no_event(self, event, since=None, **fields):
        """No such line, once syslog has caught up (barrier)."""
        self.env.syslog.barrier()
        found = self.find_all(event, since, **fields)
        if found:
            raise AssertionError(f'unexpected smtpguard event {event} '
                                 f'{fields}: ' + '\n'.join(e.line
                                                          for e in found))

    def count_events(self, event, since=None, **fields):
        """How many such lines, once syslog has caught up (barrier)."""
        self.env.syslog.barrier()
        return len(self.find_all(event, since, **fields))

    def wait_event(self, event, since=None, timeout=DEFAULT_TIMEOUT,
                   pid=None, **fields):
        """Wait for a matching catalogue line in syslog; returns the Event."""
        return wait_until(lambda: self.find(event, since, pid, **fields),
                          timeout, f'smtpguard event {event} {fields}',
                          diag=self.diag)

    def wait_line(self, regex, since=None, timeout=DEFAULT_TIMEOUT):
        """Wait for a syslog line of this daemon matching regex."""
        rx = re.compile(regex)
        since = self.started_at if since is None else since

        def find():
            for line in self.env.syslog.log.lines(since):
                m = SYSLOG_TAG_RE.search(line)
                if m and m.group('tag') == 'smtpguard' and \
                        int(m.group('pid')) == self.pid and rx.search(line):
                    return line
            return None
        return wait_until(find, timeout, f'smtpguard line {regex!r}',
                          diag=self.diag)

    def mark(self):
        return self.env.syslog.log.mark()

    def diag(self):
        lines = [ev.line for ev in self.events()][-25:]
        text = ('smtpguard syslog lines (pid %s):\n' % self.pid
                + '\n'.join('  ' + x for x in lines)
                + '\nsmtpguard stderr:\n' + tail(self.stderr_path, 15))
        if self.env.postfix is not None:
            text += '\npostfix maillog:\n' + tail(self.env.postfix.maillog, 15)
        return text


def _field_matches(value, want):
    if value is None:
        return False
    if isinstance(want, re.Pattern):
        return want.search(value) is not None
    return value == str(want)


# ---------------------------------------------------------------- postfix

MAIN_CF = """\
# Private Postfix instance of the smtpguard integration tests.
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
command_directory = /usr/sbin
daemon_directory = {daemon_dir}
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = example.test
inet_interfaces = 127.0.0.1
inet_protocols = all
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
# Nothing is ever delivered.
local_transport = discard:
default_transport = discard:
relay_transport = discard:
virtual_transport = discard:
biff = no
append_dot_mydomain = no
smtputf8_enable = no
smtpd_peername_lookup = no
smtpd_banner = $myhostname ESMTP
# Log into the test directory (works without /dev/log).
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# smtpguard.
smtpd_milters = {milter}
milter_default_action = tempfail
milter_protocol = 6
milter_connect_timeout = 5s
milter_command_timeout = 10s
milter_content_timeout = 10s
smtpd_authorized_xclient_hosts = 127.0.0.0/8
# Postfix's own limits must never interfere.
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
smtpd_client_new_tls_session_rate_limit = 0
smtpd_client_auth_rate_limit = 0
smtpd_hard_error_limit = 1000
smtpd_soft_error_limit = 1000
smtpd_junk_command_limit = 1000
smtpd_error_sleep_time = 0
default_process_limit = 200
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
"""

# SMTP AUTH through Cyrus SASL and a private sasldb (Postfix.setup_sasl).
SASL_CF = """\
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
smtpd_sasl_local_domain = example.test
smtpd_sasl_security_options = noanonymous
smtpd_tls_auth_only = no
"""

MASTER_CF_SERVICES = """\
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def require_postfix():
    for path in (POSTFIX_BIN, POSTCONF_BIN,
                 os.path.join(POSTFIX_DAEMON_DIR, 'master'),
                 os.path.join(POSTFIX_DAEMON_DIR, 'smtpd')):
        if not os.access(path, os.X_OK):
            raise HarnessError(
                f'{path} missing: install the Debian package "postfix" '
                f'(apt-get install -y postfix)')


class Postfix:
    """A private Postfix instance; master runs as our child (master -c).

    services: {daemon_name: dict(port=..., milter=... or None)}; each
    becomes an smtpd on 127.0.0.1:port with -o milter_macro_daemon_name,
    and -o smtpd_milters when milter is set.
    """

    def __init__(self, root, milter, services, extra=None, sasl_users=()):
        self.root = root
        self.etc = os.path.join(root, 'etc')
        self.maillog = os.path.join(root, 'maillog')
        self.milter = milter
        self.services = services
        self.extra = extra or {}
        self.sasl_users = sasl_users
        self.proc = None

    def port(self, service):
        return self.services[service]['port']

    def write_config(self):
        os.makedirs(self.etc, exist_ok=True)
        with open(os.path.join(self.etc, 'main.cf'), 'w') as f:
            f.write(MAIN_CF.format(root=self.root, milter=self.milter,
                                   daemon_dir=POSTFIX_DAEMON_DIR))
            if self.sasl_users:
                f.write(SASL_CF.format(root=self.root))
            for name, value in self.extra.items():
                f.write(f'{name} = {value}\n')
        lines = ['# service type private unpriv chroot wakeup maxproc command']
        for name, svc in self.services.items():
            line = (f"127.0.0.1:{svc['port']} inet n - n - - smtpd"
                    f" -o milter_macro_daemon_name={name}"
                    f" -o syslog_name=postfix/{name}")
            if svc.get('milter'):
                line += f" -o smtpd_milters={svc['milter']}"
            lines.append(line)
        with open(os.path.join(self.etc, 'master.cf'), 'w') as f:
            f.write('\n'.join(lines) + '\n' + MASTER_CF_SERVICES)

    def postfix_cmd(self, *args, check=True):
        r = subprocess.run([POSTFIX_BIN, '-c', self.etc] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise HarnessError(
                f'postfix -c {self.etc} {" ".join(args)} failed '
                f'({r.returncode}):\n{r.stdout}{r.stderr}\nmaillog:\n'
                + tail(self.maillog))
        return r

    def setup_sasl(self):
        """Cyrus SASL for smtpd: a sasldb of the test users (PLAIN, LOGIN),
        readable by the postfix user only."""
        saslpasswd = shutil.which('saslpasswd2') or '/usr/sbin/saslpasswd2'
        if not os.access(saslpasswd, os.X_OK):
            raise HarnessError('saslpasswd2 not found: apt-get install '
                               'sasl2-bin (contrib/install-deps.sh --test)')
        # Debian's Postfix reads smtpd.conf from $config_directory/sasl
        # (cyrus_sasl_config_path is not consulted there).
        d = os.path.join(self.root, 'sasl')
        conf = os.path.join(self.etc, 'sasl')
        os.makedirs(d, 0o755, exist_ok=True)
        os.makedirs(conf, 0o755, exist_ok=True)
        db = os.path.join(d, 'sasldb2')
        with open(os.path.join(conf, 'smtpd.conf'), 'w') as f:
            f.write('pwcheck_method: auxprop\nauxprop_plugin: sasldb\n'
                    f'mech_list: PLAIN LOGIN\nsasldb_path: {db}\n')
        for user, password in self.sasl_users:
            subprocess.run([saslpasswd, '-p', '-c', '-f', db, '-u',
                            'example.test', user], input=password,
                           text=True, check=True, timeout=30)
        pw = pwd.getpwnam('postfix')
        os.chown(db, pw.pw_uid, pw.pw_gid)
        os.chmod(db, 0o600)

    def start(self):
        require_postfix()
        if self.sasl_users:
            self.setup_sasl()
        self.write_config()
        os.makedirs(os.path.join(self.root, 'spool'), 0o755, exist_ok=True)
        data = os.path.join(self.root, 'data')
        os.makedirs(data, 0o700, exist_ok=True)
        pw = pwd.getpwnam('postfix')
        os.chown(data, pw.pw_uid, pw.pw_gid)
        # Creates the queue directories (post-install create-missing) and
        # checks the configuration.
        self.postfix_cmd('check')
        self.proc = spawn([os.path.join(POSTFIX_DAEMON_DIR, 'master'), '-c',
                           self.etc], os.path.join(self.root, 'master.out'),
                          env=dict(os.environ, MAIL_CONFIG=self.etc))

        def up():
            if self.proc.poll() is not None:
                raise HarnessError(
                    f'postfix master exited with {self.proc.returncode}:\n'
                    + tail(os.path.join(self.root, 'master.out'))
                    + '\nmaillog:\n' + tail(self.maillog))
            return all(tcp_listening(s['port'])
                       for s in self.services.values())
        wait_until(up, 20, 'postfix to listen on its ports',
                   diag=lambda: tail(self.maillog))
        return self

    def stop(self):
        if self.proc is None:
            return
        sid = self.proc.pid
        # Master passes SIGTERM on to its children and exits.
        stop_process(self.proc, signal.SIGTERM, 10)
        self.proc = None
        try:
            wait_until(lambda: not session_members(sid), 5,
                       'postfix processes to exit')
        except AssertionError:
            for pid in session_members(sid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_until(lambda: not session_members(sid), 5,
                       'postfix processes to die')

    def queued_headers(self, qid):
        """The headers of a message in the queue (held, say), unfolded:
        [(name, value)] in order."""
        r = subprocess.run(['/usr/sbin/postcat', '-c', self.etc, '-h', '-q',
                            qid], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise HarnessError(f'postcat {qid}: {r.stderr}')
        headers = []
        for line in r.stdout.splitlines():
            if line[:1] in (' ', '\t') and headers:
                name, value = headers[-1]
                headers[-1] = (name, value + ' ' + line.strip())
            elif ':' in line and not line.startswith('*** '):
                name, value = line.split(':', 1)
                headers.append((name, value.strip()))
        return headers

    def wait_maillog(self, regex, since=0, timeout=DEFAULT_TIMEOUT):
        return LogFile(self.maillog).wait_line(regex, since, timeout)


# ---------------------------------------------------------------- SMTP

class Reply(tuple):
    """(code, text) of an SMTP reply; code None when the server closed."""

    def __new__(cls, code, text):
        if isinstance(text, bytes):
            text = text.decode('utf-8', 'replace')
        return super().__new__(cls, (code, text))

    code = property(lambda self: self[0])
    text = property(lambda self: self[1])

    def __str__(self):
        return f'{self[0]} {self[1]}'


class Client:
    """An SMTP client session from a chosen source address (smtplib)."""

    def __init__(self, port, source='127.0.0.2', timeout=DEFAULT_TIMEOUT):
        self.port = port
        self.source = source
        self.smtp = smtplib.SMTP(local_hostname='client.example.test',
                                 timeout=timeout,
                                 source_address=(source, 0))
        try:
            code, text = self.smtp.connect('127.0.0.1', port)
            self.greeting = Reply(code, text)
        except smtplib.SMTPConnectError as e:
            self.greeting = Reply(e.smtp_code, e.smtp_error)
            self.smtp = None
        except smtplib.SMTPServerDisconnected as e:
            self.greeting = Reply(None, str(e))
            self.smtp = None

    @property
    def connected(self):
        return self.smtp is not None and self.smtp.sock is not None

    def cmd(self, line):
        """Send one command line; Reply(None, ...) when the server has
        closed the connection."""
        if not self.connected:
            return Reply(None, 'not connected')
        try:
            code, text = self.smtp.docmd(line)
        except (smtplib.SMTPServerDisconnected, ConnectionError) as e:
            self.close()
            return Reply(None, str(e))
        if code == -1:
            self.close()
            return Reply(None, text)
        return Reply(code, text)

    def ehlo(self, name='client.example.test'):
        return self.cmd(f'EHLO {name}')

    def xclient(self, addr, name='[UNAVAILABLE]'):
        """XCLIENT ADDR=addr NAME=name (after EHLO); Postfix answers with a
        new greeting (220), tells the milters about a new connection, and
        the session starts over. Postfix wants IPv6 addresses as
        IPV6:addr (a bare one is "501 5.5.4 Bad ADDR syntax")."""
        if ':' in addr and not addr.upper().startswith('IPV6:'):
            addr = 'IPV6:' + addr
        return self.cmd(f'XCLIENT ADDR={addr} NAME={name}')

    def auth_plain(self, user, password):
        """AUTH PLAIN with an initial response (RFC 4954)."""
        token = base64.b64encode(f'\0{user}\0{password}'.encode()).decode()
        return self.cmd(f'AUTH PLAIN {token}')

    def mail(self, sender):
        return self.cmd(f'MAIL FROM:<{sender}>')

    def rcpt(self, rcpt):
        return self.cmd(f'RCPT TO:<{rcpt}>')

    def data(self, body=None):
        r = self.cmd('DATA')
        if r.code != 354:
            return r
        body = body or ('From: <sender@sender.test>\r\nTo: <user@example.test>'
                        '\r\nSubject: smtpguard integration test\r\n\r\n'
                        'test\r\n')
        try:
            self.smtp.send(body.encode() + b'.\r\n')
            code, text = self.smtp.getreply()
        except (smtplib.SMTPServerDisconnected, ConnectionError) as e:
            self.close()
            return Reply(None, str(e))
        return Reply(code, text)

    def send_mail(self, sender='sender@sender.test', rcpt='user@example.test',
                  ehlo=True):
        """EHLO (optional), MAIL, RCPT, DATA; returns the first reply that is
        not positive, else the reply to the end of DATA."""
        if ehlo:
            r = self.ehlo()
            if r.code != 250:
                return r
        for step in (lambda: self.mail(sender), lambda: self.rcpt(rcpt)):
            r = step()
            if r.code != 250:
                return r
        return self.data()

    def wait_closed(self, timeout=5.0):
        """True once the server has closed the connection."""
        if not self.connected:
            return True
        sock = self.smtp.sock
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                break
            except OSError:
                self.close()
                return True
            if not data:
                self.close()
                return True
        return False

    def close(self):
        if self.smtp is not None:
            try:
                self.smtp.close()
            except OSError:
                pass
        self.smtp = None

    def quit(self):
        if self.connected:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
        self.close()


def run_as(directory):
    """smtpguard's -u when we are root (it refuses to stay root), with
    `directory` given to that user; nothing otherwise."""
    if os.geteuid() != 0:
        return []
    pw = ensure_system_user(GUARD_USER)
    os.chown(directory, pw.pw_uid, pw.pw_gid)
    return ['-u', GUARD_USER]


def ensure_system_user(name):
    """Create a system user (useradd --system) unless it exists."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    r = subprocess.run(['useradd', '--system', '--no-create-home',
                        '--shell', '/usr/sbin/nologin', name],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise HarnessError(f'useradd --system {name} failed: {r.stderr}')
    return pwd.getpwnam(name)


# ---------------------------------------------------------------- env

# ------------------------------------------------------------------- nsd

NSD_CONF = """\
server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip4: yes
    do-ip6: no
    username: ""
    chroot: ""
    zonesdir: "{dir}"
    pidfile: "{dir}/nsd.pid"
    xfrdfile: "{dir}/xfrd.state"
    zonelistfile: "{dir}/zone.list"
    database: ""
    logfile: "{dir}/nsd.log"
    server-count: 1
    verbosity: 1
    # Tests send hundreds of queries a second from one address.
    rrl-ratelimit: 0
    tcp-count: 200
remote-control:
    control-enable: no
"""


def dns_query_wire(name, qtype=6, qid=0x5347):
    """A DNS query (RD clear) as bytes: for probing the test server."""
    q = b''.join(bytes([len(label)]) + label.encode()
                 for label in name.rstrip('.').split('.') if label) + b'\0'
    return (qid.to_bytes(2, 'big') + b'\0\0\0\1\0\0\0\0\0\0' + q
            + qtype.to_bytes(2, 'big') + b'\0\1')


class NSD:
    """A private nsd (Debian package nsd) on 127.0.0.1:port, serving the
    zones given as {name: zone file text}; run in the foreground (-d), never
    as the system service. Every zone gets a default $TTL and SOA/NS when
    its text has no SOA; a zone given as None has no file, and nsd answers
    SERVFAIL for it."""

    def __init__(self, root, zones):
        self.dir = root
        self.zones = zones
        self.port = None
        self.proc = None

    @staticmethod
    def binary():
        for path in ('/usr/sbin/nsd', shutil.which('nsd') or ''):
            if path and os.access(path, os.X_OK):
                return path
        raise HarnessError('nsd not found: apt-get install nsd '
                           '(contrib/install-deps.sh --test)')

    def write(self):
        os.makedirs(self.dir, 0o755, exist_ok=True)
        conf = NSD_CONF.format(port=self.port, dir=self.dir)
        for name, text in self.zones.items():
            fname = name.replace('/', '_') + '.zone'
            if text is None:
                # A zone whose file is missing: nsd answers SERVFAIL.
                conf += (f'zone:\n    name: "{name}"\n'
                         f'    zonefile: "missing-{fname}"\n')
                continue
            if 'SOA' not in text:
                text = (f'$TTL 300\n@ IN SOA ns.{name}. hostmaster.{name}. '
                        '1 3600 600 86400 60\n@ IN NS ns.test.\n' + text)
            with open(os.path.join(self.dir, fname), 'w') as f:
                f.write(f'$ORIGIN {name}.\n' + text + '\n')
            conf += f'zone:\n    name: "{name}"\n    zonefile: "{fname}"\n'
        with open(os.path.join(self.dir, 'nsd.conf'), 'w') as f:
            f.write(conf)

    def truncated_over_udp(self, name, qtype=16):
        """Whether nsd sets TC in its UDP answer for name (TXT by default):
        a resolver without EDNS must ask again over TCP."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(2)
            s.sendto(dns_query_wire(name, qtype), ('127.0.0.1', self.port))
            data = s.recv(4096)
        finally:
            s.close()
        if len(data) < 12 or data[3] & 0x0f != 0:
            raise HarnessError(f'nsd gave no answer for {name}: {data!r}')
        return bool(data[2] & 0x02)

    def answers(self):
        """True when nsd answers a SOA query for its first zone."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(0.2)
            s.sendto(dns_query_wire(next(iter(self.zones))),
                     ('127.0.0.1', self.port))
            data = s.recv(4096)
            return len(data) > 12 and data[3] & 0x0f == 0
        except OSError:
            return False
        finally:
            s.close()

    def start(self):
        nsd = self.binary()
        self.port = free_port()
        self.write()
        check = subprocess.run(['/usr/sbin/nsd-checkconf',
                                os.path.join(self.dir, 'nsd.conf')],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise HarnessError(f'nsd.conf: {check.stderr}{check.stdout}')
        self.proc = spawn([nsd, '-d', '-c',
                           os.path.join(self.dir, 'nsd.conf')],
                          os.path.join(self.dir, 'nsd.out'))
        log = os.path.join(self.dir, 'nsd.log')

        def ready():
            if self.proc.poll() is not None:
                raise HarnessError(f'nsd exited with {self.proc.returncode}'
                                   f':\n{tail(log)}'
                                   f'{tail(os.path.join(self.dir, "nsd.out"))}')
            return self.answers()
        wait_until(ready, 10, 'nsd to answer', diag=lambda: tail(log))
        return self

    @property
    def server(self):
        return f'127.0.0.1:{self.port}'

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


class Env:
    """Everything one test class runs against. with_postfix=False: no
    Postfix instance (tests that play the MTA themselves, over the milter
    protocol); env.postfix stays None."""

    def __init__(self, name, with_postfix=True, postfix_extra=None,
                 sasl_users=(), dns_zones=None):
        if os.geteuid() != 0:
            raise HarnessError('the integration tests must run as root '
                               '(they start a Postfix instance and syslog)')
        if with_postfix:
            require_postfix()
        smtpguard_binary()
        self.postfix_extra = postfix_extra or {}
        self.sasl_users = sasl_users
        self.dns_zones = dns_zones
        self.nsd = None
        self.name = name
        self.with_postfix = with_postfix
        self.root = tempfile.mkdtemp(prefix=f'sgitest-{name}-')
        # Postfix (user postfix) and smtpguard -u must traverse it.
        os.chmod(self.root, 0o755)
        self.syslog = None
        self.postfix = None
        self.guards = []
        self.guard_port = free_port()
        self.unix_sock_dir = os.path.join(self.root, 'sock')
        self.unix_sock = os.path.join(self.unix_sock_dir, 'smtpguard.sock')
        self.template_db = None
        self.failed = False

    def start(self):
        self.syslog = Syslog(os.path.join(self.root, 'syslog')).start()
        if self.dns_zones:
            self.nsd = NSD(os.path.join(self.root, 'nsd'),
                           self.dns_zones).start()
        # smtpguard refuses to run as root: every guard drops to this user.
        pw = ensure_system_user(GUARD_USER)
        # A database created once; each test starts from a copy.
        template = os.path.join(self.root, 'template')
        os.makedirs(template)
        os.chown(template, pw.pw_uid, pw.pw_gid)
        g = Guard(self, template, f'inet:{self.guard_port}@127.0.0.1',
                  ['--dns-servers', self.dns_server(), '-u', GUARD_USER])
        self.guards.append(g)
        g.start()
        rc = g.stop()
        if rc != 0:
            raise HarnessError(f'smtpguard exited with {rc}:\n'
                               + tail(g.stderr_path))
        if not self.dns_zones:
            # No DNS server here: the DNS checks have their own classes.
            g.set_settings({'DoSPF': '0', 'DoFCrDNS': '0'})
        self.template_db = g.db
        if not self.with_postfix:
            return self
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        ports = sorted(ports)
        self.postfix = Postfix(
            os.path.join(self.root, 'postfix'),
            f'inet:127.0.0.1:{self.guard_port}',
            {'svcA': {'port': ports[0]}, 'svcB': {'port': ports[1]},
             'svcU': {'port': ports[2], 'milter': f'unix:{self.unix_sock}'}},
            extra=self.postfix_extra, sasl_users=self.sasl_users)
        self.postfix.start()
        return self

    def dns_server(self):
        """The test nsd, or a closed port on loopback: no DNS query of a
        test ever leaves the machine."""
        return self.nsd.server if self.nsd is not None else '127.0.0.1:9'

    def new_guard(self, name, socket_spec=None, args=(), settings=None,
                  ip_lists=(), domain_lists=(), service_limits=(),
                  owner=None, start=True):
        """A smtpguard with a fresh copy of the template database, the
        given policy written before it starts. owner: user name that gets
        the database directory (for -u)."""
        args = ['--dns-servers', self.dns_server()] + list(args)
        if '-u' not in args:
            args += ['-u', GUARD_USER]
            owner = owner or GUARD_USER
        g = Guard(self, os.path.join(self.root, 'guards', name),
                  socket_spec or f'inet:{self.guard_port}@127.0.0.1', args)
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(self.template_db + suffix):
                shutil.copy(self.template_db + suffix, g.db + suffix)
        if settings or ip_lists or domain_lists or service_limits:
            g.apply_policy(settings, ip_lists, domain_lists, service_limits)
        if owner is not None:
            pw = pwd.getpwnam(owner)
            for entry in [g.dir] + [os.path.join(g.dir, n)
                                    for n in os.listdir(g.dir)]:
                os.chown(entry, pw.pw_uid, pw.pw_gid)
        self.guards.append(g)
        if start:
            g.start()
        return g

    def close(self):
        errors = []
        for g in self.guards:
            try:
                g.stop()
            except Exception as e:      # keep going: stop everything
                errors.append(e)
        for part in (self.postfix, self.nsd, self.syslog):
            if part is None:
                continue
            try:
                part.stop()
            except Exception as e:      # keep going: stop everything
                errors.append(e)
        if not KEEP and not self.failed:
            shutil.rmtree(self.root, ignore_errors=True)
        elif os.path.isdir(self.root):
            print(f'\n[sgitest] kept {self.root}')
        if errors:
            raise errors[0]


class TestTimeout(AssertionError):
    pass


def _alarm(signum, frame):
    raise TestTimeout(f'test still running after its time limit '
                      f'(SGITEST_TEST_TIMEOUT)')


TEST_TIMEOUT = int(os.environ.get('SGITEST_TEST_TIMEOUT', '30'))


class IntegrationTestCase(unittest.TestCase):
    """Base class: one Env per test class (setUpClass/addClassCleanup).

    Each test fails after TEST_TIMEOUT seconds at the latest (SIGALRM),
    whatever it is blocked on."""

    env = None
    # False: the class drives smtpguard over the milter protocol itself and
    # gets no Postfix instance (faster; env.postfix is None).
    with_postfix = True
    # More main.cf parameters for this class's Postfix, and SMTP AUTH users
    # ((name, password) pairs in realm example.test) if it needs AUTH.
    postfix_extra = {}
    sasl_users = ()
    # Zones ({name: zone file text}) for a private nsd; smtpguard then gets
    # --dns-servers pointing at it (env.nsd).
    dns_zones = None
    # A class whose tests run long by design raises its own limit.
    test_timeout = 0

    def setUp(self):
        super().setUp()
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(max(TEST_TIMEOUT, self.test_timeout))

        def disarm():
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        self.addCleanup(disarm)       # first registered: runs last

    @classmethod
    def setUpClass(cls):
        env = Env(cls.__name__.lower(), with_postfix=cls.with_postfix,
                  postfix_extra=cls.postfix_extra,
                  sasl_users=cls.sasl_users, dns_zones=cls.dns_zones)
        cls.addClassCleanup(env.close)
        try:
            env.start()
        except BaseException:
            env.failed = True           # keep the directory for a look
            raise
        cls.env = env

    def run(self, result=None):
        result = result or self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before and self.env:
            self.env.failed = True
        return out

    # -- helpers for tests

    def start_guard(self, **kw):
        """A fresh smtpguard for this test (stopped at its end; a non-zero
        exit status at that stop fails the test)."""
        name = kw.pop('name', self._testMethodName)
        g = self.env.new_guard(name, **kw)
        self.addCleanup(self._stop_guard, g)
        return g

    def _stop_guard(self, g):
        if g.proc is None:
            return
        running, requested = g.running(), g.stop_requested
        rc = g.stop()
        if running:
            self.assertEqual(rc, 0, f'smtpguard exited with {rc} on SIGTERM'
                             f':\n{tail(g.stderr_path)}')
        elif not requested:
            self.fail(f'smtpguard (pid {g.pid}) died during the test with '
                      f'status {rc}:\n{tail(g.stderr_path)}')

    def client(self, source, service='svcA', expect_greeting=None):
        c = Client(self.env.postfix.port(service), source)
        self.addCleanup(c.close)
        if expect_greeting is not None:
            self.assertEqual(c.greeting.code, expect_greeting,
                             f'greeting from {service} for {source}: '
                             f'{c.greeting}')
        return c

    def assertReply(self, reply, code, event_id=None, msg=None):
        self.assertEqual(reply.code, code, msg or f'reply {reply}')
        if event_id is not None:
            self.assertIn(f'[smtpguard {event_id}]', reply.text,
                          msg or f'reply {reply}')
