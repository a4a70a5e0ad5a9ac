/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Who is asking, what the object is, and how a denial is recorded.
 * Part of guard.bpf.c (one BPF object, split for reading). */
/* ---------------------------------------------------------------- helpers */

static __always_inline struct guard_config *cfg(void)
{
	u32 z = 0;
	return bpf_map_lookup_elem(&guard_cfg, &z);
}

static __always_inline bool locked(void)
{
	struct guard_config *c = cfg();
	return c && c->locked;
}

static __always_inline u32 cur_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline bool task_is_guard(struct task_struct *t)
{
	struct guard_config *c = cfg();
	if (!c || !c->guard_tgid)
		return false;
	if (BPF_CORE_READ(t, tgid) != c->guard_tgid)
		return false;
	return c->guard_start == BPF_CORE_READ(t, group_leader, start_time);
}

static __always_inline bool current_is_guard(void)
{
	return task_is_guard(bpf_get_current_task_btf());
}

static __always_inline u32 task_class(struct task_struct *t)
{
	u32 tgid = BPF_CORE_READ(t, tgid);
	struct mark *m = bpf_map_lookup_elem(&marks, &tgid);
	if (!m)
		return CLS_NONE;
	if (m->start_time != BPF_CORE_READ(t, group_leader, start_time))
		return CLS_NONE;
	return m->cls;
}

static __always_inline bool current_is_gateway(void)
{
	return task_class(bpf_get_current_task_btf()) == CLS_GATEWAY;
}

static __always_inline void inode_key(struct inode *inode, struct fkey *k)
{
	k->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k->pad = 0;
	k->ino = BPF_CORE_READ(inode, i_ino);
}

/* The helpers below are global (non-static, noinline) functions: the
 * verifier checks each once instead of at every call site, which keeps the
 * path walks affordable. Global functions take plain integers, so kernel
 * pointers travel as u64 and are read with probe reads. */

__noinline int sealed_inode(u64 inode_ptr)
{
	struct inode *inode = (void *)inode_ptr;
	struct fkey k;
	u64 *until;

	if (!inode)
		return 0;
	k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k.pad = 0;
	k.ino = BPF_CORE_READ(inode, i_ino);
	until = bpf_map_lookup_elem(&seals, &k);
	return until && bpf_ktime_get_boot_ns() < *until;
}

__noinline int dir_kind(u64 dentry_ptr)
{
	struct dentry *d = (void *)dentry_ptr;
	struct inode *inode;
	struct fkey k;
	u32 *kind;

	if (!d)
		return 0;
	inode = BPF_CORE_READ(d, d_inode);
	if (!inode)
		return 0;
	k.dev = BPF_CORE_READ(inode, i_sb, s_dev);
	k.pad = 0;
	k.ino = BPF_CORE_READ(inode, i_ino);
	kind = bpf_map_lookup_elem(&dirs, &k);
	return kind ? *kind : 0;
}

/* The store or guard directory that contains d (d itself included), or 0.
 * Walks d_parent, so it works on the dentry's real location whatever path,
 * bind mount or hard link was used to reach it. */
__noinline int containing_area(u64 dentry_ptr)
{
	struct dentry *d = (void *)dentry_ptr;

	for (int i = 0; i < MAX_DEPTH && d; i++) {
		int kind = dir_kind((u64)d);
		struct dentry *p;

		if (kind == DIR_STORE || kind == DIR_GUARD)
			return kind;
		p = BPF_CORE_READ(d, d_parent);
		if (p == d)
			break;
		d = p;
	}
	return 0;
}

__noinline int emit(u32 op, u32 verdict, u64 dentry_ptr, u32 reason, u64 extra)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	struct dentry *d = (void *)dentry_ptr;
	u64 pt = bpf_get_current_pid_tgid();

	if (!e)
		return 0; /* ring full: the denial still holds, only the record is lost */
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->pid = (u32)pt;
	e->tgid = pt >> 32;
	e->uid = (u32)bpf_get_current_uid_gid();
	e->op = op;
	e->verdict = verdict;
	e->reason = reason;
	e->extra = extra;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	if (d) {
		struct inode *inode = BPF_CORE_READ(d, d_inode);
		e->dev = BPF_CORE_READ(d, d_sb, s_dev);
		e->ino = inode ? BPF_CORE_READ(inode, i_ino) : 0;
		/* name components, leaf first, up to the filesystem root (the
		 * loader prefixes the mount point) */
		for (int i = 0; i < EV_COMPS; i++) {
			struct dentry *p = BPF_CORE_READ(d, d_parent);
			const unsigned char *name;

			if (!p || p == d)
				break;
			name = BPF_CORE_READ(d, d_name.name);
			bpf_probe_read_kernel_str(e->comp[i], EV_COMP_LEN, name);
			e->ncomp = i + 1;
			d = p;
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* A pointer's value as a plain scalar, so it can be passed to the global
 * functions above (the verifier tracks a cast pointer as still a pointer). */
static __always_inline u64 scal(const void *p)
{
	u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return v;
}

static __always_inline bool inode_sealed(struct inode *inode)
{
	return sealed_inode(scal(inode));
}

static __always_inline u32 dentry_dir_kind(struct dentry *d)
{
	return dir_kind(scal(d));
}

static __always_inline int deny(u32 op, struct dentry *d, u32 reason, u64 extra)
{
	emit(op, V_DENY, scal(d), reason, extra);
	return -EPERM;
}

/* May the current process change the object d (which exists)? */
static __always_inline int check_change(u32 op, struct dentry *d)
{
	u32 area;

	if (!d)
		return 0;
	if (inode_sealed(BPF_CORE_READ(d, d_inode)))
		return deny(op, d, 0, 0);
	area = containing_area(scal(d));
	if (area == DIR_STORE && !current_is_gateway())
		return deny(op, d, 0, 0);
	if (area == DIR_GUARD && locked() && !current_is_guard())
		return deny(op, d, 0, 0);
	return 0;
}

/* May the current process add the (negative) entry d to its parent? */
static __always_inline int check_add(u32 op, struct dentry *d)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	u32 area = containing_area(scal(parent));

	if (area == DIR_STORE && !current_is_gateway())
		return deny(op, d, 0, 0);
	if (area == DIR_GUARD && locked() && !current_is_guard())
		return deny(op, d, 0, 0);
	return 0;
}

/* A store, its ancestors and the pin dir are never renamed or removed. */
static __always_inline int check_fixed_dir(u32 op, struct dentry *d)
{
	if (dentry_dir_kind(d))
		return deny(op, d, 0, 0);
	return 0;
}

