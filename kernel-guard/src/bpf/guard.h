/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Types shared by the BPF programs and the loader. Everything here is
 * a map key, a map value or a ring-buffer record, so layout is ABI:
 * fixed-width fields, explicit padding, no pointers.
 */
#ifndef BULWARK_GUARD_H
#define BULWARK_GUARD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
typedef __s64 s64;
#endif

/* A file or directory, as the kernel names it: (s_dev, i_ino).
 * dev uses the kernel encoding (major << 20 | minor), not st_dev. */
struct fkey {
	u32 dev;
	u32 pad;
	u64 ino;
};

/* Kinds of directory in the `dirs` map. */
enum dir_kind {
	DIR_STORE = 1,  /* a protected store: only the gateway writes inside */
	DIR_ANCHOR = 2, /* an ancestor of a store: nobody renames/removes it */
	DIR_GUARD = 3,  /* the guard's pin directory: only the guard daemon */
};

/* Kinds of executable file in the `exes` map. */
enum exe_kind {
	EXE_GATEWAY = 1, /* the gateway's single executable: hash-checked at exec */
	EXE_LIB = 2,     /* a library the gateway may map executable */
};

struct exe_policy {
	u8 sha256[32];
	u32 kind;
	u32 pad;
};

/* Cached IMA hash of an executable, valid while the inode's stamps match. */
struct hash_cache {
	u8 sha256[32];
	s64 mtime_s;
	s64 mtime_ns;
	s64 ctime_s;
	s64 ctime_ns;
	s64 size;
};

enum task_class {
	CLS_NONE = 0,
	CLS_GATEWAY = 1,
};

/* The mark an authenticated exec puts on a process (keyed by tgid). */
struct mark {
	u64 start_time;     /* task->start_time: defeats pid reuse */
	u64 start_boottime; /* same, in the clock /proc/PID/stat uses */
	u32 cls;
	u32 pad;
};

struct guard_config {
	u32 locked;      /* self-protection on; set once, never cleared */
	u32 guard_tgid;  /* the guard daemon: the only process that may use bpf() */
	u64 guard_start; /* its start_time, recorded on its first bpf() call */
};

/* What a denial (or an audit record) was about. Keep in sync with op_names
 * in the loader. */
enum guard_op {
	GOP_OPEN_WRITE = 1,
	GOP_WRITE,
	GOP_CREATE,
	GOP_MKDIR,
	GOP_MKNOD,
	GOP_SYMLINK,
	GOP_UNLINK,
	GOP_RMDIR,
	GOP_RENAME_FROM,
	GOP_RENAME_TO,
	GOP_LINK,
	GOP_TRUNCATE,
	GOP_CHMOD,
	GOP_CHOWN,
	GOP_SETATTR,
	GOP_SETXATTR,
	GOP_REMOVEXATTR,
	GOP_IOCTL,
	GOP_BDEV_WRITE,
	GOP_BPF,
	GOP_PTRACE,
	GOP_KILL,
	GOP_MOUNT,
	GOP_UMOUNT,
	GOP_MODULE,
	GOP_LOCKDOWN,
	GOP_EXEC,    /* audit: gateway executable started but not authenticated */
	GOP_MAP_EXEC,/* audit: authenticated process mapped an unknown library */
	GOP_MAX,
};

enum guard_verdict {
	V_DENY = 1,
	V_UNAUTHENTICATED = 2,
};

/* Why an exec of the gateway executable was not authenticated. */
enum exec_reason {
	R_NONE = 0,
	R_HASH_MISMATCH,
	R_HASH_ERROR,
	R_TRACED,
	R_INJECT_ENV,
	R_INJECT_ARG,
	R_ARGS_TOO_BIG,
	R_SCAN_BUSY,
	R_UNKNOWN_LIB,
};

#define EV_COMPS 8
#define EV_COMP_LEN 48

struct event {
	u64 ts_boot_ns; /* bpf_ktime_get_boot_ns(): the guard clock */
	u32 pid;
	u32 tgid;
	u32 uid;
	u32 op;
	u32 verdict;
	u32 reason;  /* enum exec_reason, or the bpf cmd / signal / ioctl */
	u32 dev;     /* kernel dev of the object (for the mount point) */
	u32 ncomp;   /* path components filled, leaf first */
	u64 ino;
	u64 extra;
	char comm[16];
	char comp[EV_COMPS][EV_COMP_LEN];
};

/* ---- block change tracker ---- */

#define CBT_SLOTS 4

struct cbt_state {
	u32 active;   /* which bank BPF sets bits in (0 or 1) */
	u32 enabled;
	u64 nblocks;  /* 4 KiB blocks on the device */
	u64 generation;
	u32 dev;      /* kernel dev being tracked */
	u32 pad;
};

#endif
