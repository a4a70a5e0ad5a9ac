/* Block change tracker control: start, dump (optionally swap-and-dump),
 * reset. File format: CBT-FORMAT.md. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cbt.skel.h"
#include "common.h"
#include "sha256.h"

#define CBT_BLOCK 4096

/* Load and attach the tracker; sizes the bitmap for --cbt-max-gib. */
int cbt_setup(struct guard *g)
{
	g->words_per_bank = (g->cbt_max_gib << 30) / CBT_BLOCK / 64;
	g->cbt = cbt_bpf__open();
	if (!g->cbt)
		die("cannot open the change-tracker BPF object (%s)", strerror(errno));
	g->cbt->rodata->words_per_bank = g->words_per_bank;
	uint32_t entries = CBT_SLOTS * 2 * g->words_per_bank;
	bpf_map__set_max_entries(g->cbt->maps.cbt_bits, entries);
	if (cbt_bpf__load(g->cbt))
		die("cannot load the change tracker (%s)", strerror(errno));
	g->bits_len = (size_t)entries * 8;
	g->bits = mmap(NULL, g->bits_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(g->cbt->maps.cbt_bits), 0);
	if (g->bits == MAP_FAILED)
		die("cannot map the change bitmap (%s)", strerror(errno));
	/* cbt_sync needs one inner map so updates to it trigger an RCU wait */
	int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cbt_sync_in", 4, 4, 1, NULL);
	uint32_t z = 0;
	if (inner < 0 || bpf_map__update_elem(g->cbt->maps.cbt_sync, &z, 4, &inner, 4, BPF_ANY))
		die("cannot set up the change tracker's sync map (%s)", strerror(errno));
	close(inner);
	struct bpf_link *l = bpf_program__attach(g->cbt->progs.cbt_bio_queue);
	if (!l)
		die("cannot attach the change tracker to block_bio_queue (%s)", strerror(errno));
	g->links[g->nlinks] = l;
	g->link_names[g->nlinks++] = "cbt_bio_queue";
	return 0;
}

/* Accepts /dev/NAME, NAME or MAJ:MIN; insists on a whole disk. */
static int resolve_dev(const char *dev, unsigned *maj, unsigned *min, uint64_t *size,
		       char *err, size_t errn)
{
	struct stat st;
	char p[PATH_MAX], buf[64];

	if (sscanf(dev, "%u:%u", maj, min) != 2) {
		if (strchr(dev, '/'))
			snprintf(p, sizeof(p), "%s", dev);
		else
			snprintf(p, sizeof(p), "/dev/%s", dev);
		if (stat(p, &st) || !S_ISBLK(st.st_mode)) {
			snprintf(err, errn, "--dev %s: not a block device", dev);
			return -1;
		}
		*maj = major(st.st_rdev);
		*min = minor(st.st_rdev);
	}
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/partition", *maj, *min);
	if (!access(p, F_OK)) {
		snprintf(err, errn, "--dev %s is a partition: track its whole disk (the block "
			 "layer remaps partitions before the tracker sees the write)", dev);
		return -1;
	}
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/size", *maj, *min);
	FILE *f = fopen(p, "r");
	if (!f || !fgets(buf, sizeof(buf), f)) {
		if (f)
			fclose(f);
		snprintf(err, errn, "--dev %s: cannot read its size from %s", dev, p);
		return -1;
	}
	fclose(f);
	*size = strtoull(buf, NULL, 10) * 512;
	return 0;
}

static struct cbt_slot *find_slot(struct guard *g, const char *dev, char *err, size_t errn)
{
	unsigned maj, min;
	uint64_t size;

	if (resolve_dev(dev, &maj, &min, &size, err, errn))
		return NULL;
	for (int i = 0; i < CBT_SLOTS; i++)
		if (g->slots[i].used && g->slots[i].major == maj && g->slots[i].minor == min)
			return &g->slots[i];
	snprintf(err, errn, "--dev %s is not tracked: run `bulwark-guard cbt start --dev %s` first",
		 dev, dev);
	return NULL;
}

static uint64_t *bank(struct guard *g, int slot, int b)
{
	return g->bits + ((uint64_t)slot * 2 + b) * g->words_per_bank;
}

static int write_state(struct guard *g, int slot, struct cbt_state *st)
{
	uint32_t k = slot;
	return bpf_map__update_elem(g->cbt->maps.cbt_state, &k, 4, st, sizeof(*st), BPF_ANY);
}

static int read_state(struct guard *g, int slot, struct cbt_state *st)
{
	uint32_t k = slot;
	return bpf_map__lookup_elem(g->cbt->maps.cbt_state, &k, 4, st, sizeof(*st), 0);
}

/* Wait until no tracker program can still be running with the old bank. */
static void rcu_wait(struct guard *g)
{
	int inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, "cbt_sync_in", 4, 4, 1, NULL);
	uint32_t z = 0;
	if (inner >= 0) {
		bpf_map__update_elem(g->cbt->maps.cbt_sync, &z, 4, &inner, 4, BPF_ANY);
		close(inner);
	} else {
		usleep(20000);
	}
}

