/* uri.c - NBD URI parsing:
 *   nbd[s]://[user@][host[:port]]/[export][?query]
 *   nbd[s]+unix://[user@]/[export]?socket=PATH[&...]
 * Every malformed part is an EINVAL error naming it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "proto.h"
#include "uri.h"

static int
hexval (char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Percent-decode [s, s+len) into a new string; what names the part. */
static char *
decode (const char *s, size_t len, const char *what)
{
  char *out = malloc (len + 1), *p = out;

  if (!out) {
    set_error (ENOMEM, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '%') {
      int hi = i + 2 < len ? hexval (s[i + 1]) : -1;
      int lo = i + 2 < len ? hexval (s[i + 2]) : -1;
      if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
        free (out);
        set_error (EINVAL, "bad percent-escape in URI %s", what);
        return NULL;
      }
      *p++ = (char) (hi * 16 + lo);
      i += 2;
    }
    else
      *p++ = s[i];
  }
  *p = '\0';
  return out;
}

void
uri_free (struct nbdaio_uri *u)
{
  free (u->user);
  free (u->host);
  free (u->port);
  free (u->socket);
  free (u->export_name);
  for (size_t i = 0; i < u->nparams; i++) {
    free (u->params[i].name);
    free (u->params[i].value);
  }
  memset (u, 0, sizeof *u);
}

static int
parse_scheme (const char *uri, struct nbdaio_uri *u, const char **rest)
{
  static const struct { const char *name; bool tls, unix_socket; } schemes[] = {
    { "nbd",       false, false },
    { "nbds",      true,  false },
    { "nbd+unix",  false, true },
    { "nbds+unix", true,  true },
  };
  const char *sep = strstr (uri, "://");

  if (!sep)
    return set_error (EINVAL, "URI '%s' has no scheme (expected nbd://, "
                      "nbd+unix://, nbds:// or nbds+unix://)", uri);
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
    if (strlen (schemes[i].name) == (size_t) (sep - uri) &&
        strncasecmp (uri, schemes[i].name, sep - uri) == 0) {
      u->tls = schemes[i].tls;
      u->unix_socket = schemes[i].unix_socket;
      *rest = sep + 3;
      return 0;
    }
  }
  return set_error (EINVAL, "unsupported URI scheme '%.*s' (expected nbd, "
                    "nbds, nbd+unix or nbds+unix)", (int) (sep - uri), uri);
}

static int
parse_port (const char *s, size_t len, struct nbdaio_uri *u)
{
  unsigned long v = 0;

  if (len == 0 || len > 5)
    return set_error (EINVAL, "bad port in URI: '%.*s'", (int) len, s);
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return set_error (EINVAL, "bad port in URI: '%.*s'", (int) len, s);
    v = v * 10 + (s[i] - '0');
  }
  if (v == 0 || v > 65535)
    return set_error (EINVAL, "port out of range in URI: %lu", v);
  u->port = strndup (s, len);
  return u->port ? 0 : set_error (ENOMEM, "out of memory");
}

/* authority = [user@]host[:port], host may be [ipv6] */
static int
parse_authority (const char *s, size_t len, struct nbdaio_uri *u)
{
  const char *at = memchr (s, '@', len);
  const char *host, *end = s + len, *colon;

  if (at) {
    if (at == s)
      return set_error (EINVAL, "empty user name in URI");
    if (!(u->user = decode (s, at - s, "user name")))
      return -1;
    s = at + 1;
  }
  if (s == end) {
    if (u->unix_socket)
      return 0;
    u->host = strdup ("localhost");
    return u->host ? 0 : set_error (ENOMEM, "out of memory");
  }
  if (u->unix_socket)
    return set_error (EINVAL, "a +unix URI takes no host ('%.*s'): use "
                      "?socket=PATH", (int) (end - s), s);
  if (*s == '[') {
    const char *close = memchr (s, ']', end - s);
    if (!close || close == s + 1)
      return set_error (EINVAL, "bad IPv6 address in URI: '%.*s'",
                        (int) (end - s), s);
    host = s + 1;
    if (!(u->host = decode (host, close - host, "host")))
      return -1;
    colon = close + 1;
    if (colon == end)
      return 0;
    if (*colon != ':')
      return set_error (EINVAL, "unexpected '%c' after IPv6 address in URI",
                        *colon);
  }
  else {
    colon = memchr (s, ':', end - s);
    if (!(u->host = decode (s, (colon ? colon : end) - s, "host")))
      return -1;
    if (!*u->host)
      return set_error (EINVAL, "empty host in URI");
    if (!colon)
      return 0;
  }
  return parse_port (colon + 1, end - colon - 1, u);
}

