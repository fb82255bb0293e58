/* k_server's protected counter: one durable integer in SQLite, handed out
 * strictly increasing by one, never twice, across threads and restarts. */
#ifndef KCARD_K_SERVER_COUNTER_H
#define KCARD_K_SERVER_COUNTER_H

#include <stddef.h>
#include <stdint.h>

struct ksrv_counter;

/* Opens (creating mode 0600, and its folder 0700) the database at path;
 * ":memory:" for tests. NULL with err set on failure; a file that is not a
 * k_server database is refused and left untouched. */
struct ksrv_counter *ksrv_counter_open(const char *path, char *err, size_t errlen);
void ksrv_counter_close(struct ksrv_counter *c);

/* The next value (the first is 1); 0 or -1 with err set. */
int ksrv_counter_next(struct ksrv_counter *c, int64_t *value, char *err, size_t errlen);
/* The last value handed out (0 before the first). */
int ksrv_counter_current(struct ksrv_counter *c, int64_t *value);

#endif
