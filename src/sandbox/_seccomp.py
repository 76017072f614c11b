"""The process backend's seccomp filter: no System V shared memory segments or message queues.

A bubblewrap sandbox has an IPC namespace of its own, and the kernel sizes a new one's limits generously
(`shmall` is practically unlimited, `msgmni` x `msgmnb` is 500 MB). What a segment or a queue holds is host
memory that no limit of the sandbox counts: not RLIMIT_AS (a segment need not stay attached), and there is no
cgroup here. Code could hold gigabytes that way for as long as its IPC namespace lives, which for a run's
resident sandbox is the whole run: the same hole as an unsized /tmp. So `shmget` and `msgget` (and, for
32-bit code on x86_64, the `ipc` multiplexer) fail with EPERM. POSIX shared memory lives in the sandbox's
/dev/shm, a tmpfs of `sandbox_tmpfs_mb`; POSIX message queues are bounded by RLIMIT_MSGQUEUE. Docker needs
none of this: its memory cgroup counts System V memory against the container's limit.

Architectures the filter does not know pass unfiltered (it is applied on all of them, and must not break
those).
"""

from __future__ import annotations

import errno
import os
import struct

_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_I386 = 0x40000003
_AUDIT_ARCH_AARCH64 = 0xC00000B7
_AUDIT_ARCH_ARM = 0x40000028
_X32_BIT = 0x40000000
_BLOCKED: dict[int, tuple[int, ...]] = {
    # shmget, msgget; and the same through the x32 ABI.
    _AUDIT_ARCH_X86_64: (29, 68, _X32_BIT | 29, _X32_BIT | 68),
    # ipc (every System V IPC call of 32-bit code goes through it, or through these since Linux 5.1).
    _AUDIT_ARCH_I386: (117, 395, 399),
    _AUDIT_ARCH_AARCH64: (194, 186),
    _AUDIT_ARCH_ARM: (307, 303),
}
# Classic BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
# Offsets in struct seccomp_data.
_NR = 0
_ARCH = 4


def _program() -> bytes:
    """The filter as an array of struct sock_filter, which is what `bwrap --seccomp FD` reads."""
    size = 1 + sum(len(numbers) + 3 for numbers in _BLOCKED.values()) + 2
    deny = size - 1
    code: list[tuple[int, int, int, int]] = [(_LD_W_ABS, 0, 0, _ARCH)]
    for arch, numbers in _BLOCKED.items():
        # Not this architecture: on to the next block (past its load, its checks and its allow).
        code.append((_JEQ_K, 0, len(numbers) + 2, arch))
        code.append((_LD_W_ABS, 0, 0, _NR))
        for number in numbers:
            at = len(code)
            code.append((_JEQ_K, deny - at - 1, 0, number))
        code.append((_RET_K, 0, 0, _RET_ALLOW))
    code.append((_RET_K, 0, 0, _RET_ALLOW))
    code.append((_RET_K, 0, 0, _RET_ERRNO | errno.EPERM))
    assert len(code) == size
    return b"".join(struct.pack("=HBBI", *instruction) for instruction in code)


PROGRAM = _program()


def filter_fd() -> int:
    """A new descriptor to read the filter from (each bubblewrap reads its own to the end). The caller passes it
    to the child and closes it."""
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, PROGRAM)
    finally:
        os.close(write_end)
    return read_end
