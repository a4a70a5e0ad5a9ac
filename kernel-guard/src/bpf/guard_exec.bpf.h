/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The exec-time mark: authenticate the program, not the interpreter.
 * Part of guard.bpf.c (one BPF object, split for reading). */
/* ----------------------------------------------------- exec: the mark */

struct pattern {
	char s[24];
	u32 len;
	u32 exact; /* 1: the whole string must match; 0: a prefix */
};

/* Inputs that inject code into a Node SEA. Environment: prefixes. */
static const struct pattern env_pats[] = {
	{ "NODE_OPTIONS=", 13, 0 },
	{ "NODE_PATH=", 10, 0 },
	{ "NODE_REPL_EXTERNAL_MODUL", 24, 0 }, /* a 24-byte prefix is enough */
	{ "LD_", 3, 0 },
};

/* Arguments (argv[1..]): node flags, in case a build ever parses them. */
static const struct pattern arg_pats[] = {
	{ "--require", 9, 0 },
	{ "--import", 8, 0 },
	{ "--inspect", 9, 0 },
	{ "--loader", 8, 0 },
	{ "--experimental-loader", 21, 0 },
	{ "--eval", 6, 0 },
	{ "--print", 7, 0 },
	{ "--debug", 7, 0 },
	{ "-r", 2, 1 },
	{ "-e", 2, 1 },
	{ "-p", 2, 1 },
	{ "-i", 2, 1 },
};

#define N_ENV_PATS (sizeof(env_pats) / sizeof(env_pats[0]))
#define N_ARG_PATS (sizeof(arg_pats) / sizeof(arg_pats[0]))

/* Matcher over the NUL-separated strings copied into the scan buffer: at
 * each string start, compare every pattern directly. (A streaming matcher
 * with per-pattern state made the verifier's state space explode.) */
struct scan_ctx {
	u64 len;
	u32 argc;
	u32 nstr; /* strings seen so far: argv first, then the environment */
	u32 hit;
	u32 pad;
};

static __always_inline bool match_at(struct scan_buf *sb, u64 i, const struct pattern *p)
{
	for (u32 j = 0; j < 24; j++) {
		char ch = sb->buf[(i + j) & (SCAN_MAX - 1)];
		if (j >= p->len)
			return p->exact ? ch == 0 : true;
		if (ch != p->s[j])
			return false;
	}
	return !p->exact;
}

static long scan_byte(u64 i, void *vctx)
{
	struct scan_ctx *c = vctx;
	u32 z = 0;
	struct scan_buf *sb = bpf_map_lookup_elem(&scan, &z);
	u32 idx;

	if (!sb || i >= c->len)
		return 1;
	if (i > 0 && sb->buf[(i - 1) & (SCAN_MAX - 1)] != 0)
		return 0; /* not the start of a string */
	idx = c->nstr++;
	if (idx == 0)
		return 0; /* argv[0]: the program's own name */
	if (idx < c->argc) {
		for (u32 k = 0; k < N_ARG_PATS; k++)
			if (match_at(sb, i, &arg_pats[k]))
				goto hit;
	} else {
		for (u32 k = 0; k < N_ENV_PATS; k++)
			if (match_at(sb, i, &env_pats[k]))
				goto hit;
	}
	return 0;
hit:
	c->hit = 1;
	return 1;
}

/* 0 when the new image's arguments and environment hold no injection
 * input, else an exec_reason. At this point of exec they sit between
 * bprm->p and bprm->exec on the new stack (argv strings, then envp);
 * mm->arg_start and friends are not set yet. */
static __always_inline u32 check_injection(struct linux_binprm *bprm)
{
	unsigned long start = bprm->p, end = bprm->exec;
	struct scan_ctx c = { .argc = bprm->argc };
	struct scan_buf *sb;
	u32 z = 0, r = 0;
	u64 len = end - start;

	if (end < start || len > SCAN_MAX)
		return R_ARGS_TOO_BIG;
	if (len == 0)
		return 0;
	sb = bpf_map_lookup_elem(&scan, &z);
	if (!sb)
		return R_SCAN_BUSY;
	if (__sync_lock_test_and_set(&sb->busy, 1))
		return R_SCAN_BUSY; /* fail closed: see struct scan_buf */
	if (bpf_copy_from_user(sb->buf, len, (void *)start)) {
		r = R_ARGS_TOO_BIG;
	} else {
		c.len = len;
		bpf_loop(len, scan_byte, &c, 0);
		if (c.hit)
			r = c.nstr <= c.argc ? R_INJECT_ARG : R_INJECT_ENV;
	}
	sb->busy = 0;
	return r;
}

static __always_inline u32 check_hash(struct file *file, struct fkey *k,
				      struct exe_policy *p)
{
	struct inode *inode = file->f_inode;
	struct hash_cache cur = {};
	struct hash_cache *c;
	long algo;

	cur.mtime_s = inode->i_mtime.tv_sec;
	cur.mtime_ns = inode->i_mtime.tv_nsec;
	cur.ctime_s = inode->i_ctime.tv_sec;
	cur.ctime_ns = inode->i_ctime.tv_nsec;
	cur.size = inode->i_size;

	c = bpf_map_lookup_elem(&hcache, k);
	if (c && c->mtime_s == cur.mtime_s && c->mtime_ns == cur.mtime_ns &&
	    c->ctime_s == cur.ctime_s && c->ctime_ns == cur.ctime_ns &&
	    c->size == cur.size) {
		__builtin_memcpy(cur.sha256, c->sha256, 32);
	} else {
		/* 1-2 s for a 100 MB binary without an IMA policy: cached above */
		algo = bpf_ima_file_hash(file, cur.sha256, sizeof(cur.sha256));
		if (algo != 4 /* HASH_ALGO_SHA256 */)
			return R_HASH_ERROR;
		bpf_map_update_elem(&hcache, k, &cur, BPF_ANY);
	}
	for (int i = 0; i < 32; i++)
		if (cur.sha256[i] != p->sha256[i])
			return R_HASH_MISMATCH;
	return 0;
}

SEC("lsm.s/bprm_committed_creds")
int BPF_PROG(guard_exec, struct linux_binprm *bprm)
{
	struct task_struct *t = bpf_get_current_task_btf();
	u32 tgid = t->tgid;
	struct file *file = bprm->file;
	struct exe_policy *p;
	struct fkey k;
	u32 reason;

	/* The mark dies with every exec; only this exec can earn it again. */
	bpf_map_delete_elem(&marks, &tgid);

	inode_key(file->f_inode, &k);
	p = bpf_map_lookup_elem(&exes, &k);
	if (!p || p->kind != EXE_GATEWAY)
		return 0;

	if (t->ptrace)
		reason = R_TRACED; /* PTRACE_TRACEME before exec, or attached */
	else
		reason = check_hash(file, &k, p);
	if (!reason)
		reason = check_injection(bprm);
	if (reason) {
		emit(GOP_EXEC, V_UNAUTHENTICATED, scal(file->f_path.dentry), reason, 0);
		return 0;
	}

	struct mark m = {
		.start_time = t->group_leader->start_time,
		.start_boottime = t->group_leader->start_boottime,
		.cls = CLS_GATEWAY,
	};
	bpf_map_update_elem(&marks, &tgid, &m, BPF_ANY);
	return 0;
}

