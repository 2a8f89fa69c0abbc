/* fuzz_handshake.c - libFuzzer target: the handshake.  The fuzzer is the
 * server from its first byte: greeting (oldstyle, newstyle, fixed
 * newstyle), option replies, export information; what follows the
 * handshake is the transmission phase of one read the harness issues.
 *
 * Input: one configuration byte, then the server's byte stream.
 *   bits 0-1  TLS mode: 0 off, 1 allow, 2 require, 3 off (PSK credentials,
 *             so no certificate store is loaded)
 *   bit 2     do not ask for structured replies
 *   bit 3     ask for no meta context
 *   bit 4     export name "fuzz" instead of ""
 *
 * Checked on every input: a failed connect leaves a dead handle with an
 * error message, refusing commands with ENOTCONN (and running their free
 * functions); a successful one obeys the rules of design.md section 6 on
 * flags and block sizes, never runs without TLS when TLS was required, and
 * negotiates only what was asked for; then the read's callback and free
 * run exactly once (fuzz_common.c). */
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
