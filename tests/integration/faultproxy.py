"""A DNS proxy on loopback, in threads, that forwards to the test nsd and
misbehaves on demand: the faults a resolver meets on the Internet, without
netem (this kernel has none).

Modes (attribute `mode`, changed at any time):
  pass            forward, answer as nsd does
  down            swallow every query (UDP and TCP): a dead server
  slow            forward, but hold the answer `delay` seconds
  servfail        answer SERVFAIL (ID and question copied)
  refused         answer REFUSED
  truncate        UDP answers come back with TC set and no records; TCP
                  passes, so a resolver must retry over TCP
  wrong_id        nsd's answer with the ID changed
  wrong_question  nsd's answer with another name in the question
  garbage         random bytes from the right address and port
"""

import os
import socket
import struct
import threading
import time


class FaultProxy:

    def __init__(self, upstream):
        host, port = upstream.rsplit(':', 1) if ':' in upstream \
            else (upstream, '53')
        self.upstream = (host, int(port))
        self.mode = 'pass'
        self.delay = 1.0
        self.counts = {}                # (transport, mode) -> queries
        self.lock = threading.Lock()
        for _ in range(50):             # one port free for both
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.udp.bind(('127.0.0.1', 0))
            self.port = self.udp.getsockname()[1]
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self.tcp.bind(('127.0.0.1', self.port))
                break
            except OSError:
                self.udp.close()
                self.tcp.close()
        self.tcp.listen(16)
        self.stopping = False
        self.threads = [threading.Thread(target=self._udp_loop, daemon=True),
                        threading.Thread(target=self._tcp_loop, daemon=True)]
        for t in self.threads:
            t.start()

    @property
    def server(self):
        return f'127.0.0.1:{self.port}'

    def count(self, transport, mode=None):
        with self.lock:
            return sum(n for (t, m), n in self.counts.items()
                       if t == transport and (mode is None or m == mode))

    def close(self):
        self.stopping = True
        for s in (self.udp, self.tcp):
            try:
                s.close()
            except OSError:
                pass

    # -- answers

    def _ask(self, query, tcp=False):
        if tcp:
            with socket.create_connection(self.upstream, 2) as s:
                s.sendall(struct.pack('>H', len(query)) + query)
                n = struct.unpack('>H', self._recv(s, 2))[0]
                return self._recv(s, n)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(query, self.upstream)
            return s.recv(65535)

    @staticmethod
    def _recv(s, n):
        data = b''
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise OSError('short read')
            data += chunk
        return data

    @staticmethod
    def _rcode(query, rcode):
        """A header-only answer with the query's ID and question."""
        qid, flags = struct.unpack('>HH', query[:4])
        flags = 0x8000 | (flags & 0x0100) | 0x0080 | rcode
        return struct.pack('>HHHHHH', qid, flags, 1, 0, 0, 0) + query[12:]

    def answer(self, query, tcp):
        mode = self.mode
        with self.lock:
            key = ('tcp' if tcp else 'udp', mode)
            self.counts[key] = self.counts.get(key, 0) + 1
        if mode == 'down':
            return None
        if mode == 'servfail':
            return self._rcode(query, 2)
        if mode == 'refused':
            return self._rcode(query, 5)
        if mode == 'garbage':
            return os.urandom(40)
        if mode == 'truncate' and not tcp:
            qid, flags = struct.unpack('>HH', query[:4])
            return struct.pack('>HHHHHH', qid, 0x8000 | 0x0200 | 0x0400
                               | (flags & 0x0100), 1, 0, 0, 0) + query[12:]
        reply = self._ask(query, tcp)
        if mode == 'slow':
            time.sleep(self.delay)
        if mode == 'wrong_id':
            reply = struct.pack('>H', (reply[0] << 8 | reply[1]) ^ 0x5555) \
                + reply[2:]
        if mode == 'wrong_question':
            # Change the first letter of the first label: same length.
            b = bytearray(reply)
            b[13] = ord('q') if b[13] != ord('q') else ord('z')
            reply = bytes(b)
        return reply

    # -- loops

    def _udp_loop(self):
        while not self.stopping:
            try:
                query, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=self._udp_one, args=(query, peer),
                             daemon=True).start()

    def _udp_one(self, query, peer):
        try:
            reply = self.answer(query, False)
            if reply is not None:
                self.udp.sendto(reply, peer)
        except OSError:
            pass

    def _tcp_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            threading.Thread(target=self._tcp_one, args=(conn,),
                             daemon=True).start()

    def _tcp_one(self, conn):
        with conn:
            try:
                conn.settimeout(5)
                n = struct.unpack('>H', self._recv(conn, 2))[0]
                reply = self.answer(self._recv(conn, n), True)
                if reply is None:
                    time.sleep(5)
                    return
                conn.sendall(struct.pack('>H', len(reply)) + reply)
            except OSError:
                pass
