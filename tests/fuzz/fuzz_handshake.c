/* fuzz_handshake.c - libFuzzer target: the handshake.  The fuzzer is the
 * server from its first byte: greeting (oldstyle, newstyle, fixed
 * newstyle), option replies, export information; what follows the
 * handshake is the transmission phase of one read the harness issues.
 * With bit 5 the handle negotiates in opt mode and runs the opt calls.
 *
 * The handle asks for extended headers whenever it asks for structured
 * replies (the default), so a seed's first option reply answers
 * NBD_OPT_EXTENDED_HEADERS (acknowledged: 32-byte replies follow).
 *
 * Input: one configuration byte, then the server's byte stream.
 *   bits 0-1  TLS mode: 0 off, 1 allow, 2 require, 3 off (PSK credentials,
 *             so no certificate store is loaded)
 *   bit 2     do not ask for structured replies
 *   bit 3     ask for no meta context
 *   bit 4     export name "fuzz" instead of ""
 *   bit 5     opt mode: after connecting, nbdaio_opt_list,
 *             nbdaio_opt_info, nbdaio_opt_list_meta_context (bit 6: with
 *             the query "base:allocation", else none) and nbdaio_opt_raw
 *             of an unknown option, then nbdaio_opt_go (bit 7: first
 *             nbdaio_opt_abort instead), as long as the handle negotiates
 *
 * Checked on every input: a failed connect leaves a dead handle with an
 * error message, refusing commands with ENOTCONN (and running their free
 * functions); a successful one obeys the NBD spec's rules on transmission
 * flags and block sizes, never runs without TLS when TLS was required, and
 * negotiates only what was asked for; then the read's callback and free
 * run exactly once (fuzz_common.c).  In opt mode each opt call either
 * succeeds with the handle still negotiating (callbacks as many as the
 * count returned, export facts that obey the rules), or fails after an
 * error reply with the handle still negotiating, or fails ending the
 * connection (a connection error, commands refused with ENOTCONN). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "proto.h"

#define INPUT_MAX (64 * 1024)

#define C_TLS_MASK      0x03u
#define C_NO_STRUCTURED 0x04u
#define C_NO_META       0x08u
#define C_EXPORT_NAME   0x10u
#define C_OPT_MODE      0x20u
#define C_OPT_QUERY     0x40u
#define C_OPT_ABORT     0x80u

#define RAW_UNKNOWN_OPTION 0x4242

#define META_NAME "base:allocation"

static char psk_file[64];

static void
remove_psk_file (void)
{
  if (psk_file[0])
    unlink (psk_file);
}

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  static const char key[] = "fuzz:00112233445566778899aabbccddeeff\n";
  int fd;

  (void) argc;
  (void) argv;
  snprintf (psk_file, sizeof psk_file, "/tmp/nbdaio-fuzz-psk-XXXXXX");
  fd = mkstemp (psk_file);
  if (fd == -1 || write (fd, key, sizeof key - 1) != (ssize_t) sizeof key - 1) {
    perror ("fuzz harness: PSK file");
    abort ();
  }
  close (fd);
  atexit (remove_psk_file);
  return 0;
}

static bool
is_pow2 (int64_t v)
{
  return v > 0 && !(v & (v - 1));
}

/* What a successful handshake promises. */
static void
check_connected (struct nbdaio_handle *h, unsigned cfg, int tls)
{
  int tf = nbdaio_get_transmission_flags (h);
  int sr = nbdaio_get_structured_replies_negotiated (h);
  int xhdr = nbdaio_get_extended_headers_negotiated (h);
  int64_t min = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  int64_t pref = nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED);
  int64_t max = nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM);
  int64_t payload = nbdaio_get_max_payload (h);
  const char *proto = nbdaio_get_protocol (h);
  const char *meta = nbdaio_get_meta_context (h);

  FZ_ASSERT (nbdaio_is_connected (h) == 1);
  FZ_ASSERT (nbdaio_get_fd (h) >= 0);
  FZ_ASSERT (nbdaio_get_size (h) >= 0);
  FZ_ASSERT (nbdaio_get_export_name (h) != NULL);
  FZ_ASSERT (proto && (strcmp (proto, "oldstyle") == 0 ||
                       strcmp (proto, "newstyle") == 0 ||
                       strcmp (proto, "newstyle-fixed") == 0));
  FZ_ASSERT (tf >= 0 && (tf & NBD_FLAG_HAS_FLAGS));
  FZ_ASSERT (sr == 0 || sr == 1);
  if (tf & NBD_FLAG_SEND_DF)
    FZ_ASSERT (sr == 1);
  if (tf & NBD_FLAG_SEND_FAST_ZERO)
    FZ_ASSERT (tf & NBD_FLAG_SEND_WRITE_ZEROES);
  if (cfg & C_NO_STRUCTURED)
    FZ_ASSERT (sr == 0);
  /* extended headers (asked for with structured replies) imply them */
  FZ_ASSERT (xhdr == 0 || xhdr == 1);
  if (xhdr)
    FZ_ASSERT (sr == 1 && !(cfg & C_NO_STRUCTURED));
  /* only the context asked for, only with structured replies */
  if (meta)
    FZ_ASSERT (sr == 1 && !(cfg & C_NO_META) && strcmp (meta, META_NAME) == 0);
  FZ_ASSERT (nbdaio_can_block_status (h) == (meta != NULL));
  if (min || pref || max) {
    FZ_ASSERT (is_pow2 (min) && min <= 64 * 1024);
    FZ_ASSERT (is_pow2 (pref) && pref >= min && pref >= 512);
    FZ_ASSERT (max >= pref);
  }
  FZ_ASSERT (payload >= 1 && payload <= UINT32_MAX);
  if (max)
    FZ_ASSERT (payload == max);
  /* TLS required never ends in plaintext; TLS off never starts it */
  if (tls == NBDAIO_TLS_REQUIRE)
    FZ_ASSERT (nbdaio_get_tls_negotiated (h) == 1);
  if (tls == NBDAIO_TLS_DISABLE)
    FZ_ASSERT (nbdaio_get_tls_negotiated (h) == 0);
}

