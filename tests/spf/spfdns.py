"""A small DNS server on 127.0.0.1 for the SPF tests (rfc7208.py,
spfdiff.py): UDP, and TCP for answers over 512 bytes, serving the zone
data in Zone.data.

Zone.data is {name: [(type, value), 'TIMEOUT' or 'SERVFAIL']}, names in
lower case without a trailing dot; value is an address (A, AAAA), a name
(PTR, CNAME, NS), (preference, name) (MX) or a list of strings (TXT,
SPF). A name that lists TIMEOUT before any record of the type asked is
never answered; SERVFAIL answers rcode 2; a name not in the zone is
NXDOMAIN (a TIMEOUT under "error.", the RFC 7208 suite's convention). A
CNAME is answered with the records of its target, one level deep (the
suite's convention too).

Zone.answer() is also what spfdiff.py gives pyspf directly, so both
evaluators see the same answers.
"""

import socket
import socketserver
import struct
import sys
import threading

TYPES = {'A': 1, 'NS': 2, 'CNAME': 5, 'PTR': 12, 'MX': 15, 'TXT': 16,
         'AAAA': 28, 'SPF': 99}


def encode_name(name):
    out = b''
    for label in name.rstrip('.').split('.'):
        if label:
            b = label.encode('utf-8', 'surrogateescape')[:63]
            out += bytes([len(b)]) + b
    return out + b'\0'


def rdata(t, v):
    if t == 'A':
        return socket.inet_aton(v)
    if t == 'AAAA':
        return socket.inet_pton(socket.AF_INET6, v)
    if t == 'MX':
        return struct.pack('!H', int(v[0])) + encode_name(str(v[1]))
    if t in ('PTR', 'CNAME', 'NS'):
        return encode_name(str(v))
    out = b''
    for s in v:                 # TXT/SPF: character-strings of <= 255
        b = s.encode('utf-8', 'surrogateescape') if isinstance(s, str) \
            else bytes(s)
        for i in range(0, max(len(b), 1), 255):
            chunk = b[i:i + 255]
            out += bytes([len(chunk)]) + chunk
    return out


class Zone:
    """The zone data being served; swapped per scenario."""
    data = {}

    @classmethod
    def answer(cls, name, qtype, depth=0):
        """(rcode, [(owner, type, value)]) or None for a timeout."""
        key = name.lower().rstrip('.')
        if key not in cls.data:
            if key.startswith('error.'):
                return None
            return 3, []
        timeout, rrs = True, []
        for rec in cls.data[key]:
            if rec == 'SERVFAIL':
                return 2, []
            if rec == 'TIMEOUT':
                if timeout:
                    return None
                break
            t, v = rec
            if TYPES.get(t) == qtype:
                timeout = False
                rrs.append((name, t, v))
            elif t == 'CNAME' and depth == 0:
                rrs.append((name, t, v))
                sub = cls.answer(str(v), qtype, 1)
                if sub is None:
                    return None
                if sub[0] == 2:
                    return sub
                rrs += sub[1]
        return 0, rrs


def respond(query):
    """The reply bytes to a query, or None (no answer)."""
    if len(query) < 17:
        return None
    qid, flags, qd = struct.unpack('!HHH', query[:6])
    pos, labels = 12, []
    while pos < len(query) and query[pos] != 0:
        n = query[pos]
        labels.append(query[pos + 1:pos + 1 + n].decode('utf-8',
                                                        'surrogateescape'))
        pos += 1 + n
    question = query[12:pos + 5]
    qtype = struct.unpack('!H', query[pos + 1:pos + 3])[0]
    got = Zone.answer('.'.join(labels), qtype)
    if got is None:
        return None
    rcode, rrs = got
    body, n = b'', 0
    for owner, t, v in rrs:
        try:
            rd = rdata(t, v)
        except (OSError, ValueError, TypeError):
            continue
        n += 1
        body += (encode_name(owner) + struct.pack('!HHIH', TYPES[t], 1, 300,
                                                  len(rd)) + rd)
    header = struct.pack('!HHHHHH', qid, 0x8400 | (flags & 0x0100) | rcode,
                         1, n, 0, 0)
    return header + question + body


class UDPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        reply = respond(data)
        if reply is None:
            return
        if len(reply) > 512:    # truncated: the client asks over TCP
            head = bytearray(reply[:12])
            head[2] |= 0x02
            head[6:12] = bytes(6)
            reply = bytes(head) + data[12:]
        sock.sendto(reply, self.client_address)


class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        n = self.request.recv(2)
        if len(n) < 2:
            return
        want = struct.unpack('!H', n)[0]
        data = b''
        while len(data) < want:
            chunk = self.request.recv(want - len(data))
            if not chunk:
                return
            data += chunk
        reply = respond(data)
        if reply is not None:
            self.request.sendall(struct.pack('!H', len(reply)) + reply)


class ThreadedUDP(socketserver.ThreadingMixIn, socketserver.UDPServer):
    daemon_threads = True


class ThreadedTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_servers(threaded_udp=True, who='spfdns'):
    """Serve Zone.data on 127.0.0.1, UDP and TCP on one port; the port.
    threaded_udp False: one thread answers UDP queries in turn (cheaper
    per query when no zone entry makes the server wait)."""
    udp_class = ThreadedUDP if threaded_udp else socketserver.UDPServer
    # One port for both: the kernel's free UDP port may be a TCP port in
    # use (a client's, after the load tests), so try again then.
    for _ in range(50):
        udp = udp_class(('127.0.0.1', 0), UDPHandler)
        port = udp.server_address[1]
        try:
            tcp = ThreadedTCP(('127.0.0.1', port), TCPHandler)
            break
        except OSError:
            udp.server_close()
    else:
        sys.exit(f'{who}: no port free for both UDP and TCP')
    for s in (udp, tcp):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    return port
