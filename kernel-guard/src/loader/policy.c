/* Fills the guard's policy maps: stores, executables, seals, the lock. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common.h"
#include "guard.skel.h"
#include "sha256.h"

#define BPF_FS_MAGIC 0xcafe4a11

static int put_dir(struct guard *g, const struct stat *st, uint32_t kind)
{
	struct fkey k = { .dev = kdev_of(st->st_dev), .ino = st->st_ino };
	return bpf_map__update_elem(g->skel->maps.dirs, &k, sizeof(k), &kind, sizeof(kind), BPF_ANY);
}

static void put_bdev(struct guard *g, uint32_t kdev)
{
	uint32_t one = 1;
	bpf_map__update_elem(g->skel->maps.bdevs, &kdev, sizeof(kdev), &one, sizeof(one), BPF_ANY);
}

/* The store's filesystem device, and when it is a partition, its whole disk
 * too: a raw write to either would go around the file rules. */
static void protect_block_devices(struct guard *g, dev_t dev)
{
	char p[128], buf[64];
	unsigned maj, min;

	put_bdev(g, kdev_of(dev));
	if (!major(dev))
		return; /* tmpfs and friends: no block device */
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/partition", major(dev), minor(dev));
	if (access(p, F_OK))
		return;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/../dev", major(dev), minor(dev));
	FILE *f = fopen(p, "r");
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%u:%u", &maj, &min) == 2)
		put_bdev(g, kdev_of(makedev(maj, min)));
	fclose(f);
}

/* Every ancestor of a protected path becomes an anchor, so nobody renames it
 * away (and puts a look-alike in its place) or mounts something over it. */
static void add_anchors(struct guard *g, const char *real)
{
	char up[PATH_MAX];
	struct stat st;

	snprintf(up, sizeof(up), "%s", real);
	while (strcmp(up, "/")) {
		char *slash = strrchr(up, '/');
		if (!slash)
			break;
		if (slash == up)
			slash[1] = 0;
		else
			*slash = 0;
		if (stat(up, &st) == 0)
			put_dir(g, &st, DIR_ANCHOR);
	}
}

int policy_add_store(struct guard *g, const char *dir)
{
	char real[PATH_MAX];
	struct stat st;

	if (g->nstores >= MAX_STORES)
		die("too many --store directories (at most %d)", MAX_STORES);
	if (!realpath(dir, real) || stat(real, &st) || !S_ISDIR(st.st_mode))
		die("--store %s: not a directory (%s); create it and mount the store "
		    "filesystem first", dir, strerror(errno ? errno : ENOTDIR));
	if (put_dir(g, &st, DIR_STORE))
		die("--store %s: cannot update the dirs map (%s)", dir, strerror(errno));
	protect_block_devices(g, st.st_dev);
	snprintf(g->stores[g->nstores++], PATH_MAX, "%s", real);

	add_anchors(g, real);
	return 0;
}

int policy_add_exe(struct guard *g, const char *path, uint32_t kind, const char *sha_hex)
{
	struct exe_policy p = { .kind = kind };
	struct stat st;
	char hex[65];

	if (stat(path, &st) || !S_ISREG(st.st_mode))
		die("%s: not a regular file (%s)", path, strerror(errno ? errno : EINVAL));
	if (kind == EXE_GATEWAY) {
		if (sha_hex) {
			if (unhex32(sha_hex, p.sha256))
				die("--gateway-sha256: want 64 hex digits, got '%s'", sha_hex);
		} else {
			int r = sha256_file(path, p.sha256);
			if (r)
				die("%s: cannot hash the gateway executable (%s)", path, strerror(-r));
		}
		hex32(p.sha256, hex);
		fprintf(stderr, "bulwark-guard: gateway executable %s dev %u:%u ino %lu sha256 %s\n",
			path, major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino, hex);
	}
	struct fkey k = { .dev = kdev_of(st.st_dev), .ino = st.st_ino };
	if (bpf_map__update_elem(g->skel->maps.exes, &k, sizeof(k), &p, sizeof(p), BPF_ANY))
		die("%s: cannot update the exes map (%s)", path, strerror(errno));
	return 0;
}

static bool in_store(struct guard *g, const char *real)
{
	for (int i = 0; i < g->nstores; i++) {
		size_t n = strlen(g->stores[i]);
		if (!strncmp(real, g->stores[i], n) && real[n] == '/')
			return true;
	}
	return false;
}

/* Seal a file until now + retain_s on the guard clock (or forever with
 * hold). A seal is only ever extended, never shortened. */