/* The export facts the handle knows (after INFO or GO) obey the rules. */
static void
check_export_facts (struct nbdaio_handle *h)
{
  int tf = nbdaio_get_transmission_flags (h);
  int sr = nbdaio_get_structured_replies_negotiated (h);
  int64_t min = nbdaio_get_block_size (h, NBDAIO_SIZE_MINIMUM);
  int64_t pref = nbdaio_get_block_size (h, NBDAIO_SIZE_PREFERRED);
  int64_t max = nbdaio_get_block_size (h, NBDAIO_SIZE_MAXIMUM);
  const char *name = nbdaio_get_export_name (h);

  FZ_ASSERT (nbdaio_get_size (h) >= 0);
  FZ_ASSERT (name != NULL && strlen (name) <= 4096);
  FZ_ASSERT (tf >= 0 && (tf & NBD_FLAG_HAS_FLAGS));
  if (tf & NBD_FLAG_SEND_DF)
    FZ_ASSERT (sr == 1);
  if (tf & NBD_FLAG_SEND_FAST_ZERO)
    FZ_ASSERT (tf & NBD_FLAG_SEND_WRITE_ZEROES);
  if (min || pref || max) {
    FZ_ASSERT (is_pow2 (min) && min <= 64 * 1024);
    FZ_ASSERT (is_pow2 (pref) && pref >= min && pref >= 512);
    FZ_ASSERT (max >= pref);
  }
  FZ_ASSERT (nbdaio_get_max_payload (h) >= 1);
}

static int listed;

static void
count_export (void *user_data, const char *name, const char *description)
{
  (void) user_data;
  FZ_ASSERT (name && description);
  FZ_ASSERT (strlen (name) <= 4096 && strlen (description) <= 4096);
  listed++;
}

static void
count_context (void *user_data, uint32_t id, const char *name)
{
  (void) user_data;
  (void) id;
  FZ_ASSERT (name && *name && strlen (name) <= 4096);
  listed++;
}

/* After an opt call returned r (expected: the count of callbacks, or 0):
 * returns whether the handle still negotiates. */
static bool
check_opt_outcome (struct fz_run *run, int64_t r, int want_listed)
{
  struct nbdaio_handle *h = run->h;

  if (r >= 0) {
    FZ_ASSERT (nbdaio_is_negotiating (h) == 1);
    if (want_listed >= 0)
      FZ_ASSERT (want_listed == r);
    return true;
  }
  FZ_ASSERT (nbdaio_get_errno () != 0 && nbdaio_get_error () &&
             *nbdaio_get_error ());
  FZ_ASSERT (nbdaio_is_connected (h) == 0);
  if (nbdaio_is_negotiating (h)) {
    /* an error reply: the type is remembered, nothing is dead */
    int64_t type = nbdaio_get_opt_reply_type (h);
    FZ_ASSERT (type > 0 && (type & NBD_REP_FLAG_ERROR));
    FZ_ASSERT (nbdaio_get_connection_error (h) == NULL);
    FZ_ASSERT (fz_issue (run, FZ_PREAD, 0, 512, 0) == -1 &&
               run->cmds[run->ncmds - 1].issue_errno == ENOTCONN);
    return true;
  }
  FZ_ASSERT (nbdaio_get_connection_error (h) != NULL);
  FZ_ASSERT (nbdaio_get_fd (h) == -1);
  FZ_ASSERT (nbdaio_opt_list (h, NULL, NULL) == -1 &&
             nbdaio_get_errno () == EINVAL);
  return false;
}

/* Opt mode: the opt calls while the handle negotiates.  Returns true when
 * nbdaio_opt_go connected it. */
