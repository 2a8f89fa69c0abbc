/* localfile.h - reading a small local file the user named (a profile
 * file, a TLS key or certificate file) whole, safely: only a regular file
 * (never a FIFO or a device that could block or never end), at most a
 * given size, and for secrets only a file private to its owner, with the
 * buffer wiped when freed.  Internal. */
#ifndef NBDAIO_LOCALFILE_H
#define NBDAIO_LOCALFILE_H

#include <stdbool.h>
#include <stddef.h>

/* How to read one kind of file, and how to name it in messages. */
struct localfile {
  const char *what;     /* "profile file", "TLS PSK file", ... */
  const char *note;     /* printed after the path (" (from $X)"), or NULL */
  size_t max;           /* refuse a file larger than this many bytes */
  bool secret;          /* refuse a file group or others can read; wipe */
};

/* Read the file at path whole into a new buffer *data of *len bytes plus
 * a terminating NUL (the file itself may hold NUL bytes).  Returns 0, or
 * -1 with an error naming the file: the errno of open or read ("cannot
 * read WHAT PATH: ..."; ENOENT for a missing file), EISDIR for a
 * directory, EINVAL for any other file that is not a regular file (saying
 * what it is), EFBIG for a file over how->max bytes, EACCES for a secret
 * that group or others can read (with the chmod 600 fix), ENOMEM.  Free
 * the buffer with localfile_free. */
int localfile_read (const char *path, const struct localfile *how,
                    char **data, size_t *len);

/* Free a buffer of localfile_read (NULL is fine); wipe its len bytes first
 * when it held a secret. */
void localfile_free (char *data, size_t len, bool secret);

#endif
