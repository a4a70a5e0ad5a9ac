// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Block change tracker: one dirty bit per 4 KiB block of each tracked disk.
 *
 * Every bio that changes data (write, discard, secure erase, write zeroes)
 * sets the bits of the blocks it touches in the *active* bank of its device.
 * The loader swaps banks to reset without losing writes that race the reset
 * (see CBT-FORMAT.md). The bitmap is an mmap-able array of u64 words:
 *   word index = (slot * 2 + bank) * words_per_bank + block / 64
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "guard.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define REQ_OP_BITS 8
#define REQ_OP_MASK ((1 << REQ_OP_BITS) - 1)

/* Set by the loader before load: capacity of one bank, in words. */
const volatile __u64 words_per_bank = 1;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CBT_SLOTS);
	__type(key, u32);   /* kernel dev of the whole disk */
	__type(value, u32); /* slot */
} cbt_devs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CBT_SLOTS);
	__type(key, u32);
	__type(value, struct cbt_state);
} cbt_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* resized by the loader */
	__type(key, u32);
	__type(value, u64);
} cbt_bits SEC(".maps");

/* Updating a map-in-map waits for running BPF programs (synchronize_rcu):
 * the loader pokes this after a bank swap so that no program still sets
 * bits in the old bank when it is read. */
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
	       __type(key, u32); __type(value, u32); };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, u32);
	__array(values, struct inner);
} cbt_sync SEC(".maps");

struct mark_ctx {
	u64 cur;
	u64 last;
	u64 base; /* first word of the bank */
};

static long mark_block(u64 i, void *vctx)
{
	struct mark_ctx *c = vctx;
	u64 cur = c->cur;
	u32 idx;
	u64 *w;

	if (cur > c->last)
		return 1;
	idx = c->base + cur / 64;
	w = bpf_map_lookup_elem(&cbt_bits, &idx);
	if (!w)
		return 1;
	if ((cur & 63) == 0 && c->last - cur >= 63) {
		__sync_fetch_and_or(w, ~0ULL); /* a whole word at once */
		c->cur = cur + 64;
	} else {
		__sync_fetch_and_or(w, 1ULL << (cur & 63));
		c->cur = cur + 1;
	}
	return 0;
}

SEC("tp_btf/block_bio_queue")
int BPF_PROG(cbt_bio_queue, struct bio *bio)
{
	u32 op = bio->bi_opf & REQ_OP_MASK;
	u32 size = bio->bi_iter.bi_size;
	u64 sector = bio->bi_iter.bi_sector;
	struct cbt_state *st;
	struct mark_ctx c;
	u32 dev, *slot;

	if (op != REQ_OP_WRITE && op != REQ_OP_DISCARD &&
	    op != REQ_OP_SECURE_ERASE && op != REQ_OP_WRITE_ZEROES)
		return 0;
	if (!size)
		return 0; /* an empty flush changes nothing */
	/* Partitions are remapped to the whole disk before this tracepoint. */
	dev = BPF_CORE_READ(bio, bi_bdev, bd_dev);
	slot = bpf_map_lookup_elem(&cbt_devs, &dev);
	if (!slot)
		return 0;
	st = bpf_map_lookup_elem(&cbt_state, slot);
	if (!st || !st->enabled || !st->nblocks)
		return 0;

	c.cur = sector >> 3;
	c.last = (sector * 512 + size - 1) >> 12;
	if (c.last >= st->nblocks)
		c.last = st->nblocks - 1;
	if (c.cur > c.last)
		return 0;
	c.base = ((u64)*slot * 2 + (st->active & 1)) * words_per_bank;
	bpf_loop(c.last - c.cur + 1, mark_block, &c, 0);
	return 0;
}
