"""The daemon's command line: -h/--help, -V, unknown options, the
read-only configuration check -n, -P, -L, and starting without -f.

No Postfix: these tests run smtpguard directly (with_postfix = False).
"""

import hashlib
import os
import pwd
import re
import signal
import socket
import sqlite3
import subprocess
import time

import harness
from harness import IntegrationTestCase

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        '..', 'unit', 'fixtures')

# Every option smtpguard.c parses, as --help must show it.
OPTIONS = ['-p SOCKET', '-d PATH', '-u USER', '-m MODE', '-P PIDFILE',
           '-f, --foreground', '-l', '-L FACILITY', '-r, --dns-servers',
           '-n, --check', '-V, --version', '-h, --help']


def run(argv, timeout=30):
    return subprocess.run([harness.smtpguard_binary()] + argv,
                          capture_output=True, text=True, timeout=timeout)


def snapshot(directory):
    """Every file of a directory with the SHA-256 of its content."""
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), 'rb') as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


class CliTest(IntegrationTestCase):

    with_postfix = False

    def db_copy(self, name):
        """A directory holding a copy of the template database (no WAL)."""
        g = self.env.new_guard(name, start=False)
        con = sqlite3.connect(g.db)
        con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        con.close()
        for suffix in ('-wal', '-shm'):
            if os.path.exists(g.db + suffix):
                os.unlink(g.db + suffix)
        return g

    def check(self, db, expect_rc):
        """smtpguard -n on db: the exit status, and not one byte of the
        database's directory changed."""
        directory = os.path.dirname(db)
        before = snapshot(directory)
        r = run(['-n', '-d', db, '--dns-servers', '127.0.0.1:9'])
        self.assertEqual(r.returncode, expect_rc, r.stdout + r.stderr)
        self.assertEqual(snapshot(directory), before,
                         'smtpguard -n changed ' + directory)
        return r

    # -- informational options

    def test_help_lists_every_option(self):
        for opt in ('-h', '--help'):
            r = run([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith('usage: smtpguard'),
                            r.stdout)
            for o in OPTIONS:
                self.assertIn(o, r.stdout, f'{opt} does not show {o}')

    def test_version(self):
        for opt in ('-V', '--version'):
            r = run([opt])
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertRegex(r.stdout, r'^smtpguard \d+\.\d+\.\d+\S*\n$')

    def test_unknown_option(self):
        """getopt's convention, as opendkim: exit 2 with the usage."""
        for argv in (['-Z'], ['--no-such-option'], ['-p']):
            r = run(argv)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn('usage: smtpguard', r.stderr)
            self.assertEqual(r.stdout, '')
        r = run(['-f', 'stray'])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("unexpected argument 'stray'", r.stderr)

    # -- the configuration check

    def test_check_good_database(self):
        g = self.db_copy(self._testMethodName)
        r = self.check(g.db, 0)
        self.assertIn(f'schema version {self.schema_version(g.db)} '
                      '(current)', r.stdout)
        self.assertIn('configuration OK', r.stdout)

    def test_check_missing_database(self):
        path = os.path.join(self.env.root, 'nothing-here', 'x.db')
        os.makedirs(os.path.dirname(path))
        r = self.check(path, 0)
        self.assertIn('does not exist yet', r.stdout)
        self.assertFalse(os.path.exists(path))

    def test_check_invalid_setting(self):
        g = self.db_copy(self._testMethodName)
        con = sqlite3.connect(g.db)
        # The schema's triggers check numbers and choices; text is left to
        # the daemon.
        con.execute("UPDATE settings SET value = 'not-a-server' WHERE "
                    "name = 'dnsServers'")
        con.commit()
        con.close()
        r = self.check(g.db, 1)
        self.assertRegex(r.stderr, r'event=setting_invalid .*'
                         r'setting=dnsServers value=not-a-server')
        self.assertIn('configuration has problems', r.stdout)

    def test_check_damaged_file(self):
        d = os.path.join(self.env.root, 'damaged')
        os.makedirs(d)
        db = os.path.join(d, 'smtpguard.db')
        with open(db, 'wb') as f:
            f.write(b'SQLite format 3\0' + os.urandom(8192))
        r = self.check(db, 1)
        self.assertIn(f'{db} is damaged', r.stderr)
        self.assertIn('would move it aside', r.stderr)
        # Not an SQLite database at all, and another program's database.
        with open(db, 'wb') as f:
            f.write(b'hello\n' * 100)
        r = self.check(db, 1)
        self.assertIn('is damaged', r.stderr)
        os.unlink(db)
        con = sqlite3.connect(db)
        con.execute('CREATE TABLE other (x)')
        con.close()
        r = self.check(db, 1)
        self.assertIn("not smtpguard's", r.stderr)

    def test_check_old_schema(self):
        """A version 1 database (tests/unit/fixtures): reported as to be
        migrated, its policies checked, the file left at version 1."""
        for version in (1, 2):
            d = os.path.join(self.env.root, f'v{version}')
            os.makedirs(d)
            db = os.path.join(d, 'smtpguard.db')
            con = sqlite3.connect(db)
            for part in ('schema', 'defaults'):
                with open(os.path.join(FIXTURES,
                                       f'{part}_v{version}.sql')) as f:
                    con.executescript(f.read())
            con.execute(f'PRAGMA user_version = {version}')
            con.execute('PRAGMA journal_mode = WAL')
            con.close()
            self.assertFalse(os.path.exists(db + '-wal'))
            r = self.check(db, 0)
            self.assertIn(f'schema version {version}, would migrate to '
                          f'{harness_schema_version()}', r.stdout)
            self.assertEqual(self.schema_version(db), version)

    def test_check_while_running(self):
        """-n beside a running daemon reads its WAL, writes nothing."""
        g = self.env.new_guard(self._testMethodName)
        self.addCleanup(self._stop_guard, g)
        g.sql("INSERT INTO ip_lists (list, network) VALUES "
              "('whiteListedIPs', '300.1.2.3/8')")
        before = {n: v for n, v in snapshot(g.dir).items()
                  if n.endswith('.db')}
        r = run(['-n', '-d', g.db, '--dns-servers', '127.0.0.1:9'])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertRegex(r.stderr, r'event=list_entry_invalid .*'
                         r'300\.1\.2\.3/8')
        self.assertEqual({n: v for n, v in snapshot(g.dir).items()
                          if n.endswith('.db')}, before)
        self.assertTrue(g.running())

    @staticmethod
    def schema_version(db):
        con = sqlite3.connect(db)
        try:
            return con.execute('PRAGMA user_version').fetchone()[0]
        finally:
            con.close()

    # -- -P, -L

    def test_pidfile(self):
        """-P: the daemon's pid, written as its user, removed at SIGTERM."""
        piddir = os.path.join(self.env.root, 'run-pid')
        os.makedirs(piddir)
        pw = pwd.getpwnam(harness.GUARD_USER)
        os.chown(piddir, pw.pw_uid, pw.pw_gid)
        pidfile = os.path.join(piddir, 'smtpguard.pid')
        with open(pidfile, 'w') as f:
            f.write('99999\n')          # stale, from a killed daemon
        os.chown(pidfile, pw.pw_uid, pw.pw_gid)
        g = self.start_guard(args=['-P', pidfile])
        with open(pidfile) as f:
            self.assertEqual(f.read(), f'{g.pid}\n')
        self.assertEqual(os.stat(pidfile).st_uid, pw.pw_uid)
        self.assertEqual(g.stop(), 0)
        self.assertFalse(os.path.exists(pidfile))

    def test_facility(self):
        """-L local3 is taken (the test syslog keeps only mail.*: the start
        shows on stderr, -l); a name syslog does not know is refused."""
        g = self.db_copy(self._testMethodName)
        argv = [harness.smtpguard_binary(), '-f', '-l', '-L', 'local3',
                '-p', g.socket_spec, '-d', g.db, '-u', harness.GUARD_USER,
                '--dns-servers', '127.0.0.1:9']
        proc = harness.spawn(argv, g.stderr_path)
        self.addCleanup(harness.stop_process, proc)

        def started():
            if proc.poll() is not None:
                raise AssertionError(harness.tail(g.stderr_path))
            with open(g.stderr_path) as f:
                return 'event=daemon_started' in f.read()
        harness.wait_until(started, what='daemon_started on stderr')
        port = int(re.match(r'inet:(\d+)@', g.socket_spec).group(1))
        os.kill(proc.pid, signal.SIGTERM)
        self.wait_gone(proc.pid, port)
        self.assertEqual(proc.wait(5), 0)
        for bogus in ('nosuch', 'mail2', ''):
            r = run(['-f', '-L', bogus, '-d', g.db])
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f'-L {bogus}: unknown syslog facility', r.stderr)

    def test_signals_during_startup(self):
        """SIGHUP from the first instant of the start-up on (a log rotation
        that comes early): the daemon starts all the same, and a SIGTERM
        then stops it cleanly."""
        g = self.db_copy(self._testMethodName)
        argv = [harness.smtpguard_binary(), '-f', '-l', '-p', g.socket_spec,
                '-d', g.db, '-u', harness.GUARD_USER,
                '--dns-servers', '127.0.0.1:9']
        proc = harness.spawn(argv, g.stderr_path)
        self.addCleanup(harness.stop_process, proc)
        hups = 0

        def in_main():
            # Before main() (the dynamic loader) a SIGHUP still kills, as
            # in any program; from main()'s first line on it is blocked.
            with open(f'/proc/{proc.pid}/status') as f:
                blk = re.search(r'^SigBlk:\s+([0-9a-f]+)', f.read(), re.M)
            return blk and int(blk.group(1), 16) & (1 << (signal.SIGHUP - 1))
        harness.wait_until(in_main, what='SIGHUP blocked', interval=0.0005)

        def started():
            nonlocal hups
            if proc.poll() is not None:
                raise AssertionError(f'exited {proc.returncode} after '
                                     f'{hups} SIGHUPs: '
                                     + harness.tail(g.stderr_path))
            try:
                os.kill(proc.pid, signal.SIGHUP)
                hups += 1
            except ProcessLookupError:
                pass
            with open(g.stderr_path) as f:
                return 'event=daemon_started' in f.read()
        harness.wait_until(started, what='daemon_started on stderr',
                           interval=0.002)
        self.assertGreater(hups, 1)
        time.sleep(0.5)
        self.assertIsNone(proc.poll(), harness.tail(g.stderr_path))
        port = int(re.match(r'inet:(\d+)@', g.socket_spec).group(1))
        os.kill(proc.pid, signal.SIGTERM)
        self.wait_gone(proc.pid, port)
        self.assertEqual(proc.wait(5), 0)

    # -- without -f

    def test_daemonizes(self):
        """Without -f: the command returns once the daemon is ready (0),
        the daemon runs on as another process (its pid in the -P file),
        and SIGTERM stops it and removes the pid file."""
        g = self.db_copy(self._testMethodName)
        pw = pwd.getpwnam(harness.GUARD_USER)
        pidfile = os.path.join(g.dir, 'smtpguard.pid')
        since = g.mark()
        t0 = time.monotonic()
        r = run(['-p', g.socket_spec, '-d', g.db, '-u', harness.GUARD_USER,
                 '-P', pidfile, '--dns-servers', '127.0.0.1:9'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(time.monotonic() - t0, 20)
        with open(pidfile) as f:
            pid = int(f.read())
        self.addCleanup(self.kill_quietly, pid)
        self.assertTrue(harness.pid_alive(pid))
        with open(f'/proc/{pid}/status') as f:
            status = f.read()
        self.assertEqual(int(re.search(r'^Uid:\s+\d+\s+(\d+)', status,
                                       re.M).group(1)), pw.pw_uid)
        # Its own session, no controlling terminal; it logged its start.
        self.assertEqual(os.getsid(pid), pid)
        # (through syslog: the line may still be on its way)
        g.wait_event('daemon_started', since, pid=pid)
        port = int(re.match(r'inet:(\d+)@', g.socket_spec).group(1))
        self.assertTrue(harness.tcp_listening(port))
        os.kill(pid, signal.SIGTERM)
        self.wait_gone(pid, port)
        self.assertFalse(os.path.exists(pidfile))
        g.wait_event('daemon_stopped', since, pid=pid)

    def wait_gone(self, pid, port):
        deadline = time.monotonic() + 15
        while harness.pid_alive(pid) and time.monotonic() < deadline:
            try:                            # wake libmilter's listener
                socket.create_connection(('127.0.0.1', port), 1).close()
            except OSError:
                pass
            time.sleep(0.1)
        self.assertFalse(harness.pid_alive(pid), f'pid {pid} still runs')

    @staticmethod
    def kill_quietly(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def harness_schema_version():
    """SG_SCHEMA_VERSION, as the template database created by this build
    has it."""
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           '..', '..', 'lib', 'store.h')) as f:
        m = re.search(r'#define SG_SCHEMA_VERSION (\d+)', f.read())
    return int(m.group(1))
