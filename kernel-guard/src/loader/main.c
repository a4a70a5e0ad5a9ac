/* bulwark-guard: loader, daemon and client of the Bulwark kernel guard. */
#include <stdio.h>
#include <string.h>

#include "common.h"

int run_main(int argc, char **argv);

static const char usage[] =
	"usage: bulwark-guard COMMAND [options]\n"
	"  run --store DIR --gateway-exe PATH [--lock] ...   load the guard and serve its socket\n"
	"  status                                            ask the daemon how protected the caller is\n"
	"  seal PATH --retain SECONDS | --hold               seal a store file (gateway only)\n"
	"  cbt start|dump|reset --dev DEV [--out FILE] [--reset]   block change tracker\n"
	"  lsm                                               is a BPF LSM active in this kernel?\n"
	"  unload                                            explains how the guard is unloaded\n"
	"common option: --socket PATH (default " DEFAULT_SOCKET ")\n";

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "run"))
		return run_main(argc - 1, argv + 1);
	return client_main(argc, argv);
}
