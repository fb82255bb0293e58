/* k_server's state: one durable integer in SQLite, handed out strictly
 * increasing by one, never twice, across threads and restarts; and, in the
 * same database, the k_proxy instances whose signed requests were accepted
 * (for replay protection across restarts, services/common/upstream.h). */
#ifndef KCARD_K_SERVER_COUNTER_H
#define KCARD_K_SERVER_COUNTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Values are reserved on disk this many at a time, by a background thread
 * that starts the next block while half of the current one is left: a
 * request never waits for an fsync unless a whole half block is handed out
 * during one. A crash (not a clean stop) skips at most the rest of the
 * reservation (below 2 blocks): a gap, never a value handed out twice. */
#define KSRV_RESERVE_BLOCK 1024

struct ksrv_counter;

/* Opens the database at path; ":memory:" for tests. An absent file is
 * created (mode 0600, its folder 0700) and *created set. An existing file
 * must be a k_server database: anything else (another SQLite database, an
 * empty file, text) is refused and left untouched, unless init is set and
 * the file is empty (0 bytes, or SQLite without tables), which is then made
 * a new database. *created says a new counter was made (absent file or
 * init). NULL with err set on failure. */
struct ksrv_counter *ksrv_counter_open(const char *path, bool init, bool *created, char *err,
                                       size_t errlen);
/* Stops the reserving thread and gives back the unused reservation (a
 * clean stop leaves no gap). */
void ksrv_counter_close(struct ksrv_counter *c);

/* The next value (the first is 1); 0 or -1 with err set. */
int ksrv_counter_next(struct ksrv_counter *c, int64_t *value, char *err, size_t errlen);
/* The last value handed out (0 before the first). */
int ksrv_counter_current(struct ksrv_counter *c, int64_t *value);
/* The durable upper bound of values handed out (what a crash resumes above). */
int64_t ksrv_counter_reserved(struct ksrv_counter *c);
/* false, with why, when the last attempt to reserve values failed (disk
 * full, read-only file). */
bool ksrv_counter_healthy(struct ksrv_counter *c, char *why, size_t cap);

/* Replay-protection records: an instance id with its generation, made
 * durable (synchronous=FULL) before 0 is returned. */
int ksrv_instance_record(struct ksrv_counter *c, const uint8_t id[16], int64_t gen);
/* Deletes the records (id[k], gen[k]) in one transaction; best effort. */
void ksrv_instance_forget(struct ksrv_counter *c, const uint8_t (*ids)[16], const int64_t *gens,
                          size_t n);
/* Calls each for every record; 0 or -1 with err set. */
int ksrv_instance_each(struct ksrv_counter *c,
                       int (*each)(void *arg, const uint8_t id[16], int64_t gen), void *arg,
                       char *err, size_t errlen);

struct ksvc_replay_table;
/* k_server's replay table, persisted in c's database: every instance the
 * previous run recorded is loaded closed as of now (see upstream.h), their
 * number in *loaded. NULL with err set on failure. */
struct ksvc_replay_table *ksrv_replay_open(struct ksrv_counter *c, time_t now, size_t *loaded,
                                           char *err, size_t errlen);

#endif
