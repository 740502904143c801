/*
 * analyzer/reader.h -- reads a trace file's segments in sequence order and
 * drives a replay (replay.h) with their records. Prefix ht_rd_.
 *
 * Per segment: the keyframe, then the events, all in file order: the
 * collector wrote one stream per process in time order (format 2), with
 * frees naming their allocation by id, so nothing is sorted or matched
 * here and memory does not depend on the segment's length.
 *
 * The first segment's keyframe seeds the state. A later keyframe is a
 * consistency point: when anything was lost before it (a gap in sequence
 * numbers -- overwritten ring slots or a damaged segment --, a torn or
 * corrupt previous segment) its live set replaces the replay's; otherwise
 * its contents are already known and skipped.
 *
 * What is lost is said once, on stderr, one line per incident:
 * "heaptrace: warning: PATH: ...".
 */
#ifndef HT_ANALYZER_READER_H
#define HT_ANALYZER_READER_H

#include "analyzer/replay.h"
#include "formats/tracefile.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ht_rd_s ht_rd_t;

/* What reading covered and what it lost. */
typedef struct ht_rd_stats_s {
    uint64_t segs;           /* segments replayed (fully or in part) */
    uint64_t first_seq, last_seq;
    uint64_t missing_segs;   /* sequence numbers absent between first and last */
    uint64_t torn_segs;      /* cut short (crash, full disk) */
    uint64_t bad_segs;       /* unreadable, or with a corrupt record inside */
    uint64_t skipped_segs;   /* damaged segments the file reader dropped */
    uint64_t records;        /* records decoded */
    bool head_lost;          /* the first segment is not the trace's first: a
                                ring that wrapped, or its start was damaged */
} ht_rd_stats_t;

/* Open `path` (see ht_tfr_open). quiet: no warnings on stderr. Returns 0,
 * or -errno / -EBADMSG with one line in err ("what is wrong", without the
 * path). */
int ht_rd_open(ht_rd_t **out, const char *path, bool quiet, char *err, size_t errlen);
const ht_file_info_t *ht_rd_info(const ht_rd_t *rd);
/* Number of segments the file holds. */
size_t ht_rd_nsegs(const ht_rd_t *rd);

/*
 * Replay the trace into rp. With stop_snapshot >= 0, stop right after the
 * keyframe of snapshot stop_snapshot (inuse = live at that snapshot);
 * -ENOENT (with a message in err) when the trace has no such snapshot.
 * progress: a progress line on stderr. Returns 0, -ENOENT, -ENOMEM, or
 * -EBADMSG when nothing at all could be read (every segment damaged).
 */
int ht_rd_replay(ht_rd_t *rd, ht_rp_t *rp, int64_t stop_snapshot, bool progress, char *err,
                 size_t errlen);
const ht_rd_stats_t *ht_rd_stats(const ht_rd_t *rd);
void ht_rd_close(ht_rd_t *rd);

/*
 * Replay one segment's raw records (keyframe + batches) into rp; the part
 * of ht_rd_replay that needs no file, so tests can feed record streams
 * made with ht_tf_put_*. seg_pid: the pid the keyframe belongs to. Sets
 * *stopped when stop_snapshot's keyframe was reached (events after it are
 * not replayed). Returns 0, -ENOMEM, or -EBADMSG when a record is corrupt
 * (what came before it was replayed; *bad_off is its offset).
 */
int ht_rd_segment(ht_rp_t *rp, const uint8_t *raw, size_t len, uint64_t seq, uint64_t seg_pid,
                  bool reseed, int64_t stop_snapshot, bool *stopped, size_t *bad_off,
                  uint64_t *nrecords);

#endif /* HT_ANALYZER_READER_H */
