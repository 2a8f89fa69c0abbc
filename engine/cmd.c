/* cmd.c - command slots: allocation from a free stack (the caller's, and
 * one for the pieces of split commands, which complete into split.c),
 * completion (the one place callbacks run and are freed), retirement, and
 * the public calls that ask about completed commands.  Everything here is
 * O(1) per command; tracking the data/hole chunks of a read (cmd_cover) is
 * O(1) per chunk while they form at most CMD_INLINE_RUNS runs, then
 * O(1 + length / 64) on a bitmap of the request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "internal.h"

/* The piece slots of split commands: as many as the caller's, within
 * CMD_PIECE_SLOTS_MIN.._MAX; none when split is off. */
static uint32_t
piece_slots (const struct nbdaio_handle *h)
{
  uint32_t n = h->max_in_flight;

  if (h->split_off)
    return 0;
  return n < CMD_PIECE_SLOTS_MIN ? CMD_PIECE_SLOTS_MIN :
         n > CMD_PIECE_SLOTS_MAX ? CMD_PIECE_SLOTS_MAX : n;
}

int
cmd_slots_init (struct nbdaio_handle *h)
{
  uint32_t n = h->max_in_flight, np = piece_slots (h);

  h->cmds = calloc (n + np, sizeof *h->cmds);
  h->free_stack = malloc (n * sizeof *h->free_stack);
  h->piece_stack = malloc ((np ? np : 1) * sizeof *h->piece_stack);
  if (!h->cmds || !h->free_stack || !h->piece_stack)
    return set_error (ENOMEM, "out of memory allocating %u command slots",
                      n + np);
  h->ncmds = n + np;
  for (uint32_t i = 0; i < n; i++)
    h->free_stack[i] = n - 1 - i;
  h->nfree = n;
  for (uint32_t i = 0; i < np; i++)
    h->piece_stack[i] = n + np - 1 - i;
  h->npiece_free = np;
  h->next_seq = 1;
  h->done.head = h->done.tail = CMD_NONE;
  h->split_queue.head = h->split_queue.tail = CMD_NONE;
  return 0;
}

void
cmd_slots_free (struct nbdaio_handle *h)
{
  free (h->cmds);
  free (h->free_stack);
  free (h->piece_stack);
  free (h->violation_msgs);
  h->violation_msgs = NULL;
  h->cmds = NULL;
  h->free_stack = NULL;
  h->piece_stack = NULL;
  h->ncmds = h->nfree = h->npiece_free = 0;
}

/* Slot idx, taken off its free stack, with a new cookie. */
static struct nbdaio_cmd *
slot_take (struct nbdaio_handle *h, uint32_t idx)
{
  struct nbdaio_cmd *cmd = &h->cmds[idx];

  cmd->cookie = (h->next_seq++ << CMD_SLOT_BITS) | idx;
  cmd->error = 0;
  cmd->violation = RULE_NONE;
  cmd->covered = 0;
  cmd->nruns = 0;
  cmd->got_block_status = false;
  cmd->parent = CMD_NONE;
  return cmd;
}

struct nbdaio_cmd *
cmd_alloc (struct nbdaio_handle *h)
{
  if (h->nfree == 0) {
    set_error (EAGAIN, "too many commands: %u in flight and %u completed but "
               "not retired (limit %u, see nbdaio_set_max_in_flight)",
               h->in_flight, h->max_in_flight - h->in_flight,
               h->max_in_flight);
    return NULL;
  }
  return slot_take (h, h->free_stack[--h->nfree]);
}

struct nbdaio_cmd *
cmd_alloc_piece (struct nbdaio_handle *h)
{
  if (h->npiece_free == 0)
    return NULL;
  return slot_take (h, h->piece_stack[--h->npiece_free]);
}

static uint32_t
cmd_index (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  return (uint32_t) (cmd - h->cmds);
}

static void
cmd_retire (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  uint32_t idx = cmd_index (h, cmd);

  cmd->last_cookie = cmd->cookie;
  cmd->cookie = 0;
  cmd->state = CMD_FREE;
  if (idx < h->max_in_flight)
    h->free_stack[h->nfree++] = idx;
  else
    h->piece_stack[h->npiece_free++] = idx;
}

static void
done_list_add (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  slot_list_append (h, &h->done, SLOT_LINK (done), cmd_index (h, cmd));
}

static void
done_list_remove (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  slot_list_remove (h, &h->done, SLOT_LINK (done), cmd_index (h, cmd));
}

void
cmd_set_error (struct nbdaio_cmd *cmd, int err)
{
  if (cmd->error == 0)
    cmd->error = err;
}

