// exit(42), for 64-bit ARM in big-endian byte order (aarch64_be): a real machine, which QEMU can emulate,
// but for which no binfmt_misc handler is registered on most hosts.
    .global _start
_start:
    mov x0, #42     // exit status
    mov x8, #93     // the exit system call on aarch64
    svc #0
