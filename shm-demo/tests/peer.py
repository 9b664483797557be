#!/usr/bin/env python3
"""A consumer of shm-demo's System V ring, written from the layout in the book
(docs/src/shm.md, "The ring's layout"), not from the Rust code.

    cargo run -p shm-demo -- producer --api sysv --key 0x53000001 --wait spin
    python3 shm-demo/tests/peer.py 0x53000001

It attaches the segment by key (sysv_ipc: `pip install sysv_ipc`), checks the header,
writes its pid as the consumer's, and takes each message the spin way: wait until
head > seq, copy the slot out, check the frame, then tail = seq + 1. It prints the same
summary line as the demo's own consumer. The ring's integers are in the machine's byte
order (native; "<" below is right for x86 and ARM Linux); the frame's are little-endian.
"""

import os
import struct
import sys
import time
import zlib

try:
    import sysv_ipc
except ImportError:
    print("skipped: the Python package sysv_ipc is missing (pip install sysv_ipc)")
    sys.exit(77)

MAGIC = b"IPCDSHM1"
HEADER = 512
SPIN = 1  # the header's `wait`: 0 block (semaphores), 1 spin


def main():
    key = int(sys.argv[1], 0)
    segment = sysv_ipc.SharedMemory(key)  # shmget(key, 0, 0) and shmat
    size = segment.size
    if size < HEADER:
        sys.exit(f"segment of {size} bytes: smaller than the 512-byte header")
    header = segment.read(HEADER, 0)  # one copy, then checked
    if header[0:8] != MAGIC:
        sys.exit(f"no magic: {header[0:8]!r}")
    version, slot_size, slots, wait, producer, _consumer = struct.unpack_from("<IIIIii", header, 8)
    (count,) = struct.unpack_from("<Q", header, 32)
    if version != 1 or wait != SPIN or slots == 0 or slot_size < 16:
        sys.exit(f"version {version}, wait {wait}, {slots} slots of {slot_size}: not this peer's ring")
    if HEADER + slots * slot_size > size:
        sys.exit("the header's shape is larger than the segment")
    segment.write(struct.pack("<i", os.getpid()), 28)  # the consumer's pid
    ok = corrupt = out_of_order = 0
    total = 0
    deadline = time.monotonic() + 30
    for seq in range(count):
        while struct.unpack("<Q", segment.read(8, 64))[0] <= seq:  # head
            if time.monotonic() > deadline:
                sys.exit("the producer stopped")
        at = HEADER + (seq % slots) * slot_size
        (length,) = struct.unpack("<I", segment.read(4, at))
        if length > slot_size - 8 or length < 16:
            sys.exit(f"slot {seq % slots} claims {length} bytes")
        frame = segment.read(length, at + 8)
        got_seq, plen = struct.unpack_from("<QI", frame)
        (crc,) = struct.unpack_from("<I", frame, 12 + plen) if 16 + plen <= length else (None,)
        letters = bytes((97 + (seq + i) % 26) for i in range(plen))
        if crc != zlib.crc32(frame[: 12 + plen]) or frame[12 : 12 + plen] != letters:
            corrupt += 1
        elif got_seq != seq:
            out_of_order += 1
        else:
            ok += 1
            total += plen
        segment.write(struct.pack("<Q", seq + 1), 128)  # tail: the slot is free
    segment.detach()  # shmdt
    print(
        f"summary: received={count} ok={ok} corrupt={corrupt} out_of_order={out_of_order} "
        f"missing=0 bytes={total}"
    )


main()