void
callbacks_release (nbdaio_chunk_callback *chunk,
                   nbdaio_extent_callback *extent,
                   nbdaio_completion_callback *completion)
{
  if (chunk && chunk->free)
    chunk->free (chunk->user_data);
  if (extent && extent->free)
    extent->free (extent->user_data);
  if (completion && completion->free)
    completion->free (completion->user_data);
  if (chunk)
    memset (chunk, 0, sizeof *chunk);
  if (extent)
    memset (extent, 0, sizeof *extent);
  if (completion)
    memset (completion, 0, sizeof *completion);
}

/* Add [start, end) to the sorted inline runs.  Returns 0, -1 if it
 * overlaps a run, 1 if it needs a run more than there is room for. */
static int
runs_add (struct nbdaio_cmd *cmd, uint32_t start, uint32_t end)
{
  struct cmd_run *r = cmd->runs;
  uint32_t n = cmd->nruns, i = 0;

  while (i < n && r[i].end < start)     /* the first run ending at or after
                                         * start; n <= CMD_INLINE_RUNS */
    i++;
  if ((i < n && r[i].start < end && start < r[i].end) ||
      (i + 1 < n && r[i + 1].start < end))
    return -1;
  if (i < n && r[i].end == start) {                   /* extend run i */
    r[i].end = end;
    if (i + 1 < n && r[i + 1].start == end) {         /* and join i + 1 */
      r[i].end = r[i + 1].end;
      memmove (&r[i + 1], &r[i + 2], (n - i - 2) * sizeof *r);
      cmd->nruns--;
    }
    return 0;
  }
  if (i < n && r[i].start == end) {                   /* prepend to run i */
    r[i].start = start;
    return 0;
  }
  if (n == CMD_INLINE_RUNS)
    return 1;
  memmove (&r[i + 1], &r[i], (n - i) * sizeof *r);
  r[i].start = start;
  r[i].end = end;
  cmd->nruns++;
  return 0;
}

/* Set the bits [start, end) a word at a time.  Returns 0, or -1 if one of
 * them was set already. */
static int
bits_add (uint64_t *w, uint32_t start, uint32_t end)
{
  uint32_t first = start / 64, last = (end - 1) / 64;

  for (uint32_t i = first; i <= last; i++) {
    uint64_t m = ~UINT64_C (0);
    if (i == first)
      m &= ~UINT64_C (0) << (start % 64);
    if (i == last)
      m &= ~UINT64_C (0) >> (63 - (end - 1) % 64);
    if (w[i] & m)
      return -1;
    w[i] |= m;
  }
  return 0;
}

/* The reply is more fragmented than the inline runs hold: switch cmd to a
 * bitmap of its request (count bits), holding what the runs held. */
static int
bits_from_runs (struct nbdaio_cmd *cmd)
{
  cmd->bits = calloc (((size_t) cmd->count + 63) / 64, sizeof *cmd->bits);
  if (!cmd->bits)
    return set_error (ENOMEM, "out of memory tracking the chunks of a "
                      "%llu-byte read", (unsigned long long) cmd->count);
  for (uint32_t i = 0; i < cmd->nruns; i++)
    bits_add (cmd->bits, cmd->runs[i].start, cmd->runs[i].end);
  return 0;
}

int
cmd_cover (struct nbdaio_cmd *cmd, uint32_t start, uint32_t len)
{
  int r = cmd->bits ? 1 : runs_add (cmd, start, start + len);

  if (r == 1) {
    if (!cmd->bits && bits_from_runs (cmd) == -1)
      return -1;
    r = bits_add (cmd->bits, start, start + len);
  }
  if (r == -1)
    return set_violation (RULE_CHUNK_OVERLAP, "chunk [%llu, +%u) of cookie "
                          "0x%llx overlaps data already received",
                          (unsigned long long) (cmd->offset + start), len,
                          (unsigned long long) cmd->cookie);
  cmd->covered += len;
  return 0;
}

void
cmd_complete (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  nbdaio_chunk_callback chunk = cmd->chunk;
  nbdaio_extent_callback extent = cmd->extent;
  nbdaio_completion_callback completion = cmd->completion;
  uint64_t cookie = cmd->cookie;
  int err = cmd->error, retire = 0;

  if (cmd->state == CMD_SENT)
    deadline_unsent (h, cmd);
  if (cmd->state == CMD_SENT || cmd->state == CMD_QUEUED) {
    h->st.completed[cmd->type]++;       /* a request of the wire */
    h->st.failed[cmd->type] += err != 0;
  }
  cmd->state = CMD_DONE;
  h->rc.progress |= err == 0;   /* reconnect.c: the server answers */
  if (cmd->bits) {
    free (cmd->bits);
    cmd->bits = NULL;
  }
  if (err == ESHUTDOWN && !h->server_shutdown) {
    h->server_shutdown = true;
    h->disc_wanted = true;
  }
  if (cmd->parent != CMD_NONE) {        /* a piece: free its slot first */
    struct nbdaio_cmd *parent = &h->cmds[cmd->parent];
    cmd_retire (h, cmd);
    split_piece_done (h, parent, err);
    return;
  }
  h->in_flight--;
  if (h->group)
    group_cmd_done (h, cmd);
  /* The command is complete (and retirable) before its callback runs: the
   * callback may retire it, or issue commands that reuse slots. */
  memset (&cmd->chunk, 0, sizeof cmd->chunk);
  memset (&cmd->extent, 0, sizeof cmd->extent);
  memset (&cmd->completion, 0, sizeof cmd->completion);
  done_list_add (h, cmd);
  if (completion.callback) {
    if (err == EPROTO && cmd->violation != RULE_NONE)
      cmd_raise_violation (h, cmd);     /* what the callback sees */
    retire = completion.callback (completion.user_data, &err) == 1;
    if (cmd->cookie == cookie && cmd->state == CMD_DONE) {
      cmd->error = err;
      if (retire) {
        done_list_remove (h, cmd);
        cmd_retire (h, cmd);
      }
    }
  }
  callbacks_release (&chunk, &extent, &completion);
}

