#!/usr/bin/env python3
# Seed corpora of the libFuzzer harnesses (committed under corpus/; run
# again only when the protocols change): python3 mkcorpus.py DIR
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")

# ---- pagerd client protocol (daemon/proto.h) ----
MAGIC = 0x50475231
HELLO, MAP, UNMAP, SYNC, EVICT, PREFETCH, STATS, STATS_TEXT, DEAD, BYE = range(1, 11)
SHARED, TEMPORARY = 0x1, 0x2
REATTACH = 0x1
TOKEN = 0x1122334455667788
A = 0x7f0000000000


def hdr(t, ln, flags=0, seq=1):
    return struct.pack("<IHHII", MAGIC, t, flags, ln, seq)


def hello(token=TOKEN, t=HELLO):
    return hdr(t, 32) + struct.pack("<QII", token, 4, 0)


def mapreq(addr, ln, flags=0, mflags=0):
    return hdr(MAP, 40) + struct.pack("<QQII", addr, ln, flags, mflags)


def rng(t, addr, ln, flags=0):
    return hdr(t, 32, flags) + struct.pack("<QQ", addr, ln)


def rec(payload, nfds=0, fdsel=0, fix=False):
    spec = nfds | (8 if fix else 0)
    return bytes([spec]) + struct.pack("<H", len(payload)) + bytes([fdsel]) + payload


def pager_seeds():
    h = rec(hello(), 4)
    m = rec(mapreq(A, 0x10000), 1)
    yield "full-session", h + m + rec(rng(SYNC, A, 0x10000)) + rec(rng(EVICT, A + 0x1000, 0x2000)) + \
        rec(rng(PREFETCH, A, 0x4000)) + rec(rng(STATS, A, 0)) + rec(rng(STATS, 0, 0)) + \
        rec(rng(STATS_TEXT, 0, 0, 1)) + rec(rng(UNMAP, A, 0)) + rec(hdr(BYE, 16))
    yield "shared-map", h + rec(mapreq(A, 0x8000, SHARED), 2) + rec(rng(SYNC, A, 0x8000))
    yield "reattach", h + rec(mapreq(A, 0x8000, TEMPORARY, REATTACH), 1) + rec(rng(UNMAP, A, 0))
    yield "overlap", h + m + rec(mapreq(A + 0x8000, 0x10000), 1) + rec(mapreq(A - 0x1000, 0x2000), 1)
    yield "edges", h + m + rec(rng(SYNC, A + 0xf000, 0x1000)) + rec(rng(SYNC, A + 0xf000, 0x1001)) + \
        rec(rng(SYNC, A + 0x10000, 0)) + rec(rng(EVICT, A, 2**64 - 0x1000)) + \
        rec(mapreq(2**57 - 0x1000, 0x1000), 1) + rec(mapreq(2**64 - 0x1000, 0x2000), 1)
    yield "bad-fds", rec(hello(), 3) + rec(hello(), 4, 0x80 | 0x1b) + h + rec(mapreq(A, 0x1000), 2) + \
        rec(mapreq(A, 0x1000), 1, 0x80 | 0x1) + rec(rng(SYNC, A, 0x1000), 1)
    yield "no-hello", m + rec(rng(SYNC, A, 0x1000)) + rec(hello(t=DEAD))
    yield "dead-other", h + m + rec(hello(TOKEN + 1, DEAD))
    # dead-self (own token) deadlocks pagerd: kept in repro/pager-dead-self
    if os.environ.get("FUZZ_KNOWN_BUGS"):
        yield "dead-self", h + m + rec(hello(TOKEN, DEAD)) + rec(rng(SYNC, A, 0x1000))
    yield "short", rec(hdr(HELLO, 16)) + rec(hdr(BYE, 20) + b"\0" * 4) + rec(b"\x31\x52\x47\x50")


# ---- dtrack netlink answers (tools/nl.c, parse.c, client.c) ----
NLMSG_ERROR, NLMSG_DONE = 2, 3
GENL_ID_CTRL = 16
FAM = 0x20
F_MULTI, F_CAPPED, F_ACK_TLVS = 0x2, 0x100, 0x200


