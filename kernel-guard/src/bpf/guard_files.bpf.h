/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* File and inode hooks: the store and seal rules.
 * Part of guard.bpf.c (one BPF object, split for reading). */
/* ------------------------------------------------------------- file hooks */

SEC("lsm/file_open")
int BPF_PROG(guard_file_open, struct file *file)
{
	struct inode *inode = file->f_inode;
	struct dentry *d = file->f_path.dentry;
	struct fkey k;

	if (!(file->f_mode & FMODE_WRITE) && !(file->f_flags & O_TRUNC))
		return 0;

	inode_key(inode, &k);
	if (bpf_map_lookup_elem(&exes, &k)) {
		/* The gateway binary is checked by hash at each exec: drop the
		 * cached hash. Its libraries are trusted by inode only, so once
		 * locked they cannot be written in place at all. */
		bpf_map_delete_elem(&hcache, &k);
		struct exe_policy *p = bpf_map_lookup_elem(&exes, &k);
		if (p && p->kind == EXE_LIB && locked())
			return deny(GOP_OPEN_WRITE, d, 0, 0);
	}
	if ((inode->i_mode & S_IFMT) == S_IFBLK) {
		u32 rdev = inode->i_rdev;
		if (bpf_map_lookup_elem(&bdevs, &rdev))
			return deny(GOP_BDEV_WRITE, d, 0, rdev);
	}
	return check_change(GOP_OPEN_WRITE, d);
}

/* Writes through a descriptor opened before the file was sealed (or before
 * the guard started). */
SEC("lsm/file_permission")
int BPF_PROG(guard_file_permission, struct file *file, int mask)
{
	if (!(mask & MAY_WRITE))
		return 0;
	return check_change(GOP_WRITE, file->f_path.dentry);
}

#define FS_IOC_SETFLAGS 0x40086602
#define FS_IOC32_SETFLAGS 0x40046602
#define FS_IOC_FSSETXATTR 0x401c5820
#define FS_IOC_SETVERSION 0x40087602
#define FS_IOC32_SETVERSION 0x40047602
#define BLKDISCARD 0x1277
#define BLKSECDISCARD 0x127d
#define BLKZEROOUT 0x127f
#define BLKPG 0x1269
#define SG_IO 0x2285

SEC("lsm/file_ioctl")
int BPF_PROG(guard_file_ioctl, struct file *file, unsigned int cmd, unsigned long arg)
{
	struct inode *inode = file->f_inode;

	switch (cmd) {
	case FS_IOC_SETFLAGS:
	case FS_IOC32_SETFLAGS:
	case FS_IOC_FSSETXATTR:
	case FS_IOC_SETVERSION:
	case FS_IOC32_SETVERSION:
		return check_change(GOP_IOCTL, file->f_path.dentry);
	case BLKDISCARD:
	case BLKSECDISCARD:
	case BLKZEROOUT:
	case BLKPG:
	case SG_IO: /* CAP_SYS_RAWIO may write through SG_IO on a read-only fd */
		if ((inode->i_mode & S_IFMT) == S_IFBLK) {
			u32 rdev = inode->i_rdev;
			if (bpf_map_lookup_elem(&bdevs, &rdev))
				return deny(GOP_BDEV_WRITE, file->f_path.dentry, cmd, rdev);
		}
		return 0;
	}
	return 0;
}

/* An authenticated process stays authenticated only while all the code it
 * maps comes from registered files. */
static __always_inline void check_exec_map(struct file *file, unsigned long prot)
{
	struct fkey k;
	u32 tgid;

	if (!(prot & PROT_EXEC) || !file || !current_is_gateway())
		return;
	inode_key(file->f_inode, &k);
	if (bpf_map_lookup_elem(&exes, &k))
		return;
	tgid = cur_tgid();
	bpf_map_delete_elem(&marks, &tgid);
	emit(GOP_MAP_EXEC, V_UNAUTHENTICATED, scal(file->f_path.dentry), R_UNKNOWN_LIB, 0);
}

