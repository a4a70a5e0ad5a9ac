/* The daemon's unix-socket server: newline-delimited JSON requests and
 * replies (protocol in README.md, "Socket protocol"), plus the event pump. */
#include <bpf/libbpf.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "guard.skel.h"

#define MAX_CLIENTS 32
#define LINE_MAX_BYTES 8192

struct client {
	int fd;
	pid_t pid;
	uid_t uid;
	size_t n;
	char buf[LINE_MAX_BYTES];
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
	char out[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, sizeof(out) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(out) - 2)
		n = sizeof(out) - 2;
	out[n++] = '\n';
	ssize_t w = write(fd, out, n);
	(void)w;
}

/* JSON-escaped copy of s (for values built into replies). */
static const char *esc(const char *s, char *out, size_t n)
{
	size_t k = 0;
	for (; *s && k + 7 < n; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\') {
			out[k++] = '\\';
			out[k++] = c;
		} else if (c < 0x20) {
			k += snprintf(out + k, n - k, "\\u%04x", c);
		} else {
			out[k++] = c;
		}
	}
	out[k] = 0;
	return out;
}

static void reply_error(int fd, const char *id, const char *msg)
{
	char e[2048];
	reply(fd, "{\"id\":%s,\"ok\":false,\"error\":\"%s\"}", id, esc(msg, e, sizeof(e)));
}

static void handle_status(struct guard *g, struct client *c, const char *id)
{
	char lsm[256], e[1024], why[512] = "";
	bool bpf_lsm = lsm_has_bpf(lsm, sizeof(lsm)) == 1;
	bool auth = policy_peer_is_gateway(g, c->pid);
	bool prot = bpf_lsm && g->lock && auth;

	if (!bpf_lsm)
		snprintf(why, sizeof(why), "no BPF LSM in this kernel (lsm=%s)", lsm);
	else if (!g->lock)
		snprintf(why, sizeof(why), "the guard is not locked: root can still unload it "
			 "(start bulwark-guard run with --lock)");
	else if (!auth)
		snprintf(why, sizeof(why), "this process (pid %d) is not the authenticated gateway: "
			 "run the registered gateway executable, without NODE_OPTIONS, LD_* or "
			 "--require/--inspect, not under a debugger", c->pid);
	char stores[2048] = "", one[PATH_MAX + 8];
	for (int i = 0; i < g->nstores; i++) {
		snprintf(one, sizeof(one), "%s\"%s\"", i ? "," : "", esc(g->stores[i], e, sizeof(e)));
		strncat(stores, one, sizeof(stores) - strlen(stores) - 1);
	}
	reply(c->fd, "{\"id\":%s,\"ok\":true,\"v\":1,\"protected\":%s%s%s%s,\"locked\":%s,"
		     "\"authenticated\":%s,\"stores\":[%s],\"guardNowNs\":\"%llu\"}",
	      id, prot ? "true" : "false", prot ? "" : ",\"reason\":\"",
	      prot ? "" : esc(why, e, sizeof(e)), prot ? "" : "\"", g->lock ? "true" : "false",
	      auth ? "true" : "false", stores, (unsigned long long)boot_ns());
}

static void handle_seal(struct guard *g, struct client *c, const char *id, const char *line)
{
	char path[PATH_MAX], err[PATH_MAX + 256];
	double retain = -1;
	bool hold = false;
	uint64_t until;

	if (json_get_str(line, "path", path, sizeof(path)))
		return reply_error(c->fd, id, "seal: missing \"path\"");
	json_get_bool(line, "hold", &hold);
	if (json_get_num(line, "retainSeconds", &retain) && !hold)
		return reply_error(c->fd, id, "seal: missing \"retainSeconds\" (or \"hold\":true)");
	if (!policy_peer_is_gateway(g, c->pid)) {
		snprintf(err, sizeof(err), "seal refused: pid %d is not the authenticated gateway "
			 "executable; only the gateway may seal files", c->pid);
		events_audit(g, c->pid, "seal-request", path, "deny", err);
		return reply_error(c->fd, id, err);
	}
	if (policy_seal(g, path, retain, hold, &until, err, sizeof(err)))
		return reply_error(c->fd, id, err);
	reply(c->fd, "{\"id\":%s,\"ok\":true,\"retainUntilNs\":\"%llu\",\"guardNowNs\":\"%llu\"}",
	      id, (unsigned long long)until, (unsigned long long)boot_ns());
}

