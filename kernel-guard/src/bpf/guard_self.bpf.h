/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Self-protection: bpf(), ptrace, signals, mounts, modules, lockdown.
 * Part of guard.bpf.c (one BPF object, split for reading). */
/* ------------------------------------------------------ self-protection */

SEC("lsm/bpf")
int BPF_PROG(guard_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	struct guard_config *c = cfg();
	struct task_struct *t;

	if (!c || !c->guard_tgid)
		return 0;
	t = bpf_get_current_task_btf();
	if (BPF_CORE_READ(t, tgid) == c->guard_tgid) {
		/* Bind the daemon's identity to its start time on first use so
		 * a reused pid is not the guard. */
		if (!c->guard_start)
			c->guard_start = BPF_CORE_READ(t, group_leader, start_time);
		if (c->guard_start == BPF_CORE_READ(t, group_leader, start_time))
			return 0;
	}
	if (!c->locked)
		return 0;
	switch (cmd) {
	case BPF_PROG_GET_NEXT_ID:
	case BPF_MAP_GET_NEXT_ID:
	case BPF_LINK_GET_NEXT_ID:
	case BPF_BTF_GET_NEXT_ID:
		return 0; /* listing ids is harmless; getting an fd is not */
	}
	return deny(GOP_BPF, 0, cmd, 0);
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(guard_ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	/* Attach-mode access: ptrace itself, /proc/PID/mem, process_vm_readv/
	 * writev, pidfd_getfd. Read-mode (/proc/PID/exe, stat) stays allowed:
	 * the guard itself reads it to identify its peers. */
	if (!(mode & PTRACE_MODE_ATTACH))
		return 0;
	if (task_class(child) == CLS_GATEWAY || (locked() && task_is_guard(child)))
		return deny(GOP_PTRACE, 0, BPF_CORE_READ(child, tgid), mode);
	return 0;
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(guard_ptrace_traceme, struct task_struct *parent)
{
	if (current_is_gateway() || (locked() && current_is_guard()))
		return deny(GOP_PTRACE, 0, BPF_CORE_READ(parent, tgid), 0);
	return 0;
}

SEC("lsm/task_kill")
int BPF_PROG(guard_task_kill, struct task_struct *p, struct kernel_siginfo *info,
	     int sig, const struct cred *cred)
{
	/* Killing the daemon would not unload the guard (the links are pinned)
	 * but it would stop seals and events: refuse it once locked. */
	if (sig && locked() && task_is_guard(p) && !current_is_guard())
		return deny(GOP_KILL, 0, sig, BPF_CORE_READ(p, tgid));
	return 0;
}

SEC("lsm/sb_umount")
int BPF_PROG(guard_sb_umount, struct vfsmount *mnt, int flags)
{
	struct super_block *sb = mnt->mnt_sb;
	u32 dev;

	if (!locked())
		return 0;
	if (sb->s_magic == BPF_FS_MAGIC)
		return deny(GOP_UMOUNT, mnt->mnt_root, 0, 0);
	dev = sb->s_dev;
	if (bpf_map_lookup_elem(&bdevs, &dev))
		return deny(GOP_UMOUNT, mnt->mnt_root, 0, 0);
	return 0;
}

SEC("lsm/sb_mount")
int BPF_PROG(guard_sb_mount, const char *dev_name, const struct path *path,
	     const char *type, unsigned long flags, void *data)
{
	/* Mounting over a store or an ancestor would hide it from the gateway. */
	if (locked() && dentry_dir_kind(path->dentry))
		return deny(GOP_MOUNT, path->dentry, 0, flags);
	return 0;
}

SEC("lsm/move_mount")
int BPF_PROG(guard_move_mount, const struct path *from_path, const struct path *to_path)
{
	if (locked() && (dentry_dir_kind(from_path->dentry) || dentry_dir_kind(to_path->dentry)))
		return deny(GOP_MOUNT, to_path->dentry, 0, 0);
	return 0;
}

SEC("lsm/kernel_read_file")
int BPF_PROG(guard_kernel_read_file, struct file *file, enum kernel_read_file_id id,
	     bool contents)
{
	if (locked() && (id == READING_MODULE || id == READING_KEXEC_IMAGE ||
			 id == READING_KEXEC_INITRAMFS))
		return deny(GOP_MODULE, file ? file->f_path.dentry : 0, id, 0);
	return 0;
}

SEC("lsm/kernel_load_data")
int BPF_PROG(guard_kernel_load_data, enum kernel_load_data_id id, bool contents)
{
	if (locked() && (id == LOADING_MODULE || id == LOADING_KEXEC_IMAGE ||
			 id == LOADING_KEXEC_INITRAMFS))
		return deny(GOP_MODULE, 0, id, 0);
	return 0;
}

SEC("lsm/locked_down")
int BPF_PROG(guard_locked_down, enum lockdown_reason what)
{
	/* Once locked, behave like lockdown=integrity: no /dev/mem, no kernel
	 * writes through debug interfaces, no unsigned code. */
	if (locked() && what > LOCKDOWN_NONE && what < LOCKDOWN_INTEGRITY_MAX)
		return deny(GOP_LOCKDOWN, 0, what, 0);
	return 0;
}

