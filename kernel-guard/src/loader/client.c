/* The CLI side: talks to the running daemon over its socket. Once the
 * guard is locked only the daemon may use bpf(), so every command that
 * touches the maps (seal, cbt) goes through it. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"

static void put_json_str(char *out, size_t n, const char *s)
{
	size_t k = strlen(out);
	if (k + 2 >= n)
		return;
	out[k++] = '"';
	for (; *s && k + 8 < n; s++) {
		if (*s == '"' || *s == '\\')
			out[k++] = '\\';
		out[k++] = *s;
	}
	out[k++] = '"';
	out[k] = 0;
}

/* Sends one request line and prints the reply; exit status 0 when ok. */
static int request(const char *sock, const char *line)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char buf[8192];
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		fprintf(stderr, "bulwark-guard: cannot reach the guard daemon at %s (%s): is "
			"`bulwark-guard run` running?\n", sock, strerror(errno));
		return 3;
	}
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0) {
		fprintf(stderr, "bulwark-guard: cannot send to %s (%s)\n", sock, strerror(errno));
		return 3;
	}
	while (n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += r;
		buf[n] = 0;
		if (strchr(buf, '\n'))
			break;
	}
	close(fd);
	buf[n] = 0;
	fputs(buf, stdout);
	bool ok = false;
	if (json_get_bool(buf, "ok", &ok) || !ok) {
		char err[4096];
		if (!json_get_str(buf, "error", err, sizeof(err)))
			fprintf(stderr, "bulwark-guard: %s\n", err);
		return 1;
	}
	return 0;
}

int client_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, 0, 'S' }, { "retain", required_argument, 0, 'r' },
		{ "hold", no_argument, 0, 'h' }, { "dev", required_argument, 0, 'd' },
		{ "out", required_argument, 0, 'o' }, { "reset", no_argument, 0, 'R' },
		{ 0 } };
	const char *sock = DEFAULT_SOCKET, *retain = NULL, *dev = NULL, *out = NULL;
	const char *cmd = argv[1];
	bool hold = false, reset = false;
	char line[PATH_MAX * 2 + 256] = "";
	int o;

	optind = 2;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'S': sock = optarg; break;
		case 'r': retain = optarg; break;
		case 'h': hold = true; break;
		case 'd': dev = optarg; break;
		case 'o': out = optarg; break;
		case 'R': reset = true; break;
		default: return 2;
		}
	}
	if (!strcmp(cmd, "lsm")) {
		char lsm[256];
		int r = lsm_has_bpf(lsm, sizeof(lsm));
		printf("%s (lsm=%s)\n", r == 1 ? "BPF LSM active" : "no BPF LSM in this kernel", lsm);
		return r == 1 ? 0 : 1;
	}
	if (!strcmp(cmd, "unload")) {
		struct stat st;
		if (stat(DEFAULT_PIN_DIR, &st) == 0) {
			fprintf(stderr, "bulwark-guard: the guard is locked (%s exists): it cannot be "
				"unloaded; unloading requires a reboot.\n", DEFAULT_PIN_DIR);
			return 1;
		}
		fprintf(stderr, "bulwark-guard: the guard is not locked: stop the `bulwark-guard run` "
			"daemon (SIGTERM) to unload it.\n");
		return 0;
	}
	if (!strcmp(cmd, "status"))
		return request(sock, "{\"id\":1,\"op\":\"status\"}");
	if (!strcmp(cmd, "seal")) {
		if (optind >= argc || (!retain && !hold)) {
			fputs("usage: bulwark-guard seal PATH --retain SECONDS | --hold\n", stderr);
			return 2;
		}
		char abs[PATH_MAX];
		if (!realpath(argv[optind], abs))
			snprintf(abs, sizeof(abs), "%s", argv[optind]);
		strcat(line, "{\"id\":1,\"op\":\"seal\",\"path\":");
		put_json_str(line, sizeof(line), abs);
		size_t k = strlen(line);
		if (hold)
			snprintf(line + k, sizeof(line) - k, ",\"hold\":true}");
		else
			snprintf(line + k, sizeof(line) - k, ",\"retainSeconds\":%g}", strtod(retain, NULL));
		return request(sock, line);
	}
	if (!strcmp(cmd, "cbt")) {
		const char *sub = optind < argc ? argv[optind] : "";
		if (!dev || (strcmp(sub, "start") && strcmp(sub, "dump") && strcmp(sub, "reset")) ||
		    (!strcmp(sub, "dump") && !out)) {
			fputs("usage: bulwark-guard cbt start --dev DEV\n"
			      "       bulwark-guard cbt dump --dev DEV --out FILE [--reset]\n"
			      "       bulwark-guard cbt reset --dev DEV\n", stderr);
			return 2;
		}
		snprintf(line, sizeof(line), "{\"id\":1,\"op\":\"cbt-%s\",\"dev\":", sub);
		put_json_str(line, sizeof(line), dev);
		if (out) {
			char abs[PATH_MAX];
			if (out[0] != '/' && getcwd(abs, sizeof(abs))) {
				strncat(abs, "/", sizeof(abs) - strlen(abs) - 1);
				strncat(abs, out, sizeof(abs) - strlen(abs) - 1);
			} else {
				snprintf(abs, sizeof(abs), "%s", out);
			}
			strcat(line, ",\"out\":");
			put_json_str(line, sizeof(line), abs);
		}
		strcat(line, reset ? ",\"reset\":true}" : "}");
		return request(sock, line);
	}
	fprintf(stderr, "bulwark-guard: unknown command '%s' (run, status, seal, cbt, lsm, unload)\n", cmd);
	return 2;
}
