/*
 * The only place credfs reads the clock, so tests can replace it.
 * Wall time decides what an expiration means; boot time (CLOCK_BOOTTIME,
 * which keeps counting while the machine is suspended) schedules renewals
 * and expiries, so neither a wall-clock jump nor a suspend can stall or
 * rush them; monotonic time bounds short waits.
 */
#ifndef CREDFS_CLOCK_H
#define CREDFS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Seconds since the Unix epoch. */
int64_t clock_wall(void);
/* Milliseconds on a clock that never jumps (CLOCK_MONOTONIC). */
int64_t clock_mono_ms(void);

/* Milliseconds on CLOCK_BOOTTIME: monotonic, and counting suspends. */
int64_t clock_boot_ms(void);

/* Tests: replace the sources (NULL restores the real clock).  The fake
 * monotonic clock serves as boot time too, until clock_set_boot_source
 * sets another (to play a suspend). */
void clock_set_source(int64_t (*wall)(void), int64_t (*mono_ms)(void));
void clock_set_boot_source(int64_t (*boot_ms)(void));

/* The kernel's own clock id in milliseconds, never a test's source: for
 * what must watch the real clocks themselves (a suspend shows as
 * CLOCK_BOOTTIME running ahead of CLOCK_MONOTONIC; a clock step is armed
 * against CLOCK_REALTIME). */
int64_t clock_system_ms(clockid_t id);

/* RFC 3339 UTC "2026-11-22T11:41:34Z" into out (>= 21 bytes). */
void clock_format_rfc3339(int64_t t, char out[static 21]);
/* Parses ISO 8601 UTC "YYYY-MM-DDTHH:MM:SS[.frac]Z" (fraction dropped).
 * Returns 0 and sets *t, or -1 if s is not such a time. */
int clock_parse_iso8601(const char *s, int64_t *t);

/* An absolute CLOCK_MONOTONIC timespec ms milliseconds from now, for
 * pthread_cond_timedwait on a condvar created with CLOCK_MONOTONIC. */
struct timespec clock_deadline_ms(int64_t ms);

#endif
