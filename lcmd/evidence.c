/*
 * Probe evidence fingerprints.  Evidence is what a probe saw (a pane's last
 * lines, an error); two probes that saw the same thing apart from clocks
 * must hash the same, so detecting can count "same evidence" attempts.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <nettle/sha2.h>

#include "lcmd/lcmd.h"

static size_t
digits(const char *s, size_t max)
{
	size_t n = 0;

	while (n < max && isdigit((unsigned char)s[n]))
		n++;
	return n;
}

/* Length of a hh:mm:ss(.frac) time at s, or 0. */
static size_t
clock_len(const char *s)
{
	size_t n;

	if (digits(s, 2) < 1 || s[digits(s, 2)] != ':')
		return 0;
	n = digits(s, 2) + 1;
	if (digits(s + n, 2) != 2 || s[n + 2] != ':')
		return 0;
	n += 3;
	if (digits(s + n, 2) != 2)
		return 0;
	n += 2;
	if (s[n] == '.' || s[n] == ',')
		if (digits(s + n + 1, 9) > 0)
			n += 1 + digits(s + n + 1, 9);
	return n;
}

/* Length of an ISO-8601 datetime (date, T or space, time, zone) at s, or 0. */
static size_t
iso_len(const char *s)
{
	size_t n, c;

	if (digits(s, 4) != 4 || s[4] != '-' || digits(s + 5, 2) != 2 || s[7] != '-' ||
	    digits(s + 8, 2) != 2)
		return 0;
	n = 10;
	if ((s[n] == 'T' || s[n] == ' ') && (c = clock_len(s + n + 1)) > 0) {
		n += 1 + c;
		if (s[n] == 'Z')
			n++;
		else if ((s[n] == '+' || s[n] == '-') && digits(s + n + 1, 2) == 2) {
			n += 3;
			if (s[n] == ':' && digits(s + n + 1, 2) == 2)
				n += 3;
			else if (digits(s + n, 2) == 2)
				n += 2;
		}
	}
	return n;
}

void
evidence_normalize(const char *in, char *out, size_t outlen)
{
	size_t o = 0;
	bool space = false;

	if (outlen == 0)
		return;
	while (*in != '\0' && o + 1 < outlen) {
		bool at_word = o == 0 || !isalnum((unsigned char)in[-1]);
		size_t n;

		if (isspace((unsigned char)*in)) {
			space = o > 0;
			in++;
			continue;
		}
		if (at_word && ((n = iso_len(in)) > 0 || (n = clock_len(in)) > 0 ||
		    ((n = digits(in, 14)) >= 10 && n <= 13))) {
			/* Only whole tokens: "12345678901x" is not an epoch. */
			if (!isalnum((unsigned char)in[n])) {
				in += n;
				continue;
			}
		}
		if (space && o + 2 < outlen)
			out[o++] = ' ';
		space = false;
		out[o++] = *in++;
	}
	out[o] = '\0';
}

void
evidence_sha256(const char *text, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	struct sha256_ctx ctx;
	uint8_t digest[SHA256_DIGEST_SIZE];
	int i;

	if (text == NULL)
		text = "";
	sha256_init(&ctx);
	sha256_update(&ctx, strlen(text), (const uint8_t *)text);
	sha256_digest(&ctx, sizeof(digest), digest);
	for (i = 0; i < SHA256_DIGEST_SIZE; i++) {
		out[2 * i] = hex[digest[i] >> 4];
		out[2 * i + 1] = hex[digest[i] & 15];
	}
	out[64] = '\0';
}

void
evidence_hash(const char *evidence, char out[65])
{
	char norm[8192];

	evidence_normalize(evidence != NULL ? evidence : "", norm, sizeof(norm));
	evidence_sha256(norm, out);
}
