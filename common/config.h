/*
 * Configuration: one declarative table of keys per daemon.  Values come from
 * the defaults in the table, then the daemon's [section] of the INI file
 * (--config / AO_CONFIG), then `--key-name=VALUE` on the command line, which
 * wins.  Unknown sections, unknown keys and malformed values are errors that
 * name the key.
 */
#ifndef AO_CONFIG_H
#define AO_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_type {
	CONFIG_INT,	/* int64_t */
	CONFIG_MS,	/* int64_t milliseconds; key names end in _ms */
	CONFIG_BYTES,	/* int64_t; accepts K/M/G (KiB/MiB/GiB) suffixes */
	CONFIG_BOOL,	/* int: true/false, yes/no, on/off, 1/0 */
	CONFIG_STR,	/* char *, owned by the config struct (config_free) */
};

struct config_key {
	const char *name;	/* snake_case */
	enum config_type type;
	const char *def;	/* default as text; NULL for an empty string */
	size_t offset;		/* of the field in the daemon's config struct */
	int64_t min, max;	/* bounds for numeric types */
	const char *help;
};

#define CONFIG_KEY_END { NULL, CONFIG_INT, NULL, 0, 0, 0, NULL }

/* The sections a config file may have. */
extern const char *const config_sections[];

/*
 * Sets every key to its default.  The CONFIG_STR fields of cfg must be NULL
 * (a zeroed struct) or hold values set by these functions, which they free.
 */
int config_defaults(const struct config_key *, void *cfg, char *err, size_t errlen);

/*
 * Reads `path` and applies the keys of `section`.  Other sections named in
 * config_sections are skipped; any other section, or an unknown key in
 * `section`, is an error reported as "FILE:LINE: reason".
 */
int config_load_file(const struct config_key *, void *cfg, const char *section,
    const char *path, char *err, size_t errlen);

/* Sets one key; `name` may be snake_case or dashed. */
int config_set(const struct config_key *, void *cfg, const char *name,
    const char *value, char *err, size_t errlen);

/* The key named `name` (snake_case or dashed), or NULL. */
const struct config_key *config_find(const struct config_key *, const char *name);

/* Prints "  --key-name=VALUE  help (default: ...)" lines for --help. */
void config_usage(const struct config_key *, FILE *);

/* Frees the CONFIG_STR values. */
void config_free(const struct config_key *, void *cfg);

#endif
