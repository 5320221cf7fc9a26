#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>

#include "common/xmalloc.h"

const char *const config_sections[] = {
	"storaged", "cdcd", "lcmd", "reaperd", "supervisor", NULL
};

/* State shared by the inih callbacks of one config_load_file(). */
struct config_parse {
	const struct config_key *keys;
	void *cfg;
	const char *section;
	const char *path;
	FILE *fp;
	int lineno;		/* of the line inih is working on */
	int failed;
	char *err;
	size_t errlen;
};

static void *
config_field(const struct config_key *k, void *cfg)
{
	return (char *)cfg + k->offset;
}

/* Key names match when equal with '-' and '_' taken as the same. */
static int
config_name_eq(const char *key, const char *name)
{
	for (; *key != '\0' && *name != '\0'; key++, name++) {
		if (*key == *name)
			continue;
		if ((*key == '_' || *key == '-') && (*name == '_' || *name == '-'))
			continue;
		return 0;
	}
	return *key == *name;
}

const struct config_key *
config_find(const struct config_key *keys, const char *name)
{
	const struct config_key *k;

	for (k = keys; k->name != NULL; k++)
		if (config_name_eq(k->name, name))
			return k;
	return NULL;
}

/*
 * Parses a decimal integer at the start of s into *out; *end gets the first
 * character after it.  Leading blanks are not accepted.
 */
static int
config_parse_num(const char *s, int64_t *out, const char **end)
{
	char *e;
	long long v;

	if (!isdigit((unsigned char)s[0]) &&
	    !((s[0] == '-' || s[0] == '+') && isdigit((unsigned char)s[1])))
		return -1;
	errno = 0;
	v = strtoll(s, &e, 10);
	if (errno == ERANGE)
		return -1;
	*out = v;
	*end = e;
	return 0;
}

static int
config_parse_int(const struct config_key *k, const char *s, int64_t *out,
    char *err, size_t errlen)
{
	const char *end;

	if (config_parse_num(s, out, &end) == -1 || *end != '\0') {
		snprintf(err, errlen, "%s: '%s' is not an integer%s", k->name, s,
		    k->type == CONFIG_MS ? " (milliseconds)" : "");
		return -1;
	}
	return 0;
}

static int
config_parse_bytes(const struct config_key *k, const char *s, int64_t *out,
    char *err, size_t errlen)
{
	static const struct {
		const char *suffix;
		int64_t mult;
	} units[] = {
		{ "", 1 },
		{ "K", 1024 }, { "KiB", 1024 },
		{ "M", 1024 * 1024 }, { "MiB", 1024 * 1024 },
		{ "G", 1024 * 1024 * 1024 }, { "GiB", 1024 * 1024 * 1024 },
	};
	const char *end;
	int64_t v;
	size_t i;

	if (config_parse_num(s, &v, &end) == -1)
		goto bad;
	while (*end == ' ' || *end == '\t')
		end++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].suffix) != 0)
			continue;
		if (v > INT64_MAX / units[i].mult || v < INT64_MIN / units[i].mult)
			goto bad;
		*out = v * units[i].mult;
		return 0;
	}
bad:
	snprintf(err, errlen, "%s: '%s' is not a size (an integer, optionally "
	    "followed by K, M, G or KiB, MiB, GiB)", k->name, s);
	return -1;
}

static int
config_parse_bool(const struct config_key *k, const char *s, int *out,
    char *err, size_t errlen)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };
	int i;

	for (i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	snprintf(err, errlen, "%s: '%s' is not a boolean (true/false, yes/no, "
	    "on/off, 1/0)", k->name, s);
	return -1;
}

/* Parses `value` for key k and stores it; nothing changes on failure. */
static int
config_apply(const struct config_key *k, void *cfg, const char *value,
    char *err, size_t errlen)
{
	int64_t v;
	int b;
	char **sp;

	switch (k->type) {
	case CONFIG_INT:
	case CONFIG_MS:
		if (config_parse_int(k, value, &v, err, errlen) == -1)
			return -1;
		break;
	case CONFIG_BYTES:
		if (config_parse_bytes(k, value, &v, err, errlen) == -1)
			return -1;
		break;
	case CONFIG_BOOL:
		if (config_parse_bool(k, value, &b, err, errlen) == -1)
			return -1;
		*(int *)config_field(k, cfg) = b;
		return 0;
	case CONFIG_STR:
		sp = config_field(k, cfg);
		free(*sp);
		*sp = xstrdup(value);
		return 0;
	default:
		snprintf(err, errlen, "%s: unknown key type %d", k->name, k->type);
		return -1;
	}
	if (v < k->min || v > k->max) {
		snprintf(err, errlen, "%s: %" PRId64 " is out of range [%" PRId64
		    ", %" PRId64 "]", k->name, v, k->min, k->max);
		return -1;
	}
	*(int64_t *)config_field(k, cfg) = v;
	return 0;
}

int
config_defaults(const struct config_key *keys, void *cfg, char *err,
    size_t errlen)
{
	const struct config_key *k;
	char why[256];
	const char *def;

	for (k = keys; k->name != NULL; k++) {
		if ((def = k->def) == NULL)
			def = k->type == CONFIG_STR ? "" : "0";
		if (config_apply(k, cfg, def, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "bad default: %s", why);
			return -1;
		}
	}
	return 0;
}

int
config_set(const struct config_key *keys, void *cfg, const char *name,
    const char *value, char *err, size_t errlen)
{
	const struct config_key *k;

	if ((k = config_find(keys, name)) == NULL) {
		snprintf(err, errlen, "unknown key '%s'", name);
		return -1;
	}
	return config_apply(k, cfg, value, err, errlen);
}