def nla(t, data):
    ln = 4 + len(data)
    return struct.pack("<HH", ln, t) + data + b"\0" * ((4 - ln % 4) % 4)


def u32(t, v): return nla(t, struct.pack("<I", v))
def u64(t, v): return nla(t, struct.pack("<Q", v))
def strz(t, s): return nla(t, s.encode() + b"\0")


def nlmsg(typ, payload, flags=0, seq=1):
    return struct.pack("<IHHII", 16 + len(payload), typ, flags, seq, 0) + payload


def genl(cmd, attrs, typ=FAM, flags=0, seq=1):
    return nlmsg(typ, bytes([cmd, 1, 0, 0]) + attrs, flags, seq)


def ack(err=0, seq=1, ext=b""):
    req = struct.pack("<IHHII", 20, FAM, 5, seq, 0)
    return nlmsg(NLMSG_ERROR, struct.pack("<i", err) + req + ext,
                 F_CAPPED | (F_ACK_TLVS if ext else 0), seq)


def done(err=0, seq=1):
    return nlmsg(NLMSG_DONE, struct.pack("<i", err), F_MULTI, seq)


def chunks(op, *datagrams):
    # [op:1] then per datagram [len:2 LE][bytes]
    b = bytes([op])
    for d in datagrams:
        b += struct.pack("<H", len(d)) + d
    return b


def dtrack_seeds():
    ver = genl(1, strz(2, "0.2.0") + u32(3, 1) + u32(4, 0x1e) + u32(18, 4096) +
               u64(19, 1 << 20) + u32(20, 2) + u64(21, 512))
    yield "version", chunks(0, ver + ack())
    yield "version-err", chunks(0, ack(-1, ext=strz(1, "Operation not permitted") + u32(2, 20)))
    yield "create", chunks(1, genl(2, u32(5, 7)) + ack())
    run = lambda a, n: nla(15 | 0x8000, u64(2, a) + u64(3, n))
    c1 = genl(4, u32(5, 7) + u64(12, 3) + u32(13, 1) + u64(14, 5) + run(0x1000, 2) + run(0x3000, 1),
              flags=F_MULTI)
    c2 = genl(4, u32(5, 7) + u64(12, 3) + run(0x4000, 2) + run(0x2000, 1), flags=F_MULTI)
    yield "collect", chunks(2, c1, c2 + done())
    yield "collect-err", chunks(2, c1 + done(-22))
    stats = nla(16, u32(2, 1) + u64(3, 4) + u64(4, 3) + u64(5, 2) + u64(6, 64) + u64(7, 5) +
                u64(8, 1000) + u64(9, 7) + u64(10, 0) + u64(11, 0) + u64(12, 4096) + u32(13, 512))
    tr = genl(5, u32(5, 7) + u32(6, 42) + u64(7, 0x10000) + u64(8, 0x40000) + u32(9, 2) +
              u32(10, 1) + u64(12, 4) + stats)
    yield "tracker", chunks(3, tr + ack())
    yield "list", chunks(4, nlmsg(FAM, tr[16:], F_MULTI), nlmsg(FAM, tr[16:], F_MULTI) + done())
    grp = nla(7 | 0x8000, nla(1 | 0x8000, u32(2, 9) + strz(1, "events")))
    fam = genl(1, strz(2, "dtrack") + nla(1, struct.pack("<H", FAM)) + u32(3, 1) + u32(4, 0) +
               u32(5, 21) + grp, typ=GENL_ID_CTRL)
    yield "resolve", chunks(5, fam + ack())
    yield "event", chunks(6, genl(6, u32(17, 1) + u32(5, 7) + u32(6, 42) + u64(12, 3) +
                                  u64(7, 0x10000) + u64(8, 0x1000) + u32(9, 1)))
    yield "stale", chunks(2, genl(4, u32(5, 1), seq=0, flags=F_MULTI) + done(seq=0), c1 + done())


for name, gen in (("pager-proto", pager_seeds), ("dtrack-reply", dtrack_seeds)):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    for seed_name, data in gen():
        with open(os.path.join(d, seed_name), "wb") as f:
            f.write(data)
