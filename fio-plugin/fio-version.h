/* fio-plugin/fio-version.h - refuse to run under another fio than the
 * one nbdaio.so was built against.
 *
 * Copyright (C) 2026 the nbdaio authors.  LGPL-2.1-or-later.
 */
#ifndef NBDAIO_FIO_VERSION_H
#define NBDAIO_FIO_VERSION_H

/* The fio version this plugin was compiled against ("fio-3.33"): meson
 * passes it as NBDAIO_FIO_BUILT_FOR, read from the fio source tree the
 * build uses (its FIO-VERSION-GEN). */
extern const char plugin_fio_built_for[];

/* Compare the running fio's fio_version_string with the version the
 * plugin was built for.  Returns 0 when they are the same; -1 after
 * log_err when they differ or fio exports no version string, naming the
 * running fio, the fio the plugin needs and how to rebuild it.  fio
 * checks only FIO_IOOPS_VERSION, which misses layout changes (fio 3.42
 * renumbered the engine flags and moved thread_data fields without
 * changing it), so engine_setup calls this before touching fio's
 * structures. */
int plugin_check_fio_version (void);

#endif /* NBDAIO_FIO_VERSION_H */
