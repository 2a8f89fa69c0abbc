/* version.c - the version of the library running (nbdaio_get_version).
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#include "nbdaio.h"

const char *
nbdaio_get_version (void)
{
  return NBDAIO_VERSION_STRING;
}
