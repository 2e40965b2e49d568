#!/usr/bin/env python3
# Repro of a pagerd bug: a client sending DEAD with its own token (after
# HELLO) deadlocks the worker that handles it (conn_teardown() waits for
# the users count the worker itself holds).  With --threads N, N such
# clients freeze pagerd for everybody.
# usage: pagerd --socket S --threads 2 & python3 pager-dead-self.py S 2
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
sock_path = sys.argv[1]
MAGIC = 0x50475231
def hdr(t, ln, seq=1): return struct.pack("<IHHII", MAGIC, t, 0, ln, seq)
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sock_path); return s
res = []
for i in range(int(sys.argv[2])):
    s = conn()
    uffd = libc.syscall(323, os.O_CLOEXEC | os.O_NONBLOCK)
    mem = os.open("/proc/self/mem", os.O_RDWR); pm = os.open("/proc/self/pagemap", os.O_RDONLY)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    tok = 0x1234 + i
    socket.send_fds(s, [hdr(1, 32) + struct.pack("<QII", tok, 4, 0)], [uffd, mem, pm, a.fileno()])
    print("hello reply", struct.unpack("<IHHIIi", s.recv(100)[:20])[-1])
    s.send(hdr(9, 32, 2) + struct.pack("<QII", tok, 4, 0))
    s.settimeout(3)
    try: print("dead reply", s.recv(100)[:24].hex())
    except socket.timeout: print("DEAD with own token: no reply after 3 s")
    res.append((s, a, b))
# is pagerd still serving anybody?
s = conn(); s.settimeout(5)
s.send(hdr(8, 32, 3) + struct.pack("<QQ", 0, 0))
try: print("stats from a new client:", len(s.recv(70000)), "bytes")
except socket.timeout: print("pagerd does not answer a new client any more (all workers stuck)")