static void handle_cbt(struct guard *g, struct client *c, const char *id, const char *op,
		       const char *line)
{
	char dev[256], out[PATH_MAX], err[PATH_MAX + 256];
	bool reset = false;
	struct cbt_slot *s = NULL;
	int r;

	if (c->uid != 0)
		return reply_error(c->fd, id, "cbt: only root may control the change tracker");
	if (json_get_str(line, "dev", dev, sizeof(dev)))
		return reply_error(c->fd, id, "cbt: missing \"dev\"");
	if (!strcmp(op, "cbt-start")) {
		r = cbt_start(g, dev, err, sizeof(err), &s);
	} else if (!strcmp(op, "cbt-dump")) {
		if (json_get_str(line, "out", out, sizeof(out)))
			return reply_error(c->fd, id, "cbt-dump: missing \"out\" (the file to write)");
		json_get_bool(line, "reset", &reset);
		r = cbt_dump(g, dev, out, reset, err, sizeof(err), &s);
	} else {
		r = cbt_reset(g, dev, err, sizeof(err), &s);
	}
	if (r)
		return reply_error(c->fd, id, err);
	reply(c->fd, "{\"id\":%s,\"ok\":true,\"generation\":\"%016llx\",\"sequence\":%llu,"
		     "\"blocks\":%llu,\"deviceSizeBytes\":%llu}",
	      id, (unsigned long long)s->generation, (unsigned long long)s->sequence,
	      (unsigned long long)s->nblocks, (unsigned long long)s->size_bytes);
}

static void handle_line(struct guard *g, struct client *c, const char *line)
{
	char op[64], id[32] = "null";
	double idn;

	if (!json_get_num(line, "id", &idn))
		snprintf(id, sizeof(id), "%.0f", idn);
	if (json_get_str(line, "op", op, sizeof(op)))
		return reply_error(c->fd, id, "request without \"op\"");
	if (!strcmp(op, "status"))
		handle_status(g, c, id);
	else if (!strcmp(op, "seal"))
		handle_seal(g, c, id, line);
	else if (!strncmp(op, "cbt-", 4) && (!strcmp(op, "cbt-start") || !strcmp(op, "cbt-dump") ||
					    !strcmp(op, "cbt-reset")))
		handle_cbt(g, c, id, op, line);
	else {
		char e[128];
		snprintf(e, sizeof(e), "unknown op \"%.40s\" (status, seal, cbt-start, cbt-dump, cbt-reset)", op);
		reply_error(c->fd, id, e);
	}
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(a.sun_path))
		die("--socket %s: path too long", path);
	strcpy(a.sun_path, path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16))
		die("cannot listen on %s (%s)", path, strerror(errno));
	chmod(path, 0666); /* anyone may ask; the daemon checks who is asking */
	return fd;
}

int server_run(struct guard *g)
{
	struct client *cl[MAX_CLIENTS] = { 0 };
	struct pollfd pf[MAX_CLIENTS + 2];
	int lfd = listen_on(g->socket_path);

	if (g->lock)
		policy_protect_path(g, g->socket_path);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	fprintf(stderr, "bulwark-guard: ready on %s\n", g->socket_path);

	while (!stop) {
		int n = 0;
		pf[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pf[n++] = (struct pollfd){ .fd = ring_buffer__epoll_fd(g->rb), .events = POLLIN };
		for (int i = 0; i < MAX_CLIENTS; i++)
			pf[n++] = (struct pollfd){ .fd = cl[i] ? cl[i]->fd : -1, .events = POLLIN };
		if (poll(pf, n, 500) < 0 && errno != EINTR)
			die("poll failed (%s)", strerror(errno));
		ring_buffer__consume(g->rb);
		if (pf[0].revents & POLLIN) {
			int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			struct ucred cr;
			socklen_t crl = sizeof(cr);
			int slot = -1;
			for (int i = 0; i < MAX_CLIENTS && slot < 0; i++)
				if (!cl[i])
					slot = i;
			if (fd >= 0 && (slot < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl))) {
				close(fd);
			} else if (fd >= 0) {
				cl[slot] = calloc(1, sizeof(struct client));
				cl[slot]->fd = fd;
				cl[slot]->pid = cr.pid;
				cl[slot]->uid = cr.uid;
			}
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			struct client *c = cl[i];
			if (!c || !(pf[2 + i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t r = read(c->fd, c->buf + c->n, sizeof(c->buf) - 1 - c->n);
			if (r <= 0) {
				close(c->fd);
				free(c);
				cl[i] = NULL;
				continue;
			}
			c->n += r;
			c->buf[c->n] = 0;
			char *nl;
			while ((nl = strchr(c->buf, '\n'))) {
				*nl = 0;
				handle_line(g, c, c->buf);
				size_t used = nl + 1 - c->buf;
				memmove(c->buf, nl + 1, c->n - used + 1);
				c->n -= used;
			}
			if (c->n >= sizeof(c->buf) - 1) {
				reply_error(c->fd, "null", "request line too long");
				close(c->fd);
				free(c);
				cl[i] = NULL;
			}
		}
	}
	unlink(g->socket_path);
	return 0;
}
