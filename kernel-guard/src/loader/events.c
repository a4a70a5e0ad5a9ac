/* Turns ring-buffer records into JSON lines for the gateway's audit log:
 * {"time","pid","exe","op","path","verdict", ...extra context}. */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "guard.skel.h"

static const char *op_names[GOP_MAX] = {
	[GOP_OPEN_WRITE] = "open-write", [GOP_WRITE] = "write",
	[GOP_CREATE] = "create", [GOP_MKDIR] = "mkdir", [GOP_MKNOD] = "mknod",
	[GOP_SYMLINK] = "symlink", [GOP_UNLINK] = "unlink", [GOP_RMDIR] = "rmdir",
	[GOP_RENAME_FROM] = "rename-from", [GOP_RENAME_TO] = "rename-to",
	[GOP_LINK] = "link", [GOP_TRUNCATE] = "truncate", [GOP_CHMOD] = "chmod",
	[GOP_CHOWN] = "chown", [GOP_SETATTR] = "setattr", [GOP_SETXATTR] = "setxattr",
	[GOP_REMOVEXATTR] = "removexattr", [GOP_IOCTL] = "ioctl-setflags",
	[GOP_BDEV_WRITE] = "blockdev-write", [GOP_BPF] = "bpf", [GOP_PTRACE] = "ptrace",
	[GOP_KILL] = "kill", [GOP_MOUNT] = "mount", [GOP_UMOUNT] = "umount",
	[GOP_MODULE] = "load-module", [GOP_LOCKDOWN] = "lockdown",
	[GOP_EXEC] = "exec", [GOP_MAP_EXEC] = "map-exec",
};

static const char *reason_names[] = {
	[R_NONE] = "",
	[R_HASH_MISMATCH] = "sha256 of the executable does not match the registered gateway",
	[R_HASH_ERROR] = "cannot hash the executable",
	[R_TRACED] = "started under ptrace",
	[R_INJECT_ENV] = "code-injection environment variable (NODE_OPTIONS, NODE_PATH, LD_*)",
	[R_INJECT_ARG] = "code-injection argument (--require, --inspect, --import, -e ...)",
	[R_ARGS_TOO_BIG] = "arguments or environment too large to check",
	[R_SCAN_BUSY] = "concurrent exec check, start it again",
	[R_UNKNOWN_LIB] = "mapped code from a file that is not a registered gateway library",
};

static const char *bpf_cmd_name(unsigned cmd)
{
	static const char *n[] = { "MAP_CREATE", "MAP_LOOKUP_ELEM", "MAP_UPDATE_ELEM",
		"MAP_DELETE_ELEM", "MAP_GET_NEXT_KEY", "PROG_LOAD", "OBJ_PIN", "OBJ_GET",
		"PROG_ATTACH", "PROG_DETACH", "PROG_TEST_RUN", "PROG_GET_NEXT_ID",
		"MAP_GET_NEXT_ID", "PROG_GET_FD_BY_ID", "MAP_GET_FD_BY_ID", "OBJ_GET_INFO_BY_FD",
		"PROG_QUERY", "RAW_TRACEPOINT_OPEN", "BTF_LOAD", "BTF_GET_FD_BY_ID",
		"TASK_FD_QUERY", "MAP_LOOKUP_AND_DELETE_ELEM", "MAP_FREEZE", "BTF_GET_NEXT_ID",
		"MAP_LOOKUP_BATCH", "MAP_LOOKUP_AND_DELETE_BATCH", "MAP_UPDATE_BATCH",
		"MAP_DELETE_BATCH", "LINK_CREATE", "LINK_UPDATE", "LINK_GET_FD_BY_ID",
		"LINK_GET_NEXT_ID", "ENABLE_STATS", "ITER_CREATE", "LINK_DETACH", "PROG_BIND_MAP" };
	return cmd < sizeof(n) / sizeof(n[0]) ? n[cmd] : "?";
}

/* Mount point of a filesystem given its kernel dev, from mountinfo. */
static void mount_point(uint32_t kdev, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], root[PATH_MAX], mp[PATH_MAX];
	unsigned maj, min;
	bool found = false;

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, mp) != 4)
			continue;
		if (((maj << 20) | min) != kdev)
			continue;
		if (!found || !strcmp(root, "/")) {
			snprintf(out, n, "%s", strcmp(mp, "/") ? mp : "");
			found = true;
			if (!strcmp(root, "/"))
				break;
		}
	}
	fclose(f);
}

