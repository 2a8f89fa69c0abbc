/* parse.c - setting values from strings: booleans, bounded integers and
 * durations, each failing with a message that names the setting. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "parse.h"

int
parse_bool (const char *name, const char *value, bool *out)
{
  static const char *const yes[] = { "1", "yes", "true", "on" };
  static const char *const no[] = { "0", "no", "false", "off" };

  for (size_t i = 0; value && i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp (value, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp (value, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return set_error (EINVAL, "%s: bad value '%s' (expected yes/no, "
                    "true/false, on/off or 1/0)", name, value ? value : "");
}

/* Leading decimal digits of s as a number; *end is the first other
 * character.  -1 if there are none or the number overflows. */
static int
parse_digits (const char *s, uint64_t *out, const char **end)
{
  uint64_t v = 0;
  const char *p = s;

  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
      return -1;
    v = v * 10 + (uint64_t) (*p - '0');
  }
  *out = v;
  *end = p;
  return p == s ? -1 : 0;
}

int
parse_uint (const char *name, const char *value, uint64_t min, uint64_t max,
            uint64_t *out)
{
  const char *end;
  uint64_t v;

  if (!value || parse_digits (value, &v, &end) == -1 || *end)
    return set_error (EINVAL, "%s: bad value '%s' (expected a whole number "
                      "from %llu to %llu)", name, value ? value : "",
                      (unsigned long long) min, (unsigned long long) max);
  if (v < min || v > max)
    return set_error (EINVAL, "%s: %llu is out of range (%llu to %llu)",
                      name, (unsigned long long) v, (unsigned long long) min,
                      (unsigned long long) max);
  *out = v;
  return 0;
}

int
parse_duration_ms (const char *name, const char *value, uint64_t max_ms,
                   uint64_t *out)
{
  static const struct { const char *unit; uint64_t ms; } units[] = {
    { "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
  };
  const char *end;
  uint64_t v;

  if (value && parse_digits (value, &v, &end) == 0) {
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
      if (strcmp (end, units[i].unit) != 0)
        continue;
      if (v > max_ms / units[i].ms)
        return set_error (EINVAL, "%s: '%s' is too long (at most %llu ms)",
                          name, value, (unsigned long long) max_ms);
      *out = v * units[i].ms;
      return 0;
    }
  }
  return set_error (EINVAL, "%s: bad value '%s' (expected a duration: "
                    "milliseconds, or a number with unit ms, s or m)", name,
                    value ? value : "");
}
