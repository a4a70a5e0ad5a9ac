/* SHA-256 (FIPS 180-4): the static loader has no crypto library. */
#ifndef BW_SHA256_H
#define BW_SHA256_H
#include <stddef.h>
#include <stdint.h>

struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t n;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
void sha256_final(struct sha256 *s, uint8_t out[32]);
/* Hash a whole file; 0 on success, -errno on failure. */
int sha256_file(const char *path, uint8_t out[32]);
void hex32(const uint8_t in[32], char out[65]);
int unhex32(const char *in, uint8_t out[32]);
#endif