static void event_path(const struct event *e, char *out, size_t n)
{
	size_t k;

	switch (e->op) {
	case GOP_BPF:
		snprintf(out, n, "bpf:%s", bpf_cmd_name(e->reason));
		return;
	case GOP_PTRACE:
		snprintf(out, n, "pid:%u", e->reason);
		return;
	case GOP_KILL:
		snprintf(out, n, "pid:%llu signal:%u", (unsigned long long)e->extra, e->reason);
		return;
	case GOP_LOCKDOWN:
		snprintf(out, n, "lockdown-reason:%u", e->reason);
		return;
	}
	if (!e->ncomp && !e->dev) {
		snprintf(out, n, "%s", e->op == GOP_MODULE ? "module:(from memory)" : "");
		return;
	}
	mount_point(e->dev, out, n);
	k = strlen(out);
	for (int i = (int)e->ncomp - 1; i >= 0 && k + 2 < n; i--) {
		char comp[EV_COMP_LEN + 1];
		memcpy(comp, e->comp[i], EV_COMP_LEN);
		comp[EV_COMP_LEN] = 0;
		k += snprintf(out + k, n - k, "/%s", comp);
	}
	if (!k)
		snprintf(out, n, "/");
}

static void write_line(struct guard *g, const char *time, unsigned pid, const char *exe,
		       const char *op, const char *path, const char *verdict,
		       const char *comm, unsigned uid, const char *reason)
{
	FILE *outs[2] = { stdout, g->events_out };
	for (int i = 0; i < 2; i++) {
		FILE *f = outs[i];
		if (!f)
			continue;
		fprintf(f, "{\"time\":\"%s\",\"pid\":%u,\"exe\":", time, pid);
		json_str(f, exe);
		fputs(",\"op\":", f);
		json_str(f, op);
		fputs(",\"path\":", f);
		json_str(f, path);
		fprintf(f, ",\"verdict\":\"%s\",\"uid\":%u,\"comm\":", verdict, uid);
		json_str(f, comm);
		if (reason && *reason) {
			fputs(",\"reason\":", f);
			json_str(f, reason);
		}
		fputs("}\n", f);
		fflush(f);
	}
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct guard *g = ctx;
	const struct event *e = data;
	char time[40], path[PATH_MAX], exe[PATH_MAX], link[64], comm[17];
	const char *reason = "";
	ssize_t n;

	if (len < sizeof(*e))
		return 0;
	iso_time_from_boot(e->ts_boot_ns, time, sizeof(time));
	event_path(e, path, sizeof(path));
	memcpy(comm, e->comm, 16);
	comm[16] = 0;
	snprintf(link, sizeof(link), "/proc/%u/exe", e->tgid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = 0;
	else
		snprintf(exe, sizeof(exe), "%s", comm); /* already gone */
	if ((e->op == GOP_EXEC || e->op == GOP_MAP_EXEC) &&
	    e->reason < sizeof(reason_names) / sizeof(reason_names[0]))
		reason = reason_names[e->reason];
	write_line(g, time, e->tgid, exe, e->op < GOP_MAX && op_names[e->op] ? op_names[e->op] : "?",
		   path, e->verdict == V_DENY ? "deny" : "unauthenticated", comm, e->uid, reason);
	return 0;
}

int events_open(struct guard *g)
{
	g->rb = ring_buffer__new(bpf_map__fd(g->skel->maps.events), on_event, g, NULL);
	if (!g->rb)
		die("cannot open the event ring buffer (%s)", strerror(errno));
	return 0;
}

/* Records made by the daemon itself (a refused socket request). */
void events_audit(struct guard *g, pid_t pid, const char *op, const char *path,
		  const char *verdict, const char *reason)
{
	char time[40], exe[PATH_MAX], link[64];
	ssize_t n;

	iso_time_from_boot(boot_ns(), time, sizeof(time));
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = 0;
	write_line(g, time, pid, exe, op, path, verdict, "", 0, reason);
}
