/*
 * SQLite rows as msgpack maps, as ao shows them on every socket: storaged's
 * answers and cdcd's snapshots use the same rules, so an object looks the
 * same wherever a client meets it.
 */
#ifndef AO_SQLROW_H
#define AO_SQLROW_H

#include <msgpack.h>
#include <sqlite3.h>

enum sqlrow_kind {
	SQLROW_PLAIN,
	SQLROW_BOOL,	/* stored as 0/1, shown as a boolean */
	SQLROW_JSON,	/* JSON text, shown as its value */
};

/* How the column called name is shown. */
enum sqlrow_kind sqlrow_kind(const char *name);
/* Packs column i of s's current row as kind. */
void sqlrow_pack_value(msgpack_packer *, sqlite3_stmt *, int i, enum sqlrow_kind);
/* Packs s's current row as a map of column name → value. */
void sqlrow_pack_row(msgpack_packer *, sqlite3_stmt *);

#endif
