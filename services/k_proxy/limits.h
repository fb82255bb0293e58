/* k_proxy's limits, as a mature gateway has them: token-bucket rate limits
 * on /resource/counter per session and per client address, and on logins
 * and enrolments per user and per address, with an exponential lockout
 * after card denials in a row.
 *
 * Memory is bounded whatever clients send: each scope is a fixed-size
 * set-associative table (sets of KPX_LIMIT_WAYS entries) keyed by a salted
 * 64-bit hash of the key (a session's bearer token is never stored, only
 * that hash). A new key takes the least recently used entry of its set,
 * preferring one that holds no state any more (a full bucket, no lock), so
 * a flood of random keys cannot grow the table and rarely forgets a lock.
 * Every check is O(1): one hash, one set of a few entries under one of a
 * few striped mutexes. Thread-safe.
 *
 * Times are passed in (nanoseconds of a monotonic clock) so that tests can
 * drive them; kpx_limits_now_ns gives the real one. */
#ifndef KCARD_K_PROXY_LIMITS_H
#define KCARD_K_PROXY_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KPX_LIMIT_WAYS 8
#define KPX_LIMIT_SETS_DEFAULT 1024 /* 8192 entries per scope, 48 bytes each */

/* Defaults, and why:
 * - counter per session 50000/s, burst 5000; per address 100000/s, burst
 *   10000: above what one k_proxy serves (the bench drives one session with
 *   wrk -c32 at 15-30k/s and chain-regress --parallelism 16 one session), so
 *   the regression and the bench are never limited; an operator who serves
 *   many users lowers them (e.g. 100/s per session) to bound one session's
 *   share. Fairness under a flood at these rates comes from the event-driven
 *   front, which serves connections in turn.
 * - logins and enrolments per user 5/s, burst 30; per address 50/s, burst
 *   200: a person logs in a few times a minute, scripts and tests a few
 *   dozen times in a row; 100k logins from one client are refused.
 * - lockout after 5 card denials in a row for a user (20 for an address):
 *   1 s, doubling with each further denial, at most 15 min; a success ends
 *   it.
 * - 8 logins or enrolments waiting for the card (card_worker.h). */
#define KPX_COUNTER_SESSION_RATE 50000.0
#define KPX_COUNTER_SESSION_BURST 5000.0
#define KPX_COUNTER_ADDRESS_RATE 100000.0
#define KPX_COUNTER_ADDRESS_BURST 10000.0
#define KPX_LOGIN_USER_RATE 5.0
#define KPX_LOGIN_USER_BURST 30.0
#define KPX_LOGIN_ADDRESS_RATE 50.0
#define KPX_LOGIN_ADDRESS_BURST 200.0
#define KPX_LOCKOUT_AFTER_USER 5
#define KPX_LOCKOUT_AFTER_ADDRESS 20
#define KPX_LOCKOUT_BASE_MS 1000
#define KPX_LOCKOUT_MAX_S 900

/* A token bucket: rate tokens a second, at most burst; rate 0: unlimited. */
struct kpx_rate {
    double rate;
    double burst; /* < 1 with a rate: taken as 1 */
};

struct kpx_limits_cfg {
    struct kpx_rate counter_session, counter_address;
    struct kpx_rate login_user, login_address;
    unsigned lockout_after_user;    /* denials in a row; 0: no lockout by user */
    unsigned lockout_after_address; /* 0: no lockout by address */
    unsigned lockout_base_ms;       /* first lock (0: KPX_LOCKOUT_BASE_MS) */
    unsigned lockout_max_s;         /* longest lock (0: KPX_LOCKOUT_MAX_S) */
    unsigned sets;                  /* sets per scope table (0: KPX_LIMIT_SETS_DEFAULT) */
};

/* The defaults above. */
void kpx_limits_cfg_default(struct kpx_limits_cfg *cfg);

enum kpx_limit_scope {
    KPX_LIMIT_NONE = 0, /* allowed */
    KPX_LIMIT_SESSION,
    KPX_LIMIT_ADDRESS,
    KPX_LIMIT_USER,
};
/* "none", "session", "address", "user": the metrics' scope label. */
const char *kpx_limit_scope_name(enum kpx_limit_scope s);

/* What a check decided. */
struct kpx_limit_verdict {
    enum kpx_limit_scope scope; /* KPX_LIMIT_NONE: go ahead */
    bool locked;                /* refused by a lockout (not a rate) */
    int retry_after_s;          /* when refused: seconds until a retry can pass, >= 1 */
};

/* What a login or enrolment's card decided, for the lockout. */
enum kpx_limit_result {
    KPX_LIMIT_SUCCESS, /* the card approved: the denials in a row end */
    KPX_LIMIT_DENIAL,  /* denied, timed out, an assertion failed */
    KPX_LIMIT_NEUTRAL, /* nothing about the person: card unavailable, busy */
};

struct kpx_limits;

/* NULL with a sentence in err when cfg is unusable (negative or non-finite
 * rates, too many sets). */
struct kpx_limits *kpx_limits_new(const struct kpx_limits_cfg *cfg, char *err, size_t errlen);
void kpx_limits_free(struct kpx_limits *l);
const struct kpx_limits_cfg *kpx_limits_cfg(const struct kpx_limits *l);

/* A monotonic clock in nanoseconds. */
int64_t kpx_limits_now_ns(void);

/* One counter call of the session holding token (NULL or "": no session
 * scope) from address: takes a token from both buckets, or none when either
 * refuses. */
void kpx_limits_counter(struct kpx_limits *l, const char *token, const char *address,
                        int64_t now_ns, struct kpx_limit_verdict *v);

/* One login or enrolment attempt of username from address: refused while
 * either is locked out, else takes a token from both buckets. */
void kpx_limits_login(struct kpx_limits *l, const char *username, const char *address,
                      int64_t now_ns, struct kpx_limit_verdict *v);

/* Records the card's answer to an attempt; returns how many lockouts it
 * started (0, 1 or 2: user and address). */
int kpx_limits_login_result(struct kpx_limits *l, const char *username, const char *address,
                            enum kpx_limit_result result, int64_t now_ns);

/* ---- pure pieces, exposed for tests ------------------------------------ */

/* Seconds to announce in Retry-After for a wait of wait_ns: rounded up, at
 * least 1. */
int kpx_limits_retry_after_s(int64_t wait_ns);

/* The lock after the n-th lockout in a row (n >= 1): base_ms * 2^(n-1),
 * at most max_s, in nanoseconds. */
int64_t kpx_limits_lock_ns(unsigned n, unsigned base_ms, unsigned max_s);

/* Entries in use in the table of a scope (at most sets * KPX_LIMIT_WAYS). */
size_t kpx_limits_entries(struct kpx_limits *l, enum kpx_limit_scope scope, bool counter);

#endif
