#include "proto/sqlrow.h"

#include <string.h>

#include "proto/jsonmp.h"
#include "proto/rpc.h"

enum sqlrow_kind
sqlrow_kind(const char *name)
{
	if (strcmp(name, "is_alive") == 0 || strcmp(name, "resolved") == 0 ||
	    strcmp(name, "escalated") == 0)
		return SQLROW_BOOL;
	return strcmp(name, "command") == 0 ? SQLROW_JSON : SQLROW_PLAIN;
}

void
sqlrow_pack_value(msgpack_packer *pk, sqlite3_stmt *s, int i, enum sqlrow_kind kind)
{
	switch (sqlite3_column_type(s, i)) {
	case SQLITE_NULL:
		msgpack_pack_nil(pk);
		break;
	case SQLITE_INTEGER:
		if (kind == SQLROW_BOOL) {
			if (sqlite3_column_int(s, i))
				msgpack_pack_true(pk);
			else
				msgpack_pack_false(pk);
		} else
			msgpack_pack_int64(pk, sqlite3_column_int64(s, i));
		break;
	case SQLITE_FLOAT:
		msgpack_pack_double(pk, sqlite3_column_double(s, i));
		break;
	case SQLITE_TEXT:
		if (kind == SQLROW_JSON) {
			jsonmp_pack_text(pk, (const char *)sqlite3_column_text(s, i),
			    (size_t)sqlite3_column_bytes(s, i));
			break;
		}
		/* FALLTHROUGH */
	default:
		rpc_pack_strn(pk, (const char *)sqlite3_column_text(s, i),
		    (size_t)sqlite3_column_bytes(s, i));
		break;
	}
}

void
sqlrow_pack_row(msgpack_packer *pk, sqlite3_stmt *s)
{
	int i, n = sqlite3_column_count(s);
	const char *name;

	msgpack_pack_map(pk, (size_t)n);
	for (i = 0; i < n; i++) {
		name = sqlite3_column_name(s, i);
		rpc_pack_str(pk, name);
		sqlrow_pack_value(pk, s, i, sqlrow_kind(name));
	}
}