int cbt_start(struct guard *g, const char *dev, char *err, size_t errn, struct cbt_slot **out)
{
	unsigned maj, min;
	uint64_t size, gen = 0;
	int slot = -1;

	if (resolve_dev(dev, &maj, &min, &size, err, errn))
		return -1;
	uint64_t nblocks = (size + CBT_BLOCK - 1) / CBT_BLOCK;
	if (nblocks > g->words_per_bank * 64) {
		snprintf(err, errn, "--dev %s has %llu GiB, more than the tracker's capacity of %llu "
			 "GiB: restart bulwark-guard with a larger --cbt-max-gib", dev,
			 (unsigned long long)(size >> 30), (unsigned long long)g->cbt_max_gib);
		return -1;
	}
	for (int i = 0; i < CBT_SLOTS; i++)
		if (g->slots[i].used && g->slots[i].major == maj && g->slots[i].minor == min)
			slot = i;
	for (int i = 0; slot < 0 && i < CBT_SLOTS; i++)
		if (!g->slots[i].used)
			slot = i;
	if (slot < 0) {
		snprintf(err, errn, "already tracking %d devices, the most the tracker holds", CBT_SLOTS);
		return -1;
	}
	while (!gen)
		if (getrandom(&gen, sizeof(gen), 0) != sizeof(gen))
			gen = 0;

	/* Stop, clear both banks, then start with a new generation: a reader
	 * holding the old generation knows its bitmap no longer continues. */
	struct cbt_state st = { 0 };
	write_state(g, slot, &st);
	uint32_t kdev = (maj << 20) | min;
	rcu_wait(g);
	memset(bank(g, slot, 0), 0, g->words_per_bank * 8);
	memset(bank(g, slot, 1), 0, g->words_per_bank * 8);
	st = (struct cbt_state){ .active = 0, .enabled = 1, .nblocks = nblocks,
				 .generation = gen, .dev = kdev };
	uint32_t s = slot;
	if (bpf_map__update_elem(g->cbt->maps.cbt_devs, &kdev, 4, &s, 4, BPF_ANY) ||
	    write_state(g, slot, &st)) {
		snprintf(err, errn, "cannot start tracking %s (%s)", dev, strerror(errno));
		return -1;
	}
	g->slots[slot] = (struct cbt_slot){ .used = true, .kdev = kdev, .major = maj, .minor = min,
					    .size_bytes = size, .nblocks = nblocks,
					    .generation = gen, .sequence = 0 };
	*out = &g->slots[slot];
	return 0;
}

/* Makes the other bank active and returns the one that was. */
static int swap_banks(struct guard *g, int slot)
{
	struct cbt_state st;
	read_state(g, slot, &st);
	int old = st.active & 1;
	memset(bank(g, slot, old ^ 1), 0, g->words_per_bank * 8); /* normally already 0 */
	st.active = old ^ 1;
	write_state(g, slot, &st);
	rcu_wait(g);
	return old;
}

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = v >> (8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = v >> (8 * i); }

static int write_file(struct cbt_slot *s, const uint64_t *words, const char *out,
		      char *err, size_t errn)
{
	size_t nbytes = (s->nblocks + 7) / 8;
	uint8_t hdr[64] = { 0 }, digest[32];
	uint8_t *bm = malloc(nbytes ? nbytes : 1);
	struct sha256 h;
	char tmp[PATH_MAX];

	if (!bm) {
		snprintf(err, errn, "out of memory for a %zu-byte bitmap", nbytes);
		return -1;
	}
	for (size_t j = 0; j < nbytes; j++)
		bm[j] = words[j / 8] >> ((j % 8) * 8);
	if (s->nblocks % 8)
		bm[nbytes - 1] &= (1u << (s->nblocks % 8)) - 1;
	memcpy(hdr, "BWCBT001", 8);
	put32(hdr + 8, 1);
	put32(hdr + 12, CBT_BLOCK);
	put64(hdr + 16, s->size_bytes);
	put64(hdr + 24, s->generation);
	put64(hdr + 32, s->sequence);
	put32(hdr + 40, s->major);
	put32(hdr + 44, s->minor);
	sha256_init(&h);
	sha256_update(&h, hdr, sizeof(hdr));
	sha256_update(&h, bm, nbytes);
	sha256_final(&h, digest);

	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	FILE *f = fopen(tmp, "wb");
	int ok = f && fwrite(hdr, 1, 64, f) == 64 && fwrite(bm, 1, nbytes, f) == nbytes &&
		 fwrite(digest, 1, 32, f) == 32;
	if (f && (fflush(f) || fsync(fileno(f))))
		ok = 0;
	if (f)
		fclose(f);
	free(bm);
	if (!ok || rename(tmp, out)) {
		snprintf(err, errn, "cannot write %s (%s)", out, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int cbt_dump(struct guard *g, const char *dev, const char *out, bool reset, char *err,
	     size_t errn, struct cbt_slot **slotp)
{
	struct cbt_slot *s = find_slot(g, dev, err, errn);
	struct cbt_state st;

	if (!s)
		return -1;
	int slot = s - g->slots;
	int b;
	if (reset) {
		b = swap_banks(g, slot);
	} else {
		read_state(g, slot, &st);
		b = st.active & 1;
	}
	s->sequence++;
	int r = write_file(s, bank(g, slot, b), out, err, errn);
	if (reset && r == 0)
		memset(bank(g, slot, b), 0, g->words_per_bank * 8);
	else if (reset) {
		/* Keep the bits: fold them back into the active bank. */
		uint64_t *a = bank(g, slot, b ^ 1), *o = bank(g, slot, b);
		for (uint64_t i = 0; i < g->words_per_bank; i++)
			__atomic_fetch_or(&a[i], o[i], __ATOMIC_RELAXED);
		memset(o, 0, g->words_per_bank * 8);
	}
	*slotp = s;
	return r;
}

int cbt_reset(struct guard *g, const char *dev, char *err, size_t errn, struct cbt_slot **slotp)
{
	struct cbt_slot *s = find_slot(g, dev, err, errn);
	if (!s)
		return -1;
	int slot = s - g->slots;
	int b = swap_banks(g, slot);
	memset(bank(g, slot, b), 0, g->words_per_bank * 8);
	/* Bits were dropped without a dump: the next dump's sequence must show the gap. */
	s->sequence++;
	*slotp = s;
	return 0;
}
