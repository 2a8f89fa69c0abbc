/* parse.h - parsing setting values from strings (profiles, URI query
 * parameters, nbdaio_set_option): one definition of what a boolean, a
 * number and a duration look like.  Internal. */
#ifndef NBDAIO_PARSE_H
#define NBDAIO_PARSE_H

#include <stdbool.h>
#include <stdint.h>

/* Each returns 0 with *out set, or -1 with EINVAL and a message
 * "NAME: bad value 'VALUE' (expected ...)". */

/* yes/no, true/false, on/off, 1/0 (any case). */
int parse_bool (const char *name, const char *value, bool *out);
/* A decimal integer in [min, max]. */
int parse_uint (const char *name, const char *value, uint64_t min,
                uint64_t max, uint64_t *out);
/* A duration in milliseconds: a bare number is milliseconds; the units ms,
 * s and m are accepted ("500ms", "30s", "2m"); at most max_ms. */
int parse_duration_ms (const char *name, const char *value, uint64_t max_ms,
                       uint64_t *out);

#endif
