/* escape.h - text a server sent, made safe to print in messages and debug
 * lines (the escaper itself is the public nbdaio_escape_string).
 * Internal. */
#ifndef NBDAIO_ESCAPE_H
#define NBDAIO_ESCAPE_H

#include <stddef.h>

/* Room for one piece of server text quoted in a message. */
#define ESCAPE_MSG_MAX 256

/* s (len bytes, may hold any byte) escaped into buf (size > 3 bytes), cut
 * with "..." when it does not fit.  Returns buf, for a "%s". */
const char *escape_msg (char *buf, size_t size, const void *s, size_t len);

/* escape_msg into a buffer that lives as long as the enclosing block:
 *   set_error (EINVAL, "... %s", ESCAPED (data, len)); */
#define ESCAPED(s, len) \
  escape_msg ((char[ESCAPE_MSG_MAX]) { 0 }, ESCAPE_MSG_MAX, (s), (len))

#endif