static bool
run_opt_calls (struct fz_run *run, unsigned cfg)
{
  static const char *const query[] = { META_NAME, NULL };
  struct nbdaio_handle *h = run->h;
  int64_t r;

  if (!nbdaio_is_negotiating (h))
    return nbdaio_is_connected (h) == 1;      /* oldstyle, plain newstyle */
  FZ_ASSERT (nbdaio_get_opt_reply_type (h) == -1);

  listed = 0;
  r = nbdaio_opt_list (h, count_export, NULL);
  if (!check_opt_outcome (run, r, listed))
    return false;

  r = nbdaio_opt_info (h);
  if (!check_opt_outcome (run, r, -1))
    return false;
  if (r == 0)
    check_export_facts (h);

  listed = 0;
  r = nbdaio_opt_list_meta_context (h, cfg & C_OPT_QUERY ? query : NULL,
                                    count_context, NULL);
  if (!check_opt_outcome (run, r, listed))
    return false;

  r = nbdaio_opt_raw (h, RAW_UNKNOWN_OPTION, "fuzz", 4);
  if (r >= 0)
    FZ_ASSERT (r == NBD_REP_ACK || (r & NBD_REP_FLAG_ERROR));
  if (!check_opt_outcome (run, r, -1))
    return false;
  if (r >= 0)
    FZ_ASSERT (nbdaio_get_opt_reply_type (h) == r);

  if (cfg & C_OPT_ABORT) {
    FZ_ASSERT (nbdaio_opt_abort (h) == 0);
    FZ_ASSERT (nbdaio_is_negotiating (h) == 0 && nbdaio_is_connected (h) == 0);
    FZ_ASSERT (fz_issue (run, FZ_PREAD, 0, 512, 0) == -1 &&
               run->cmds[run->ncmds - 1].issue_errno == ENOTCONN);
    return false;
  }
  if (nbdaio_opt_go (h) == 0) {
    FZ_ASSERT (nbdaio_is_negotiating (h) == 0);
    return true;
  }
  check_opt_outcome (run, -1, -1);
  return false;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  struct fz_pair pair;
  struct fz_run run = { 0 };
  unsigned cfg;
  int tls, r;

  if (size < 1 || size > INPUT_MAX)
    return 0;
  cfg = data[0];
  tls = (cfg & C_TLS_MASK) == 3 ? NBDAIO_TLS_DISABLE : (int) (cfg & C_TLS_MASK);

  fz_pair_open (&pair);
  fz_pair_send (&pair, data + 1, size - 1);
  fz_pair_eof (&pair);

  run.h = nbdaio_create ();
  FZ_ASSERT (run.h != NULL);
  nbdaio_set_connect_timeout (run.h, 2000);
  if (cfg & C_NO_STRUCTURED)
    nbdaio_set_request_structured_replies (run.h, 0);
  if (cfg & C_NO_META)
    nbdaio_set_meta_context (run.h, NULL);
  if (cfg & C_EXPORT_NAME)
    nbdaio_set_export_name (run.h, "fuzz");
  if (cfg & C_OPT_MODE)
    FZ_ASSERT (nbdaio_set_opt_mode (run.h, 1) == 0);
  if (tls != NBDAIO_TLS_DISABLE) {
    FZ_ASSERT (nbdaio_set_tls (run.h, tls) == 0);
    FZ_ASSERT (nbdaio_set_tls_psk_file (run.h, psk_file) == 0);
    FZ_ASSERT (nbdaio_set_tls_username (run.h, "fuzz") == 0);
  }

  r = nbdaio_connect_socket (run.h, pair.client);
  if (r == -1) {
    const char *msg = nbdaio_get_error ();
    FZ_ASSERT (nbdaio_get_errno () != 0 && msg && *msg);
    FZ_ASSERT (nbdaio_is_connected (run.h) == 0);
    FZ_ASSERT (nbdaio_get_connection_error (run.h) != NULL);
    FZ_ASSERT (nbdaio_get_fd (run.h) == -1);
    /* a handle connects once */
    FZ_ASSERT (nbdaio_connect_socket (run.h, -1) == -1 &&
               nbdaio_get_errno () == EINVAL);
    FZ_ASSERT (fz_issue (&run, FZ_PREAD, 0, 512, 0) == -1 &&
               run.cmds[0].issue_errno == ENOTCONN);
  }
  else if ((cfg & C_OPT_MODE) && !run_opt_calls (&run, cfg)) {
    /* ended (aborted, refused or dead) while negotiating: nothing to read */
    FZ_ASSERT (nbdaio_is_connected (run.h) == 0);
  }
  else {
    FZ_ASSERT (r == 0);
    check_connected (run.h, cfg, tls);
    /* one read: the rest of the input is its reply stream */
    int64_t min = nbdaio_get_block_size (run.h, NBDAIO_SIZE_MINIMUM);
    fz_issue (&run, FZ_PREAD, 0, min > 0 ? (uint32_t) min : 512, 0);
    fz_drive (&run);
    fz_retire_all (&run);
  }
  fz_close_and_check (&run);
  fz_pair_close (&pair);
  return 0;
}