/* A tls-* parameter, kept by name for nbdaio_set_option. */
static int
add_param (struct nbdaio_uri *u, const char *key, const char *val,
           size_t vlen)
{
  struct uri_param *p;

  for (size_t i = 0; i < u->nparams; i++)
    if (strcmp (u->params[i].name, key) == 0)
      return set_error (EINVAL, "URI query parameter '%s' given twice", key);
  if (u->nparams == URI_MAX_PARAMS)
    return set_error (EINVAL, "more than %d URI query parameters",
                      URI_MAX_PARAMS);
  p = &u->params[u->nparams];
  if (!(p->name = strdup (key)))
    return set_error (ENOMEM, "out of memory");
  if (!(p->value = decode (val, vlen, key))) {
    free (p->name);
    return -1;
  }
  u->nparams++;
  return 0;
}

static int
parse_query (const char *s, struct nbdaio_uri *u)
{
  while (*s) {
    const char *amp = strchr (s, '&');
    size_t len = amp ? (size_t) (amp - s) : strlen (s);
    const char *eq = memchr (s, '=', len);
    size_t klen = eq ? (size_t) (eq - s) : len;
    const char *val = eq ? eq + 1 : s + len;
    size_t vlen = s + len - val;
    char key[64];

    if (len == 0)
      goto next;
    if (klen >= sizeof key)
      return set_error (EINVAL, "unknown URI query parameter '%.*s'",
                        (int) klen, s);
    memcpy (key, s, klen);
    key[klen] = '\0';
    if (strcmp (key, "socket") != 0 && strncmp (key, "tls-", 4) != 0)
      return set_error (EINVAL, "unknown URI query parameter '%s' (known: "
                        "socket and the tls-* settings)", key);
    if (!eq || vlen == 0)
      return set_error (EINVAL, "URI query parameter '%s' needs a value", key);
    if (strcmp (key, "socket") == 0) {
      if (u->socket)
        return set_error (EINVAL, "URI query parameter 'socket' given twice");
      if (!(u->socket = decode (val, vlen, key)))
        return -1;
    }
    else if (add_param (u, key, val, vlen) == -1)
      return -1;
  next:
    if (!amp)
      break;
    s = amp + 1;
  }
  return 0;
}

static int
uri_parse_parts (const char *uri, struct nbdaio_uri *u)
{
  const char *rest = NULL, *path, *query;

  if (parse_scheme (uri, u, &rest) == -1)
    return -1;
  if (strchr (rest, '#'))
    return set_error (EINVAL, "URI fragments ('#') are not allowed: '%s'", uri);
  path = rest + strcspn (rest, "/?");
  if (parse_authority (rest, path - rest, u) == -1)
    return -1;
  query = strchr (path, '?');
  if (*path == '/')
    path++;
  u->export_name = decode (path, (query ? query : path + strlen (path)) - path,
                           "export name");
  if (!u->export_name)
    return -1;
  if (strlen (u->export_name) > NBD_MAX_STRING)
    return set_error (EINVAL, "export name in URI is longer than %d bytes",
                      NBD_MAX_STRING);
  if (query && parse_query (query + 1, u) == -1)
    return -1;

  if (u->unix_socket && !u->socket)
    return set_error (EINVAL, "a +unix URI needs ?socket=PATH: '%s'", uri);
  if (!u->unix_socket && u->socket)
    return set_error (EINVAL, "?socket= is only valid with nbd+unix:// "
                      "URIs: '%s'", uri);
  if (!u->unix_socket && !u->port && !(u->port = strdup (NBD_DEFAULT_PORT)))
    return set_error (ENOMEM, "out of memory");
  if (!u->tls && (u->nparams || u->user))
    return set_error (EINVAL, "TLS parameters (user@, tls-*) need an "
                      "nbds:// or nbds+unix:// URI: '%s'", uri);
  return 0;
}

int
uri_parse (const char *uri, struct nbdaio_uri *out)
{
  memset (out, 0, sizeof *out);
  if (!uri)
    return set_error (EINVAL, "URI is NULL");
  if (uri_parse_parts (uri, out) == -1) {
    uri_free (out);
    return -1;
  }
  return 0;
}
