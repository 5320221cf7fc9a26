#ifndef AO_VERSION_H
#define AO_VERSION_H

#define AO_VERSION "0.1.0"
/* The wire protocol version answered by `hello` (docs/protocol.md). */
#define AO_PROTO 1

#endif
