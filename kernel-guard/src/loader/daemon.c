/* `bulwark-guard run`: load the guard and the tracker, fill the policy,
 * optionally lock, then serve the socket and pump events. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cbt.skel.h"
#include "common.h"
#include "guard.skel.h"

static const char run_usage[] =
	"usage: bulwark-guard run --store DIR [--store DIR]... --gateway-exe PATH\n"
	"           [--gateway-sha256 HEX] [--gateway-lib PATH]... [--lock]\n"
	"           [--socket PATH] [--events FILE] [--pin-dir DIR] [--cbt-max-gib N]\n";

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !getenv("BULWARK_GUARD_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void attach_all(struct guard *g)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, g->skel->obj) {
		struct bpf_link *l = bpf_program__attach(prog);
		if (!l)
			die("cannot attach %s (%s)", bpf_program__name(prog), strerror(errno));
		g->links[g->nlinks] = l;
		g->link_names[g->nlinks++] = bpf_program__name(prog);
	}
}

int run_main(int argc, char **argv)
{
	static struct guard g = { .socket_path = DEFAULT_SOCKET, .pin_dir = DEFAULT_PIN_DIR,
				  .cbt_max_gib = 16 };
	static const struct option opts[] = {
		{ "store", required_argument, 0, 's' },
		{ "gateway-exe", required_argument, 0, 'x' },
		{ "gateway-sha256", required_argument, 0, 'H' },
		{ "gateway-lib", required_argument, 0, 'l' },
		{ "lock", no_argument, 0, 'L' },
		{ "socket", required_argument, 0, 'S' },
		{ "events", required_argument, 0, 'e' },
		{ "pin-dir", required_argument, 0, 'p' },
		{ "cbt-max-gib", required_argument, 0, 'c' },
		{ 0 } };
	const char *stores[MAX_STORES], *events = NULL;
	int nstores = 0, o;
	char lsm[256];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			if (nstores == MAX_STORES)
				die("too many --store (at most %d)", MAX_STORES);
			stores[nstores++] = optarg;
			break;
		case 'x': g.gateway_exe = optarg; break;
		case 'H': g.gateway_sha256 = optarg; break;
		case 'l':
			if (g.nlibs == MAX_LIBS)
				die("too many --gateway-lib (at most %d)", MAX_LIBS);
			g.libs[g.nlibs++] = optarg;
			break;
		case 'L': g.lock = true; break;
		case 'S': g.socket_path = optarg; break;
		case 'e': events = optarg; break;
		case 'p': g.pin_dir = optarg; break;
		case 'c': g.cbt_max_gib = strtoull(optarg, NULL, 10); break;
		default: fputs(run_usage, stderr); return 2;
		}
	}
	if (!g.gateway_exe && nstores)
		die("--store needs --gateway-exe: someone must be allowed to write the store\n%s", run_usage);
	if (!g.cbt_max_gib || g.cbt_max_gib > 4096)
		die("--cbt-max-gib must be 1..4096");
	/* BULWARK_GUARD_LOAD_ONLY=1: only run the verifier, then exit (a build check
	 * that works on kernels without the BPF LSM). */
	bool load_only = getenv("BULWARK_GUARD_LOAD_ONLY") != NULL;
	if (!load_only && lsm_has_bpf(lsm, sizeof(lsm)) != 1)
		die("no BPF LSM in this kernel (lsm=%s): boot with lsm=...,bpf (CONFIG_BPF_LSM=y); "
		    "the store is UNPROTECTED", lsm);
	if (events && !(g.events_out = fopen(events, "a")))
		die("--events %s: %s", events, strerror(errno));

	libbpf_set_print(libbpf_log);
	struct rlimit r = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &r);

	g.skel = guard_bpf__open_and_load();
	if (!g.skel)
		die("cannot load the guard BPF programs (%s); BULWARK_GUARD_DEBUG=1 shows the "
		    "verifier log", strerror(errno));
	if (load_only) {
		fprintf(stderr, "bulwark-guard: the guard programs pass the verifier\n");
		return 0;
	}
	/* Who the guard daemon is, before any hook runs. */
	uint32_t z = 0;
	struct guard_config c = { .guard_tgid = getpid() };
	if (bpf_map__update_elem(g.skel->maps.guard_cfg, &z, 4, &c, sizeof(c), BPF_ANY))
		die("cannot write the guard config (%s)", strerror(errno));

	for (int i = 0; i < nstores; i++)
		policy_add_store(&g, stores[i]);
	if (g.gateway_exe)
		policy_add_exe(&g, g.gateway_exe, EXE_GATEWAY, g.gateway_sha256);
	for (int i = 0; i < g.nlibs; i++)
		policy_add_exe(&g, g.libs[i], EXE_LIB, NULL);

	events_open(&g);
	attach_all(&g);
	cbt_setup(&g);
	if (g.lock) {
		policy_lock(&g);
		fprintf(stderr, "bulwark-guard: locked. The guard stays loaded until reboot: "
			"unloading requires a reboot.\n");
	} else {
		fprintf(stderr, "bulwark-guard: NOT locked (no --lock): stopping this daemon "
			"unloads the guard.\n");
	}
	for (int i = 0; i < g.nstores; i++)
		fprintf(stderr, "bulwark-guard: protecting store %s\n", g.stores[i]);
	return server_run(&g);
}
