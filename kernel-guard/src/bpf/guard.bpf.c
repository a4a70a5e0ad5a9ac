// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Bulwark kernel guard: a BPF LSM that keeps the WORM store safe from root.
 *
 * Policy (maps filled by the loader, see src/loader/policy.c):
 *  - dirs:  protected store directories, their ancestors, the pin directory;
 *  - exes:  the gateway executable (dev+ino+SHA-256) and its libraries;
 *  - seals: sealed files and their retain-until on the guard clock
 *           (CLOCK_BOOTTIME, bpf_ktime_get_boot_ns: the wall clock can't move it).
 *
 * Rules:
 *  - inside a store only an authenticated gateway process creates, writes,
 *    renames, links or removes anything;
 *  - a sealed file is read-only for everybody until its retain-until;
 *  - once locked, only the guard daemon may use bpf(), nobody may remove the
 *    pins, unmount bpffs or the store, load modules or kexec, signal the
 *    daemon; nobody may ptrace an authenticated process, ever.
 *
 * Every denial goes to the `events` ring buffer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "guard.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1
#define FMODE_WRITE 0x2
#define O_TRUNC 01000
#define MAY_WRITE 0x2
#define PROT_EXEC 0x4
#define S_IFMT 00170000
#define S_IFBLK 0060000
#define ATTR_MODE (1 << 0)
#define ATTR_UID (1 << 1)
#define ATTR_GID (1 << 2)
#define ATTR_SIZE (1 << 3)
#define BPF_FS_MAGIC 0xcafe4a11
#define MAX_DEPTH 24
#define PTRACE_MODE_ATTACH 0x02
#define SCAN_MAX 16384

#include "guard_maps.bpf.h"
#include "guard_helpers.bpf.h"
#include "guard_files.bpf.h"
#include "guard_self.bpf.h"
#include "guard_exec.bpf.h"
