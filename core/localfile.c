/* localfile.c - reading a small local file whole (see localfile.h).
 *
 * The path is checked with stat before it is opened (opening a device can
 * have effects of its own) and again with fstat after (it may have been
 * replaced in between); it is opened non-blocking, which changes nothing
 * for a regular file.  The read stops one byte past the limit, so a file
 * that grows, or that reports no size (procfs), is still bounded. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "localfile.h"

#define KIB 1024u

/* "PATH" plus the note, as every message names the file. */
#define NOTE(how) ((how)->note ? (how)->note : "")

static int
io_error (const char *path, const struct localfile *how, int err)
{
  return set_error (err, "cannot read %s %s%s: %s", how->what, path,
                    NOTE (how), strerror (err));
}

static int
too_big (const char *path, const struct localfile *how)
{
  size_t max = how->max;
  const char *unit = "bytes";

  if (max >= KIB * KIB && max % (KIB * KIB) == 0) {
    max /= KIB * KIB;
    unit = "MiB";
  }
  else if (max >= KIB && max % KIB == 0) {
    max /= KIB;
    unit = "KiB";
  }
  return set_error (EFBIG, "%s %s%s is larger than %zu %s, the most read "
                    "for a %s (is it the right file?)", how->what, path,
                    NOTE (how), max, unit, how->what);
}

/* What a file that is not a regular one is, in words. */
static const char *
file_kind (mode_t mode)
{
  if (S_ISDIR (mode))
    return "a directory";
  if (S_ISFIFO (mode))
    return "a FIFO (named pipe)";
  if (S_ISCHR (mode))
    return "a character device";
  if (S_ISBLK (mode))
    return "a block device";
  if (S_ISSOCK (mode))
    return "a socket";
  return "a special file";
}

/* Refuse what st describes unless it is a regular file of at most
 * how->max bytes that, for a secret, only its owner can read. */
static int
check_stat (const char *path, const struct localfile *how,
            const struct stat *st)
{
  if (S_ISDIR (st->st_mode))
    return set_error (EISDIR, "%s %s%s is a directory, not a file",
                      how->what, path, NOTE (how));
  if (!S_ISREG (st->st_mode))
    return set_error (EINVAL, "%s %s%s is %s, not a regular file (only "
                      "regular files are read: a pipe or a device may "
                      "block or never end)", how->what, path, NOTE (how),
                      file_kind (st->st_mode));
  if ((uint64_t) st->st_size > how->max)
    return too_big (path, how);
  if (how->secret && (st->st_mode & (S_IRGRP | S_IROTH)))
    return set_error (EACCES, "%s %s%s can be read by group or others "
                      "(mode %04o): a key must be private to its owner; "
                      "run chmod 600 %s", how->what, path, NOTE (how),
                      (unsigned) (st->st_mode & 07777), path);
  return 0;
}

void
localfile_free (char *data, size_t len, bool secret)
{
  if (data && secret)
    explicit_bzero (data, len);
  free (data);
}

/* Move the n bytes of *buf into a buffer twice as large (at most
 * how->max + 2: one byte past the limit and the NUL); the old one is
 * wiped for a secret. */
static int
grow (char **buf, size_t *size, size_t n, const struct localfile *how)
{
  size_t want = *size <= (how->max + 2) / 2 ? *size * 2 : how->max + 2;
  char *p = malloc (want);

  if (!p) {
    localfile_free (*buf, n, how->secret);
    *buf = NULL;
    return set_error (ENOMEM, "out of memory");
  }
  memcpy (p, *buf, n);
  localfile_free (*buf, n, how->secret);
  *buf = p;
  *size = want;
  return 0;
}

/* Read fd to its end, at most how->max bytes; hint is the size fstat
 * reported. */
static int
read_all (int fd, const char *path, const struct localfile *how,
          size_t hint, char **data, size_t *len)
{
  size_t size = hint + 2, n = 0;      /* room to see it grow, and the NUL */
  char *buf = malloc (size);

  if (!buf)
    return set_error (ENOMEM, "out of memory");
  for (;;) {
    ssize_t r;

    if (n > how->max) {
      localfile_free (buf, n, how->secret);
      return too_big (path, how);
    }
    if (n + 1 == size && grow (&buf, &size, n, how) == -1)
      return -1;
    r = read (fd, buf + n, size - 1 - n);
    if (r == 0)
      break;
    if (r < 0 && errno != EINTR) {
      int e = errno;
      localfile_free (buf, n, how->secret);
      return io_error (path, how, e);
    }
    if (r > 0)
      n += (size_t) r;
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return 0;
}

int
localfile_read (const char *path, const struct localfile *how,
                char **data, size_t *len)
{
  struct stat st;
  int fd, r;

  *data = NULL;
  *len = 0;
  if (stat (path, &st) == -1)
    return io_error (path, how, errno);
  if (check_stat (path, how, &st) == -1)
    return -1;
  fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd == -1)
    return io_error (path, how, errno);
  if (fstat (fd, &st) == -1)
    r = io_error (path, how, errno);
  else if ((r = check_stat (path, how, &st)) == 0)
    r = read_all (fd, path, how, (size_t) st.st_size, data, len);
  close (fd);
  return r;
}
