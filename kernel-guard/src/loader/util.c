/* Small helpers: device numbers, clocks, a flat-JSON reader, errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>

#include "common.h"

/* The kernel's internal dev_t (MKDEV: major << 20 | minor), which is what
 * s_dev, i_rdev and bd_dev hold; userspace st_dev encodes it differently. */
uint32_t kdev_of(dev_t d)
{
	return (major(d) << 20) | minor(d);
}

/* The guard clock: CLOCK_BOOTTIME, same as bpf_ktime_get_boot_ns(). Setting
 * the wall clock does not move it. */
uint64_t boot_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void iso_time_from_boot(uint64_t ts_boot_ns, char *out, size_t n)
{
	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	int64_t now_rt = (int64_t)rt.tv_sec * 1000000000ll + rt.tv_nsec;
	int64_t t = now_rt - (int64_t)(boot_ns() - ts_boot_ns);
	time_t s = t / 1000000000ll;
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03dZ", (int)((t / 1000000) % 1000));
}

void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Finds "key": in a flat JSON object and returns a pointer to its value. */
static const char *json_find(const char *json, const char *key)
{
	size_t kl = strlen(key);
	const char *p = json;

	while ((p = strchr(p, '"'))) {
		if (!strncmp(p + 1, key, kl) && p[1 + kl] == '"') {
			const char *q = p + 2 + kl;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == ':') {
				q++;
				while (*q == ' ' || *q == '\t')
					q++;
				return q;
			}
		}
		/* skip this string */
		p++;
		while (*p && *p != '"') {
			if (*p == '\\' && p[1])
				p++;
			p++;
		}
		if (!*p)
			return NULL;
		p++;
	}
	return NULL;
}

int json_get_str(const char *json, const char *key, char *out, size_t n)
{
	const char *p = json_find(json, key);
	size_t k = 0;

	if (!p || *p != '"')
		return -1;
	for (p++; *p && *p != '"'; p++) {
		char c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'u': {
				unsigned v = 0;
				if (sscanf(p + 1, "%4x", &v) != 1)
					return -1;
				p += 4;
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			case 0: return -1;
			default: c = *p;
			}
		}
		if (k + 1 >= n)
			return -1;
		out[k++] = c;
	}
	if (*p != '"')
		return -1;
	out[k] = 0;
	return 0;
}

int json_get_num(const char *json, const char *key, double *out)
{
	const char *p = json_find(json, key);
	char *end;

	if (!p)
		return -1;
	errno = 0;
	*out = strtod(p, &end);
	return end == p || errno ? -1 : 0;
}

int json_get_bool(const char *json, const char *key, bool *out)
{
	const char *p = json_find(json, key);

	if (!p)
		return -1;
	if (!strncmp(p, "true", 4))
		*out = true;
	else if (!strncmp(p, "false", 5))
		*out = false;
	else
		return -1;
	return 0;
}

/* 1 when "bpf" is among the active LSMs, 0 when not, -1 when unknown. */
int lsm_has_bpf(char *lsm, size_t n)
{
	FILE *f = fopen("/sys/kernel/security/lsm", "r");
	if (!f) {
		snprintf(lsm, n, "unknown: /sys/kernel/security/lsm unreadable (%s)", strerror(errno));
		return -1;
	}
	if (!fgets(lsm, n, f))
		lsm[0] = 0;
	fclose(f);
	lsm[strcspn(lsm, "\n")] = 0;
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", lsm);
	for (char *t = strtok(copy, ","); t; t = strtok(NULL, ","))
		if (!strcmp(t, "bpf"))
			return 1;
	return 0;
}

void die(const char *fmt, ...)
{
	va_list ap;
	fputs("bulwark-guard: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}
