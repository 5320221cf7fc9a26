/*
 * JSON (jansson) <-> msgpack conversion for the CLI and for payloads stored
 * as JSON text.  Integers stay integers; msgpack bin and ext have no JSON
 * form and become null.
 */
#ifndef AO_JSONMP_H
#define AO_JSONMP_H

#include <jansson.h>
#include <msgpack.h>

/*
 * Packs a JSON value.  Returns 0, or -1 (having packed nothing) for a value
 * nested past 32 levels.
 */
int jsonmp_pack(msgpack_packer *, const json_t *);
/* Packs JSON text as its value; text that is not such a value packs nil. */
void jsonmp_pack_text(msgpack_packer *, const char *text, size_t len);

/*
 * Converts a msgpack object to a new JSON value (never NULL).  Map keys that
 * are not strings are rendered as their JSON text.
 */
json_t *jsonmp_from_object(const msgpack_object *);

#endif
