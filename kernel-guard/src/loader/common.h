/* Shared state and entry points of the bulwark-guard loader. */
#ifndef BW_COMMON_H
#define BW_COMMON_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "guard.h"

#define DEFAULT_SOCKET "/run/bulwark-guard.sock"
#define DEFAULT_PIN_DIR "/sys/fs/bpf/bulwark"
#define MAX_STORES 8
#define MAX_LIBS 64

struct cbt_slot {
	bool used;
	uint32_t kdev;
	uint32_t major, minor;
	uint64_t size_bytes;
	uint64_t nblocks;
	uint64_t generation;
	uint64_t sequence;
};

struct guard {
	struct guard_bpf *skel;
	struct cbt_bpf *cbt;
	struct ring_buffer *rb;
	int nlinks;
	struct bpf_link *links[64];
	const char *link_names[64];
	bool lock;
	const char *socket_path;
	const char *pin_dir;
	FILE *events_out; /* --events FILE, or NULL */
	int nstores;
	char stores[MAX_STORES][PATH_MAX];
	const char *gateway_exe;
	const char *gateway_sha256; /* hex, optional: skips hashing at start */
	int nlibs;
	const char *libs[MAX_LIBS];
	uint64_t cbt_max_gib;
	uint64_t words_per_bank;
	uint64_t *bits; /* mmap of cbt_bits */
	size_t bits_len;
	struct cbt_slot slots[CBT_SLOTS];
};

/* util.c */
uint32_t kdev_of(dev_t d);
uint64_t boot_ns(void);
void iso_time_from_boot(uint64_t ts_boot_ns, char *out, size_t n);
void json_str(FILE *f, const char *s);
int json_get_str(const char *json, const char *key, char *out, size_t n);
int json_get_num(const char *json, const char *key, double *out);
int json_get_bool(const char *json, const char *key, bool *out);
int lsm_has_bpf(char *lsm, size_t n);
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* policy.c */
int policy_add_store(struct guard *g, const char *dir);
int policy_add_exe(struct guard *g, const char *path, uint32_t kind, const char *sha_hex);
int policy_seal(struct guard *g, const char *path, double retain_s, bool hold,
		uint64_t *until, char *err, size_t errn);
int policy_lock(struct guard *g);
void policy_protect_path(struct guard *g, const char *path);
bool policy_peer_is_gateway(struct guard *g, pid_t pid);

/* events.c */
int events_open(struct guard *g);
void events_audit(struct guard *g, pid_t pid, const char *op, const char *path,
		  const char *verdict, const char *reason);

/* cbt.c */
int cbt_setup(struct guard *g);
int cbt_start(struct guard *g, const char *dev, char *err, size_t errn, struct cbt_slot **out);
int cbt_dump(struct guard *g, const char *dev, const char *out, bool reset, char *err,
	     size_t errn, struct cbt_slot **slot);
int cbt_reset(struct guard *g, const char *dev, char *err, size_t errn, struct cbt_slot **slot);

/* server.c */
int server_run(struct guard *g);

/* client.c */
int client_main(int argc, char **argv);

#endif