int policy_seal(struct guard *g, const char *path, double retain_s, bool hold,
		uint64_t *until, char *err, size_t errn)
{
	char real[PATH_MAX];
	struct stat st;
	uint64_t old = 0, t;

	if (!realpath(path, real) || stat(real, &st)) {
		snprintf(err, errn, "cannot seal %s: %s", path, strerror(errno));
		return -1;
	}
	if (!in_store(g, real)) {
		snprintf(err, errn, "cannot seal %s: it is not inside a protected store", real);
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errn, "cannot seal %s: only a regular file with one link can be sealed", real);
		return -1;
	}
	if (st.st_mode & 0222) {
		snprintf(err, errn, "cannot seal %s: it is still writable (mode %04o); fsync it and "
			 "chmod 0444 before sealing", real, st.st_mode & 07777);
		return -1;
	}
	if (!hold && !(retain_s >= 0 && retain_s < 1e11)) {
		snprintf(err, errn, "cannot seal %s: retainSeconds must be a number >= 0", real);
		return -1;
	}
	struct fkey k = { .dev = kdev_of(st.st_dev), .ino = st.st_ino };
	t = hold ? UINT64_MAX : boot_ns() + (uint64_t)(retain_s * 1e9);
	bpf_map__lookup_elem(g->skel->maps.seals, &k, sizeof(k), &old, sizeof(old), 0);
	if (old > t)
		t = old;
	if (bpf_map__update_elem(g->skel->maps.seals, &k, sizeof(k), &t, sizeof(t), BPF_ANY)) {
		snprintf(err, errn, "cannot seal %s: seal table update failed (%s)", real, strerror(errno));
		return -1;
	}
	*until = t;
	return 0;
}

static void ensure_bpffs(void)
{
	struct statfs sf;
	if (statfs("/sys/fs/bpf", &sf) == 0 && sf.f_type == BPF_FS_MAGIC)
		return;
	mkdir("/sys/fs/bpf", 0700);
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		die("cannot mount bpffs on /sys/fs/bpf (%s): the guard needs it to pin "
		    "its links", strerror(errno));
}

/* Pin every link (so killing the daemon cannot detach anything), protect the
 * pins, then switch self-protection on. There is no way back. */
int policy_lock(struct guard *g)
{
	struct stat st;
	char p[PATH_MAX];

	ensure_bpffs();
	if (mkdir(g->pin_dir, 0700) && errno != EEXIST)
		die("cannot create %s (%s)", g->pin_dir, strerror(errno));
	for (int i = 0; i < g->nlinks; i++) {
		snprintf(p, sizeof(p), "%s/%s", g->pin_dir, g->link_names[i]);
		unlink(p); /* a stale pin from a previous unlocked run */
		if (bpf_link__pin(g->links[i], p))
			die("cannot pin %s (%s)", p, strerror(errno));
	}
	if (stat(g->pin_dir, &st))
		die("cannot stat %s (%s)", g->pin_dir, strerror(errno));
	put_dir(g, &st, DIR_GUARD);

	uint32_t z = 0;
	struct guard_config c;
	if (bpf_map__lookup_elem(g->skel->maps.guard_cfg, &z, sizeof(z), &c, sizeof(c), 0))
		die("cannot read the guard config (%s)", strerror(errno));
	c.locked = 1;
	if (bpf_map__update_elem(g->skel->maps.guard_cfg, &z, sizeof(z), &c, sizeof(c), BPF_ANY))
		die("cannot lock the guard (%s)", strerror(errno));
	return 0;
}

/* Nobody but the daemon may remove, replace or mount over PATH (its socket):
 * a fake guard on the gateway's socket path could answer "sealed" and seal
 * nothing. */
void policy_protect_path(struct guard *g, const char *path)
{
	char real[PATH_MAX];
	struct stat st;
	if (!realpath(path, real) || stat(real, &st) || put_dir(g, &st, DIR_GUARD))
		die("cannot protect %s (%s)", path, strerror(errno));
	add_anchors(g, real);
}

/* Is pid (from SO_PEERCRED) a process the guard marked as the gateway?
 * The start time ties the mark to this very process, not a reused pid. */
bool policy_peer_is_gateway(struct guard *g, pid_t pid)
{
	uint32_t tgid = pid;
	struct mark m;
	char p[64], buf[1024];
	unsigned long long start_ticks = 0;

	if (bpf_map__lookup_elem(g->skel->maps.marks, &tgid, sizeof(tgid), &m, sizeof(m), 0))
		return false;
	snprintf(p, sizeof(p), "/proc/%d/stat", pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	char *s = strrchr(buf, ')'); /* comm may hold spaces */
	if (!s)
		return false;
	/* after ") " come fields 3..; starttime is field 22 */
	s += 2;
	for (int field = 3; field < 22 && s; field++) {
		s = strchr(s, ' ');
		if (s)
			s++;
	}
	if (!s || sscanf(s, "%llu", &start_ticks) != 1)
		return false;
	long hz = sysconf(_SC_CLK_TCK);
	return m.start_boottime / (1000000000ull / hz) == start_ticks;
}
