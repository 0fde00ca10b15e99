"""The sandbox's seccomp filter: a classic BPF program that refuses (EPERM) the system calls
that reach past a container (mounts, namespaces, tracing, keyrings, kernel modules, eBPF,
io_uring), and kills a process that calls in through another architecture's ABI. bubblewrap
loads it (`--seccomp FD`) after it has set the sandbox up."""

from __future__ import annotations

import errno
import os
import platform
import struct

# Names of the refused calls -> (x86_64 number, asm-generic number as aarch64 uses), from the
# kernel's uapi headers (unistd_64.h, asm-generic/unistd.h). None: the call does not exist there.
REFUSED: dict[str, tuple[int, int | None]] = {
    "ptrace": (101, 117),
    "syslog": (103, 116),
    "acct": (163, 89),
    "settimeofday": (164, 170),
    "mount": (165, 40),
    "umount2": (166, 39),
    "swapon": (167, 224),
    "swapoff": (168, 225),
    "reboot": (169, 142),
    "sethostname": (170, 161),
    "setdomainname": (171, 162),
    "iopl": (172, None),
    "ioperm": (173, None),
    "init_module": (175, 105),
    "delete_module": (176, 106),
    "quotactl": (179, 60),
    "lookup_dcookie": (212, 18),
    "clock_settime": (227, 112),
    "kexec_load": (246, 104),
    "add_key": (248, 217),
    "request_key": (249, 218),
    "keyctl": (250, 219),
    "unshare": (272, 97),
    "move_pages": (279, 239),
    "perf_event_open": (298, 241),
    "fanotify_init": (300, 262),
    "name_to_handle_at": (303, 264),
    "open_by_handle_at": (304, 265),
    "setns": (308, 268),
    "process_vm_readv": (310, 270),
    "process_vm_writev": (311, 271),
    "finit_module": (313, 273),
    "kexec_file_load": (320, 294),
    "bpf": (321, 280),
    "userfaultfd": (323, 282),
    "pivot_root": (155, 41),
    "chroot": (161, 51),
    "adjtimex": (159, 171),
    "vhangup": (153, 58),
    "io_uring_setup": (425, 425),
    "io_uring_enter": (426, 426),
    "io_uring_register": (427, 427),
    "open_tree": (428, 428),
    "move_mount": (429, 429),
    "fsopen": (430, 430),
    "fsconfig": (431, 431),
    "fsmount": (432, 432),
    "fspick": (433, 433),
    "pidfd_getfd": (438, 438),
    "mount_setattr": (442, 442),
}
ARCHES = {"x86_64": (0xC000003E, 0), "aarch64": (0xC00000B7, 1)}  # AUDIT_ARCH_*, column
X32_BIT = 0x40000000

# BPF opcodes (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000


def supported() -> bool:
    return platform.machine() in ARCHES


def program(machine: str | None = None) -> bytes:
    """The filter for this machine's architecture, as `struct sock_filter` records."""
    arch, column = ARCHES[machine or platform.machine()]
    numbers = sorted({n for pair in REFUSED.values() if (n := pair[column]) is not None})
    refuse = _ERRNO | errno.EPERM
    code: list[tuple[int, int, int, int]] = [
        (_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        (_JEQ_K, 1, 0, arch),
        (_RET_K, 0, 0, _KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
    ]
    if column == 0:
        code += [(_JGE_K, 0, 1, X32_BIT), (_RET_K, 0, 0, refuse)]
    for i, number in enumerate(numbers):
        # Jump to the refusal at the end: past the remaining tests and the ALLOW.
        code.append((_JEQ_K, len(numbers) - i, 0, number))
    code += [(_RET_K, 0, 0, _ALLOW), (_RET_K, 0, 0, refuse)]
    return b"".join(struct.pack("=HBBI", *op) for op in code)


def program_fd() -> int:
    """A file descriptor holding the program, positioned at its start, for `--seccomp FD`."""
    fd = os.memfd_create("kotae-seccomp", 0)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
