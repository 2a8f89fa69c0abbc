/* escape.c - the one escaper for text a server sent (export names,
 * descriptions, error messages, context names): whatever quotes such text
 * in a message, a debug line or a tool's output passes it through
 * nbdaio_escape_string, so that no control character or escape sequence
 * of the server reaches a terminal or a log. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "escape.h"
#include "nbdaio.h"

/* Code points above U+009F that print nothing a reader could check: zero
 * width and direction marks, line and paragraph separators, embeddings,
 * overrides and isolates, invisible operators, the byte order mark, the
 * annotation characters and the noncharacters U+FFFE / U+FFFF. */
static const struct { uint32_t lo, hi; } invisible[] = {
  { 0x200b, 0x200f }, { 0x2028, 0x202e }, { 0x2060, 0x206f },
  { 0xfeff, 0xfeff }, { 0xfff9, 0xfffb }, { 0xfffe, 0xffff },
};

static bool
is_invisible (uint32_t cp)
{
  for (size_t i = 0; i < sizeof invisible / sizeof invisible[0]; i++)
    if (cp >= invisible[i].lo && cp <= invisible[i].hi)
      return true;
  return false;
}

/* The length (2 to 4) of the UTF-8 encoding of a printable code point at
 * p (n > 0 bytes available), or 0 when p does not start one: a stray
 * continuation byte, a truncated or overlong sequence, a surrogate, a
 * code point above U+10FFFF, a C1 control or an invisible one. */
static size_t
printable_utf8 (const uint8_t *p, size_t n)
{
  uint32_t cp, min;
  size_t len;

  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    len = 2, cp = p[0] & 0x1f, min = 0x80;
  else if ((p[0] & 0xf0) == 0xe0)
    len = 3, cp = p[0] & 0x0f, min = 0x800;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4)
    len = 4, cp = p[0] & 0x07, min = 0x10000;
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) ||
      cp <= 0x9f || is_invisible (cp))
    return 0;
  return len;
}

size_t
nbdaio_escape_string (char *buf, size_t size, const char *s, size_t len)
{
  static const char hex[] = "0123456789abcdef";
  const uint8_t *p = (const uint8_t *) s;
  size_t out = 0, kept = 0;    /* escaped length; bytes written to buf */
  bool full = false;

  for (size_t i = 0; i < len;) {
    char esc[4] = { '\\', 'x', hex[p[i] >> 4], hex[p[i] & 0xf] };
    const char *unit = s + i;
    size_t n = 1;

    if (p[i] == '\\')
      unit = "\\\\", n = 2, i++;
    else if (p[i] >= 0x20 && p[i] < 0x7f)
      i++;
    else if ((n = printable_utf8 (p + i, len - i)) > 0)
      i += n;
    else
      unit = esc, n = sizeof esc, i++;
    /* whole units only: once one does not fit, nothing more is written */
    if (!full && kept + n < size) {
      memcpy (buf + kept, unit, n);
      kept += n;
    }
    else
      full = true;
    out += n;
  }
  if (size)
    buf[kept] = '\0';
  return out;
}

const char *
escape_msg (char *buf, size_t size, const void *s, size_t len)
{
  if (nbdaio_escape_string (buf, size - 3, s, len) >= size - 3)
    strcat (buf, "...");
  return buf;
}