void
cmd_keep_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  struct nbdaio_cmd *c = cmd->parent == CMD_NONE ? cmd : &h->cmds[cmd->parent];

  char *msg;
  size_t n;

  if (c != cmd && c->error)
    return;                     /* a piece failed the split command first */
  c->violation = error_rule ();
  /* the first one: one array for the handle's life, not one per command
   * (out of memory: the message says the rule only) */
  if (!h->violation_msgs)
    h->violation_msgs = malloc (h->max_in_flight * sizeof *h->violation_msgs);
  if (!h->violation_msgs || c->violation == RULE_NONE)
    return;
  msg = h->violation_msgs[cmd_index (h, c)];
  n = (size_t) snprintf (msg, CMD_VIOLATION_MAX, "%s", nbdaio_get_error ());
  if (n >= CMD_VIOLATION_MAX) {         /* cut: never inside a UTF-8 code */
    n = CMD_VIOLATION_MAX - 1;
    while (n > 0 && ((uint8_t) msg[n] & 0xc0) == 0x80)
      n--;
    msg[n] = '\0';
  }
}

int
cmd_raise_violation (struct nbdaio_handle *h, struct nbdaio_cmd *cmd)
{
  const struct rule *rule = rule_get (cmd->violation);
  char msg[ERROR_MAX];

  if (h->violation_msgs)
    snprintf (msg, sizeof msg, "%s (NBD specification, section \"%s\")",
              h->violation_msgs[cmd_index (h, cmd)], rule->section);
  else
    snprintf (msg, sizeof msg, "protocol violation [%s]: %s (NBD "
              "specification, section \"%s\")", rule->tag, rule->text,
              rule->section);
  return error_raise (EPROTO, cmd->violation, msg);
}

void
cmd_fail_all (struct nbdaio_handle *h, int err)
{
  for (uint32_t i = 0; i < h->ncmds; i++) {
    struct nbdaio_cmd *cmd = &h->cmds[i];
    if (cmd->state == CMD_QUEUED || cmd->state == CMD_SENT) {
      cmd_set_error (cmd, err);
      cmd_complete (h, cmd);
    }
  }
  split_fail_all (h, err);
  h->sq_len = 0;
  h->sq_sent = 0;
}

int
nbdaio_aio_command_completed (struct nbdaio_handle *h, int64_t cookie)
{
  struct nbdaio_cmd *cmd;
  uint64_t idx = (uint64_t) cookie & CMD_SLOT_MASK;
  int err;
  bool alone;

  if (!h || cookie < 1 || idx >= h->ncmds || idx >= h->max_in_flight ||
      h->cmds[idx].cookie != (uint64_t) cookie)
    return set_error (EINVAL, "cookie %lld is not a command of this handle "
                      "(unknown or already retired)", (long long) cookie);
  cmd = &h->cmds[idx];
  if (cmd->state != CMD_DONE)
    return 0;
  err = cmd->error;
  alone = err == EPROTO && cmd->violation != RULE_NONE;
  if (alone)
    cmd_raise_violation (h, cmd);       /* before the slot is free again */
  done_list_remove (h, cmd);
  cmd_retire (h, cmd);
  if (alone)
    return -1;
  if (err)
    return set_error (err, "command %lld failed: %s", (long long) cookie,
                      strerror (err));
  return 1;
}

int64_t
nbdaio_aio_peek_command_completed (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  if (h->done.head != CMD_NONE)
    return (int64_t) h->cmds[h->done.head].cookie;
  if (h->in_flight == 0)
    return set_error (EINVAL, "no commands are in flight or awaiting "
                      "retirement");
  return 0;
}

int
nbdaio_aio_in_flight (struct nbdaio_handle *h)
{
  if (handle_check_state (h, IN_ANY_STATE, __func__) == -1)
    return -1;
  return (int) h->in_flight;
}
