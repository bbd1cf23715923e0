"""Database and start-up faults under a running daemon: a writer holding
the database past the busy timeout, a full filesystem, the file deleted or
replaced, a read-only database at start, a damaged file at start, a
missing socket directory and a stale socket file.

Each fault has defined behaviour and a catalogue event: sessions keep
being served (databaseFailMode open, the default) or get 451 (tempfail),
nothing already stored is lost, what was counted meanwhile is written when
the fault clears, and the daemon recovers by itself. sg-loadclient plays
the MTA. The full-filesystem test mounts a small tmpfs (root; the test
fails if mounting is refused).
"""

import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import threading
import time

import harness
from harness import IntegrationTestCase
from test_milter_protocol import LoadClientMixin


def db_rows(path, sql, args=()):
    con = sqlite3.connect(path, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


class FaultTest(LoadClientMixin, IntegrationTestCase):

    def hold_write_lock(self, db, seconds):
        """Another writer: BEGIN IMMEDIATE held for `seconds`."""
        held = threading.Event()

        def hold():
            con = sqlite3.connect(db, timeout=10, isolation_level=None)
            con.execute('BEGIN IMMEDIATE')
            held.set()
            time.sleep(seconds)
            con.execute('ROLLBACK')
            con.close()
        t = threading.Thread(target=hold)
        t.start()
        self.addCleanup(t.join)
        self.assertTrue(held.wait(10))
        return t

    def timed_session(self, client, expect='accepted'):
        t0 = time.monotonic()
        run = self.loadclient(client=client, expect_rc=None)
        took = time.monotonic() - t0
        if expect is not None:
            self.assertEqual(run.result, expect, str(run))
        return run, took

    def assert_start_failed(self, argv, message, since):
        """argv fails to start: exit 1, `message` on stderr, and the
        catalogue event daemon_start_failed with it in syslog and on
        stderr."""
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn(message, r.stderr)
        self.assertIn('id=00290015 event=daemon_start_failed '
                      'severity=critical', r.stderr)
        ev = self.env.guards[0].wait_event(
            'daemon_start_failed', since, pid='any',
            reason=re.compile(re.escape(message)))
        self.assertEqual(ev['id'], '00290015')
        return r

    def mount_tmpfs(self, path, size):
        os.makedirs(path, exist_ok=True)
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o',
                            f'size={size},mode=0755', 'tmpfs', path],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f'mount tmpfs: {r.stderr}')
        self.addCleanup(subprocess.run, ['umount', '-l', path],
                        capture_output=True)

    def guard_on(self, directory, **kw):
        """A guard whose database lives in `directory`."""
        g = self.env.new_guard(self._testMethodName, start=False, **kw)
        self.addCleanup(self._stop_guard, g)
        db = os.path.join(directory, 'smtpguard.db')
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(g.db + suffix):
                shutil.move(g.db + suffix, db + suffix)
        g.db = db
        pw = pwd.getpwnam(harness.GUARD_USER)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
        for name in os.listdir(directory):
            os.chown(os.path.join(directory, name), pw.pw_uid, pw.pw_gid)
        return g

    # -- database faults

    def test_locked_past_busy_timeout(self):
        """A writer holds the database for 8 s (the busy timeout is 5 s):
        sessions are served at full speed from memory, a ban issued
        meanwhile is enforced at once and stored once the lock is gone."""
        g = self.start_guard(settings={'maxSMTPipConnects': 2})
        since = g.mark()
        t = self.hold_write_lock(g.db, 8)
        worst = 0
        for i in range(3):
            run, took = self.timed_session('192.0.2.80', expect=None)
            worst = max(worst, took)
        self.assertEqual(run.result, 'closed', str(run))
        for i in range(10):
            _, took = self.timed_session(f'192.0.2.{90 + i}')
            worst = max(worst, took)
        # A ban write waits the pool's 250 ms at most; nothing waits 5 s.
        self.assertLess(worst, 2.0)
        g.wait_event('database_error', since, timeout=15)
        t.join()
        g.wait_event('database_recovered', since, timeout=15)
        self.assertEqual(db_rows(g.db, "SELECT count(*) FROM bans WHERE "
                                 "key = '192.0.2.80'"), [(1,)])
        self.assertEqual(db_rows(g.db, "SELECT count FROM rate_windows "
                                 "WHERE key = 'conn:192.0.2.95'"), [(1,)])
        self.assertTrue(g.running())

    def test_locked_with_tempfail_mode(self):
        """databaseFailMode tempfail: 451 while writes fail, accepted again
        at the first successful write."""
        g = self.start_guard(settings={'databaseFailMode': 'tempfail'})
        since = g.mark()
        self.timed_session('192.0.2.81')          # something to flush
        t = self.hold_write_lock(g.db, 8)
        g.wait_event('database_error', since, timeout=15)
        run, _ = self.timed_session('192.0.2.82', expect=None)
        self.assertEqual(run.stages('connect')[0]['reply'], 'tempfail',
                         str(run))
        self.assertRegex(run.stages('connect')[0].get('code', ''),
                         r'^451 .*\[smtpguard 00290014\]$')
        g.wait_event('database_unavailable', since)
        t.join()
        g.wait_event('database_recovered', since, timeout=15)
        self.timed_session('192.0.2.82')

    def test_disk_full(self):
        """The database's filesystem fills up: SQLITE_FULL on every flush,
        sessions keep flowing, nothing counted is lost: when space is back
        every counter reaches the file."""
        fs = os.path.join(self.env.root, 'fullfs')
        self.mount_tmpfs(fs, '4m')
        g = self.guard_on(fs)
        g.start()
        since = g.mark()
        self.timed_session('192.0.2.1')
        filler = os.path.join(fs, 'filler')
        with open(filler, 'wb') as f:
            try:
                while True:
                    f.write(b'\0' * 65536)
                    f.flush()
            except OSError:
                pass
        # 300 different clients: more counter pages than the WAL can grow.
        run = self.loadclient('--clients', '300', sessions=300,
                              concurrency=4, expect_rc=None, timeout=60)
        self.assertIn('accepted=300', run.stdout, str(run))
        line = g.wait_event('database_error', since, timeout=15)
        self.assertRegex(line.line, r'full|disk')
        self.assertTrue(g.running())
        os.unlink(filler)
        g.wait_event('database_recovered', since, timeout=30)
        n = db_rows(g.db, "SELECT count(*) FROM rate_windows WHERE key "
                    "LIKE 'conn:%'")[0][0]
        self.assertGreaterEqual(n, 300)
        self.assertEqual(db_rows(g.db, 'PRAGMA integrity_check'), [('ok',)])

    def test_deleted_while_running(self):
        """The file is deleted: the daemon notices within a flush interval,
        creates a new one, writes its bans and counters into it and says
        so (database_replaced)."""
        g = self.start_guard(settings={'maxSMTPipConnects': 1})
        since = g.mark()
        self.timed_session('192.0.2.83')
        self.timed_session('192.0.2.83', expect='closed')
        g.wait_event('smtp_ip_frequency_exceeded', since)
        time.sleep(1.5)                           # flushed
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(g.db + suffix):
                os.unlink(g.db + suffix)
        line = g.wait_event('database_replaced', since, timeout=10)
        self.assertIn('how=deleted created=yes', line.line)
        self.assertEqual(db_rows(g.db, "SELECT count(*) FROM bans WHERE "
                                 "key = '192.0.2.83'"), [(1,)])
        # Still banned; the new file is a working database.
        self.timed_session('192.0.2.83', expect='closed')
        self.assertEqual(db_rows(g.db, 'PRAGMA integrity_check'), [('ok',)])
        subprocess.run([harness.ctl_binary(), '-d', g.db, 'policy', 'set',
                        'MaxErrors', '4'], check=True, capture_output=True)
        g.wait_event('policy_reloaded', since, timeout=5)

    def test_replaced_while_running(self):
        """Another valid database is moved into the file's place (a
        restore): the daemon notices, says so (database_replaced,
        how=replaced), keeps serving, writes the bans it holds in memory
        into the new file and takes its policies."""
        g = self.start_guard(settings={'maxSMTPipConnects': 1})
        since = g.mark()
        self.timed_session('192.0.2.86')
        self.timed_session('192.0.2.86', expect='closed')
        g.wait_event('smtp_ip_frequency_exceeded', since)
        # The replacement: a copy of the template, with a policy of its own.
        new = os.path.join(g.dir, 'restored.db')
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(self.env.template_db + suffix):
                shutil.copy(self.env.template_db + suffix, new + suffix)
        con = sqlite3.connect(new, timeout=10)
        con.execute("UPDATE settings SET value = '7' WHERE name = "
                    "'MaxErrors'")
        con.commit()
        con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        con.execute('PRAGMA journal_mode = DELETE')
        con.close()
        self.assertEqual(db_rows(new, 'SELECT count(*) FROM bans'), [(0,)])
        pw = pwd.getpwnam(harness.GUARD_USER)
        os.chown(new, pw.pw_uid, pw.pw_gid)
        os.rename(new, g.db)
        line = g.wait_event('database_replaced', since, timeout=10)
        self.assertIn('how=replaced created=no', line.line)
        self.assertRegex(line.line, r' bans=[1-9]')
        # Written by the flush that follows the reopen: a moment later.
        harness.wait_until(lambda: db_rows(
            g.db, "SELECT count(*) FROM bans WHERE key = '192.0.2.86'")
            == [(1,)], 10, 'the ban in the new file')
        # Its policies are in force, the ban too, other clients are served.
        self.assertEqual(g.wait_event('policy_reloaded', since)['trigger'],
                         'database change')
        self.timed_session('192.0.2.86', expect='closed')
        self.timed_session('192.0.2.87')
        self.assertTrue(g.running())
        self.assertEqual(db_rows(g.db, "SELECT value FROM settings WHERE "
                                 "name = 'MaxErrors'"), [('7',)])
        self.assertEqual(db_rows(g.db, 'PRAGMA integrity_check'), [('ok',)])

    def test_unusable_database_at_start(self):
        """A database the daemon cannot use (written by a newer smtpguard)
        stops the start with daemon_start_failed; the file is untouched."""
        g = self.env.new_guard(self._testMethodName, start=False)
        db_rows(g.db, 'PRAGMA user_version = 99')
        db_rows(g.db, 'PRAGMA wal_checkpoint(TRUNCATE)')
        with open(g.db, 'rb') as f:
            before = f.read()
        argv = [harness.smtpguard_binary(), '-f', '-l', '-p',
                g.socket_spec, '-d', g.db, '-u', harness.GUARD_USER]
        self.assert_start_failed(argv, 'newer than this smtpguard',
                                 g.mark())
        with open(g.db, 'rb') as f:
            self.assertEqual(f.read(), before)

    def test_read_only_at_start(self):
        """The daemon's user cannot write the database: it starts on it
        read-only (its policies in force), keeps what it counts in memory,
        and switches to read-write by itself once permissions are fixed."""
        pw = harness.ensure_system_user('sgtest')
        g = self.env.new_guard(self._testMethodName, start=False,
                               args=['-u', 'sgtest'], owner='sgtest',
                               settings={'maxSMTPipConnects': 1})
        self.addCleanup(self._stop_guard, g)
        # Checkpointed, then read-only to its user: file and directory.
        db_rows(g.db, 'PRAGMA wal_checkpoint(TRUNCATE)')
        os.chown(g.db, 0, 0)
        os.chmod(g.db, 0o644)
        os.chmod(g.dir, 0o555)
        self.addCleanup(os.chmod, g.dir, 0o755)
        g.start()
        since = g.started_at
        line = g.wait_event('database_error', since)
        self.assertIn('read-only meanwhile', line.line)
        self.timed_session('192.0.2.84')
        self.timed_session('192.0.2.84', expect='closed')  # its policy
        os.chown(g.dir, pw.pw_uid, pw.pw_gid)
        os.chmod(g.dir, 0o755)
        os.chown(g.db, pw.pw_uid, pw.pw_gid)
        g.wait_event('database_recovered', since, timeout=30)
        self.assertEqual(db_rows(g.db, "SELECT count(*) FROM bans WHERE "
                                 "key = '192.0.2.84'"), [(1,)])

    def test_corrupt_at_start(self):
        """A damaged file at start is moved aside (never deleted), a new
        database is created, and mail flows."""
        g = self.env.new_guard(self._testMethodName, start=False)
        self.addCleanup(self._stop_guard, g)
        for suffix in ('-wal', '-shm'):
            if os.path.exists(g.db + suffix):
                os.unlink(g.db + suffix)
        with open(g.db, 'wb') as f:
            f.write(b'SQLite format 3\0' + os.urandom(8192))
        damaged = open(g.db, 'rb').read()
        g.start()
        line = g.wait_event('database_corrupt', g.started_at)
        saved = [n for n in os.listdir(g.dir) if '.corrupt-' in n
                 and not n.endswith(('-wal', '-shm'))]
        self.assertEqual(len(saved), 1, os.listdir(g.dir))
        self.assertIn(saved[0], line.line)
        with open(os.path.join(g.dir, saved[0]), 'rb') as f:
            self.assertEqual(f.read(), damaged)
        # A working database with the defaults; tuned without DNS here.
        since = g.mark()
        for name in ('DoSPF', 'DoFCrDNS'):
            subprocess.run([harness.ctl_binary(), '-d', g.db, 'policy', 'set',
                            name, '0'], check=True, capture_output=True)
        g.wait_event('policy_reloaded', since, timeout=5)
        self.timed_session('192.0.2.85')
        self.assertEqual(db_rows(g.db, 'PRAGMA integrity_check'), [('ok',)])

    # -- start-up faults

    def test_socket_directory_missing_and_stale_socket(self):
        """No socket directory: a clear error and exit 1, not a silent
        exit. A stale socket file from a killed daemon: replaced."""
        sockdir = os.path.join(self.env.root, 'nosuchdir')
        g = self.env.new_guard(self._testMethodName, start=False,
                               socket_spec=f'unix:{sockdir}/s.sock')
        argv = [harness.smtpguard_binary(), '-f', '-l', '-p',
                g.socket_spec, '-d', g.db, '-u', harness.GUARD_USER]
        self.assert_start_failed(
            argv, f'socket directory {sockdir} does not exist', g.mark())
        os.makedirs(sockdir)
        path = os.path.join(sockdir, 's.sock')
        import socket as pysocket
        s = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
        s.bind(path)                    # left behind, nobody listening
        s.close()
        self.addCleanup(self._stop_guard, g)
        g.start()
        self.assertTrue(g.running())
        # Now it is busy: a second daemon must not take it over.
        self.assert_start_failed(
            argv, f'socket {path} is in use', g.mark())
        self.assertTrue(g.running())

    def test_socket_symlink(self):
        """A symlink at the unix socket path is refused, whether it points
        at a regular file or at a socket elsewhere (libmilter would unlink
        it and bind: the check after the bind never saw it); the target is
        untouched. Another kind of file there is refused too."""
        import socket as pysocket
        sockdir = os.path.join(self.env.root, 'symsock')
        os.makedirs(sockdir)
        path = os.path.join(sockdir, 's.sock')
        g = self.env.new_guard(self._testMethodName, start=False,
                               socket_spec=f'unix:{path}')
        argv = [harness.smtpguard_binary(), '-f', '-l', '-p',
                g.socket_spec, '-d', g.db, '-u', harness.GUARD_USER]
        target = os.path.join(self.env.root, 'precious-sock-target')
        with open(target, 'w') as f:
            f.write('keep me\n')
        elsewhere = os.path.join(self.env.root, 'other.sock')
        s = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
        s.bind(elsewhere)
        s.close()
        for to in (target, elsewhere):
            os.symlink(to, path)
            self.assert_start_failed(
                argv, f'socket {path} is a symlink', g.mark())
            self.assertTrue(os.path.islink(path))
            os.unlink(path)
        with open(target) as f:
            self.assertEqual(f.read(), 'keep me\n')
        self.assertTrue(os.path.exists(elsewhere))
        with open(path, 'w') as f:
            f.write('not a socket\n')
        self.assert_start_failed(
            argv, f'socket {path} exists and is not a socket', g.mark())
        os.unlink(path)
        self.addCleanup(self._stop_guard, g)
        g.start()
        self.assertTrue(g.running())

    def test_privileges(self):
        """Never root after start: no -u as root, or -u root, is refused
        with a message; the daemon runs as its user; a pid file path that
        is a symlink is refused, its target untouched."""
        g = self.env.new_guard(self._testMethodName, start=False)
        base = [harness.smtpguard_binary(), '-f', '-l', '-p', g.socket_spec,
                '-d', g.db]
        for extra, msg in (([], 'refusing to run as root: give -u'),
                           (['-u', 'root'], '-u root: refusing to run as '
                            'root')):
            self.assert_start_failed(base + extra, msg, g.mark())
        target = os.path.join(self.env.root, 'precious')
        with open(target, 'w') as f:
            f.write('keep me\n')
        pidfile = os.path.join(g.dir, 'smtpguard.pid')
        os.symlink(target, pidfile)
        self.assert_start_failed(
            base + ['-u', harness.GUARD_USER, '-P', pidfile],
            f'pid file {pidfile}: ', g.mark())
        with open(target) as f:
            self.assertEqual(f.read(), 'keep me\n')
        os.unlink(pidfile)
        # The pid file is written as the daemon's user (who removes it at
        # exit): a directory only root may write is refused at start, not
        # left with a stale file.
        rootdir = os.path.join(self.env.root, 'rootonly')
        os.makedirs(rootdir, mode=0o755)
        rootpid = os.path.join(rootdir, 'smtpguard.pid')
        self.assert_start_failed(
            base + ['-u', harness.GUARD_USER, '-P', rootpid],
            f'pid file {rootpid}: Permission denied', g.mark())
        self.assertFalse(os.path.exists(rootpid))
        self.addCleanup(self._stop_guard, g)
        g.start()
        with open(f'/proc/{g.pid}/status') as f:
            uid = int(re.search(r'^Uid:\s+\d+\s+(\d+)', f.read(), re.M)
                      .group(1))
        self.assertEqual(uid, pwd.getpwnam(harness.GUARD_USER).pw_uid)
