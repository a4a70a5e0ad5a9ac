/* Attack helper for the in-guest test: one syscall per command, reporting
 * "OK" or "ERR <ERRNO>" so the harness can insist on EPERM. Static. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sha256.h"
#include <unistd.h>

static const char *ename(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case EBUSY: return "EBUSY";
	case EINVAL: return "EINVAL";
	case ETXTBSY: return "ETXTBSY";
	case EROFS: return "EROFS";
	default: return strerror(e);
	}
}

static int result(int r)
{
	if (r < 0) {
		printf("ERR %s\n", ename(errno));
		return 1;
	}
	printf("OK\n");
	return 0;
}

/* Run a program that asked to be traced (PTRACE_TRACEME) before its exec,
 * then let it go: the guard must not authenticate what a tracer could
 * have changed. */
static int traceme_exec(char **argv)
{
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		ptrace(PTRACE_TRACEME, 0, 0, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	waitpid(pid, &st, 0); /* stopped by SIGTRAP at the exec */
	ptrace(PTRACE_DETACH, pid, 0, 0);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint32_t get32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Verify a BWCBT001 dump (CBT-FORMAT.md) and compare its dirty blocks with
 * a comma-separated list. Prints "OK gen=HEX seq=N" or what differs. */
static int cbt_check(const char *file, const char *want, const char *want_gen)
{
	static uint8_t buf[1 << 22];
	FILE *f = fopen(file, "rb");
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	uint8_t d[32];
	struct sha256 h;
	if (f)
		fclose(f);
	if (n < 64 + 32 || memcmp(buf, "BWCBT001", 8)) {
		printf("BAD header (%zu bytes)\n", n);
		return 1;
	}
	uint32_t ver = get32(buf + 8), bs = get32(buf + 12);
	uint64_t size = get64(buf + 16), gen = get64(buf + 24), seq = get64(buf + 32);
	uint64_t blocks = (size + bs - 1) / bs, nb = (blocks + 7) / 8;
	if (ver != 1 || bs != 4096 || 64 + nb + 32 != n || !gen) {
		printf("BAD version %u blocksize %u size %llu len %zu gen %llx\n", ver, bs,
		       (unsigned long long)size, n, (unsigned long long)gen);
		return 1;
	}
	for (int i = 48; i < 64; i++)
		if (buf[i]) {
			printf("BAD reserved bytes not zero\n");
			return 1;
		}
	sha256_init(&h);
	sha256_update(&h, buf, 64 + nb);
	sha256_final(&h, d);
	if (memcmp(d, buf + 64 + nb, 32)) {
		printf("BAD sha256\n");
		return 1;
	}
	static uint8_t exp[1 << 20];
	memset(exp, 0, nb);
	char list[4096];
	snprintf(list, sizeof(list), "%s", want);
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
		if (*t && strtoull(t, NULL, 10) < blocks)
			exp[strtoull(t, NULL, 10) / 8] |= 1 << (strtoull(t, NULL, 10) % 8);
	int bad = 0;
	for (uint64_t b = 0; b < blocks; b++) {
		int got = buf[64 + b / 8] >> (b % 8) & 1, w = exp[b / 8] >> (b % 8) & 1;
		if (got != w) {
			if (bad++ < 10)
				printf("block %llu: %s\n", (unsigned long long)b, got ? "set, not expected" : "expected, not set");
		}
	}
	if (want_gen && strtoull(want_gen, NULL, 16) != gen) {
		printf("generation %016llx, expected %s\n", (unsigned long long)gen, want_gen);
		bad++;
	}
	if (bad)
		return 1;
	printf("OK gen=%016llx seq=%llu major=%u minor=%u\n", (unsigned long long)gen,
	       (unsigned long long)seq, get32(buf + 40), get32(buf + 44));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: kg-attack ptrace PID | procmem PID | truncate PATH | "
			"write-store PATH | bpf-load | kill PID SIG\n");
		return 2;
	}
	const char *c = argv[1];
	if (!strcmp(c, "ptrace") && argc > 2)
		return result(ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0) < 0 ? -1 : 0);
	if (!strcmp(c, "procmem") && argc > 2) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%s/mem", argv[2]);
		return result(open(p, O_RDWR));
	}
	if (!strcmp(c, "truncate") && argc > 2)
		return result(truncate(argv[2], 0));
	if (!strcmp(c, "write-store") && argc > 2) {
		int fd = open(argv[2], O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0)
			return result(-1);
		return result(write(fd, "evil\n", 5) == 5 ? 0 : -1);
	}
	if (!strcmp(c, "sha256") && argc > 2) {
		uint8_t d[32];
		char hex[65];
		int r = sha256_file(argv[2], d);
		if (r)
			return result(-1);
		hex32(d, hex);
		printf("%s\n", hex);
		return 0;
	}
	if (!strcmp(c, "tmpfile") && argc > 2)
		return result(open(argv[2], O_TMPFILE | O_WRONLY, 0644));
	if (!strcmp(c, "bpf-load")) {
		/* the smallest valid program: r0 = 0; exit */
		struct bpf_insn insns[2] = {
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0 },
			{ .code = BPF_JMP | BPF_EXIT } };
		union bpf_attr a;
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
		a.insns = (unsigned long)insns;
		a.insn_cnt = 2;
		a.license = (unsigned long)"GPL";
		return result(syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a)) < 0 ? -1 : 0);
	}
	if (!strcmp(c, "traceme-exec") && argc > 2)
		return traceme_exec(argv + 2);
	if (!strcmp(c, "cbt-check") && argc > 3)
		return cbt_check(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
	if (!strcmp(c, "kill") && argc > 3)
		return result(kill(atoi(argv[2]), atoi(argv[3])));
	fprintf(stderr, "kg-attack: unknown command %s\n", c);
	return 2;
}
