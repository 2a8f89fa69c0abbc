/* examples/cli-common.h - helpers shared by the command-line examples
 * (nbdaio-info and nbdaio-check): JSON string output and connecting
 * through a connection profile.  Header-only (static inline), so each
 * program just includes it.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#ifndef NBDAIO_CLI_COMMON_H
#define NBDAIO_CLI_COMMON_H

#include <stdio.h>

#include "nbdaio.h"

/* Print s as a JSON string literal to fp, escaping what RFC 8259
 * requires (control characters as \uXXXX). */
static inline void
cli_json_string (FILE *fp, const char *s)
{
  putc ('"', fp);
  for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
    switch (*p) {
    case '"':  fputs ("\\\"", fp); break;
    case '\\': fputs ("\\\\", fp); break;
    case '\n': fputs ("\\n", fp); break;
    case '\r': fputs ("\\r", fp); break;
    case '\t': fputs ("\\t", fp); break;
    case '\b': fputs ("\\b", fp); break;
    case '\f': fputs ("\\f", fp); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf (fp, "\\u%04x", *p);
      else
        putc (*p, fp);
    }
  }
  putc ('"', fp);
}

/* Load profile name from config (NULL: the usual places) and apply its
 * settings to h.  Returns the profile (free it with nbdaio_profile_free)
 * or NULL with the library's error set.  Connect afterwards with
 * nbdaio_profile_connect; settings made in between override the
 * profile's. */
static inline struct nbdaio_profile *
cli_profile_load_apply (struct nbdaio_handle *h, const char *name,
                        const char *config)
{
  struct nbdaio_profile *p = nbdaio_profile_load (config, name);

  if (p && nbdaio_profile_apply (p, h) == -1) {
    nbdaio_profile_free (p);
    return NULL;
  }
  return p;
}

#endif /* NBDAIO_CLI_COMMON_H */
