/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The guard's maps: policy, marks, seals, events, scan scratch.
 * Part of guard.bpf.c (one BPF object, split for reading). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct guard_config);
} guard_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct fkey);
	__type(value, u32);
} dirs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct fkey);
	__type(value, struct exe_policy);
} exes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct fkey);
	__type(value, struct hash_cache);
} hcache SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct mark);
} marks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct fkey);
	__type(value, u64);
} seals SEC(".maps");

/* Block devices whose raw writes would bypass the file rules
 * (the store's partition and its whole disk), and store filesystems. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u32);
} bdevs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Scratch for the argv/env scan at exec. A sleepable program may sleep while
 * copying from user memory and another exec on this CPU could then reuse the
 * buffer: `busy` makes that second exec fail closed instead. */
struct scan_buf {
	u32 busy;
	u32 pad;
	char buf[SCAN_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct scan_buf);
} scan SEC(".maps");