static int
config_known_section(const char *section)
{
	int i;

	for (i = 0; config_sections[i] != NULL; i++)
		if (strcmp(section, config_sections[i]) == 0)
			return 1;
	return 0;
}

/* Records the first error of a parse as "FILE:LINE: reason". */
static void
config_parse_fail(struct config_parse *cp, const char *fmt, ...)
    AO_PRINTF(2, 3);

static void
config_parse_fail(struct config_parse *cp, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	if (cp->failed)
		return;
	cp->failed = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(cp->err, cp->errlen, "%s:%d: %s", cp->path, cp->lineno, why);
}

/*
 * fgets for inih that counts lines, so handler errors can name theirs, and
 * refuses a line longer than inih's buffer instead of letting inih parse the
 * rest of it as another line.  Leading blanks are dropped: inih would take
 * an indented "key = value" for the continuation of the previous value.
 */
static char *
config_reader(char *buf, int size, void *arg)
{
	struct config_parse *cp = arg;
	size_t len, skip;

	if (cp->failed)
		return NULL;
	if (fgets(buf, size, cp->fp) == NULL)
		return NULL;
	cp->lineno++;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] != '\n' && !feof(cp->fp)) {
		config_parse_fail(cp, "line too long (max %d bytes)", size - 3);
		return NULL;
	}
	skip = strspn(buf, " \t");
	memmove(buf, buf + skip, len - skip + 1);
	return buf;
}

static int
config_handler(void *arg, const char *section, const char *name,
    const char *value)
{
	struct config_parse *cp = arg;
	char why[512];
	int i, n;

	if (cp->failed)
		return 0;
	if (*section == '\0') {
		config_parse_fail(cp, "key '%s' is outside of any [section]",
		    name != NULL ? name : "");
		return 0;
	}
	if (strcmp(section, cp->section) != 0 &&
	    !config_known_section(section)) {
		n = snprintf(why, sizeof(why), "unknown section [%s] (allowed:",
		    section);
		for (i = 0; config_sections[i] != NULL && n > 0 &&
		    (size_t)n < sizeof(why); i++)
			n += snprintf(why + n, sizeof(why) - n, "%s %s",
			    i > 0 ? "," : "", config_sections[i]);
		config_parse_fail(cp, "%s)", why);
		return 0;
	}
	if (strcmp(section, cp->section) != 0 || name == NULL)
		return 1;
	if (config_find(cp->keys, name) == NULL) {
		config_parse_fail(cp, "unknown key '%s' in [%s]", name, section);
		return 0;
	}
	if (config_set(cp->keys, cp->cfg, name, value != NULL ? value : "",
	    why, sizeof(why)) == -1) {
		config_parse_fail(cp, "%s", why);
		return 0;
	}
	return 1;
}

int
config_load_file(const struct config_key *keys, void *cfg, const char *section,
    const char *path, char *err, size_t errlen)
{
	struct config_parse cp;
	int r;

	memset(&cp, 0, sizeof(cp));
	cp.keys = keys;
	cp.cfg = cfg;
	cp.section = section;
	cp.path = path;
	cp.err = err;
	cp.errlen = errlen;
	if ((cp.fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot read config file %s: %s", path,
		    strerror(errno));
		return -1;
	}
	r = ini_parse_stream(config_reader, &cp, config_handler, &cp);
	if (!cp.failed && ferror(cp.fp)) {
		snprintf(err, errlen, "cannot read config file %s: %s", path,
		    strerror(errno));
		cp.failed = 1;
	}
	fclose(cp.fp);
	if (cp.failed)
		return -1;
	if (r > 0) {
		snprintf(err, errlen, "%s:%d: syntax error (expected [section] "
		    "or key = value)", path, r);
		return -1;
	}
	if (r != 0) {
		snprintf(err, errlen, "cannot parse config file %s", path);
		return -1;
	}
	return 0;
}

static const char *
config_metavar(enum config_type type)
{
	switch (type) {
	case CONFIG_INT:
		return "N";
	case CONFIG_MS:
		return "MS";
	case CONFIG_BYTES:
		return "BYTES";
	case CONFIG_BOOL:
		return "BOOL";
	case CONFIG_STR:
		return "STRING";
	}
	return "VALUE";
}

/* "--key-name=METAVAR" into buf. */
static int
config_flag(const struct config_key *k, char *buf, size_t len)
{
	size_t i;
	int n;

	n = snprintf(buf, len, "--%s=%s", k->name, config_metavar(k->type));
	for (i = 2; buf[i] != '\0' && buf[i] != '='; i++)
		if (buf[i] == '_')
			buf[i] = '-';
	return n;
}

void
config_usage(const struct config_key *keys, FILE *fp)
{
	const struct config_key *k;
	char flag[128];
	int n, width = 0;

	for (k = keys; k->name != NULL; k++)
		if ((n = config_flag(k, flag, sizeof(flag))) > width)
			width = n;
	for (k = keys; k->name != NULL; k++) {
		config_flag(k, flag, sizeof(flag));
		fprintf(fp, "  %-*s  %s (default: %s)\n", width, flag,
		    k->help != NULL ? k->help : "",
		    k->def != NULL && *k->def != '\0' ? k->def : "none");
	}
}

void
config_free(const struct config_key *keys, void *cfg)
{
	const struct config_key *k;
	char **sp;

	for (k = keys; k->name != NULL; k++) {
		if (k->type != CONFIG_STR)
			continue;
		sp = config_field(k, cfg);
		free(*sp);
		*sp = NULL;
	}
}