SEC("lsm/mmap_file")
int BPF_PROG(guard_mmap_file, struct file *file, unsigned long reqprot,
	     unsigned long prot, unsigned long flags)
{
	check_exec_map(file, prot);
	return 0;
}

SEC("lsm/file_mprotect")
int BPF_PROG(guard_file_mprotect, struct vm_area_struct *vma,
	     unsigned long reqprot, unsigned long prot)
{
	check_exec_map(vma->vm_file, prot);
	return 0;
}

/* ------------------------------------------------------------ inode hooks */

SEC("lsm/inode_create")
int BPF_PROG(guard_inode_create, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	return check_add(GOP_CREATE, dentry);
}

SEC("lsm/inode_mkdir")
int BPF_PROG(guard_inode_mkdir, struct inode *dir, struct dentry *dentry, umode_t mode)
{
	return check_add(GOP_MKDIR, dentry);
}

SEC("lsm/inode_mknod")
int BPF_PROG(guard_inode_mknod, struct inode *dir, struct dentry *dentry,
	     umode_t mode, dev_t dev)
{
	return check_add(GOP_MKNOD, dentry);
}

SEC("lsm/inode_symlink")
int BPF_PROG(guard_inode_symlink, struct inode *dir, struct dentry *dentry,
	     const char *old_name)
{
	return check_add(GOP_SYMLINK, dentry);
}

SEC("lsm/inode_link")
int BPF_PROG(guard_inode_link, struct dentry *old_dentry, struct inode *dir,
	     struct dentry *new_dentry)
{
	int r = check_change(GOP_LINK, old_dentry);
	if (r)
		return r;
	return check_add(GOP_LINK, new_dentry);
}

SEC("lsm/inode_unlink")
int BPF_PROG(guard_inode_unlink, struct inode *dir, struct dentry *dentry)
{
	return check_change(GOP_UNLINK, dentry);
}

SEC("lsm/inode_rmdir")
int BPF_PROG(guard_inode_rmdir, struct inode *dir, struct dentry *dentry)
{
	int r = check_fixed_dir(GOP_RMDIR, dentry);
	if (r)
		return r;
	return check_change(GOP_RMDIR, dentry);
}

SEC("lsm/inode_rename")
int BPF_PROG(guard_inode_rename, struct inode *old_dir, struct dentry *old_dentry,
	     struct inode *new_dir, struct dentry *new_dentry)
{
	int r = check_fixed_dir(GOP_RENAME_FROM, old_dentry);
	if (r)
		return r;
	r = check_change(GOP_RENAME_FROM, old_dentry);
	if (r)
		return r;
	if (BPF_CORE_READ(new_dentry, d_inode)) {
		/* renaming over an existing entry replaces it */
		r = check_fixed_dir(GOP_RENAME_TO, new_dentry);
		if (r)
			return r;
		return check_change(GOP_RENAME_TO, new_dentry);
	}
	return check_add(GOP_RENAME_TO, new_dentry);
}

SEC("lsm/inode_setattr")
int BPF_PROG(guard_inode_setattr, struct dentry *dentry, struct iattr *attr)
{
	unsigned int v = attr->ia_valid;
	u32 op = GOP_SETATTR;

	if (v & ATTR_SIZE)
		op = GOP_TRUNCATE;
	else if (v & ATTR_MODE)
		op = GOP_CHMOD;
	else if (v & (ATTR_UID | ATTR_GID))
		op = GOP_CHOWN;
	return check_change(op, dentry);
}

SEC("lsm/path_truncate")
int BPF_PROG(guard_path_truncate, const struct path *path)
{
	return check_change(GOP_TRUNCATE, path->dentry);
}

SEC("lsm/inode_setxattr")
int BPF_PROG(guard_inode_setxattr, struct user_namespace *mnt_userns,
	     struct dentry *dentry, const char *name, const void *value,
	     size_t size, int flags)
{
	return check_change(GOP_SETXATTR, dentry);
}

SEC("lsm/inode_removexattr")
int BPF_PROG(guard_inode_removexattr, struct user_namespace *mnt_userns,
	     struct dentry *dentry, const char *name)
{
	return check_change(GOP_REMOVEXATTR, dentry);
}

