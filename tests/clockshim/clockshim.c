/* clockshim: shifts a process's wall clock for the clock-fault tests (issue 27).
 *
 * Preloaded (LD_PRELOAD=clockshim.so), it adds an offset to CLOCK_REALTIME and
 * CLOCK_REALTIME_COARSE as clock_gettime answers them, and to gettimeofday, time and timespec_get
 * (TIME_UTC). The offset is a decimal number of milliseconds, possibly negative, in the file
 * named by the environment variable RUMOR_CLOCK_OFFSET_FILE. The file is read again at most every 20 ms (of the monotonic
 * clock), so a test steps a running process by rewriting it (write a temporary file and rename
 * it over, so that a reader never sees half a number). No variable, or a missing, unreadable or
 * malformed file, means an offset of 0. Monotonic and CPU clocks are untouched: timers, timeouts
 * and round-trip times stay true, only what the process believes the time of day is moves.
 *
 * Contracts: thread-safe (the cache is two atomics; at most one thread at a time reads the file,
 * the others use the cached offset meanwhile); nothing is allocated after the constructor runs
 * (open, read and close only); errno is preserved by the re-read.
 *
 * Build: cc -shared -fPIC -O2 -o clockshim.so clockshim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REREAD_NS 20000000LL /* 20 ms */

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static char offset_path[PATH_MAX];
static _Atomic int64_t offset_ns;
static _Atomic int64_t next_read_ns = INT64_MIN; /* monotonic time of the next re-read */

/* The monotonic clock without going through this shim's own symbol. */
static int64_t monotonic_ns(void) {
    struct timespec now;
    if (real_clock_gettime(CLOCK_MONOTONIC, &now) != 0) return 0;
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/* The offset in the file, in nanoseconds; 0 if there is none. */
static int64_t read_offset_ns(void) {
    if (offset_path[0] == '\0') return 0;
    int fd = open(offset_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char text[32];
    ssize_t length = read(fd, text, sizeof text - 1);
    close(fd);
    if (length <= 0) return 0;
    text[length] = '\0';
    char *cursor = text;
    while (*cursor == ' ' || *cursor == '\t') cursor++;
    int negative = 0;
    if (*cursor == '-' || *cursor == '+') negative = *cursor++ == '-';
    if (*cursor < '0' || *cursor > '9') return 0;
    int64_t milliseconds = 0;
    for (; *cursor >= '0' && *cursor <= '9'; cursor++) {
        if (milliseconds > (INT64_MAX / 1000000LL - 9) / 10) return 0; /* beyond ±292 years */
        milliseconds = milliseconds * 10 + (*cursor - '0');
    }
    while (*cursor == ' ' || *cursor == '\t' || *cursor == '\r' || *cursor == '\n') cursor++;
    if (*cursor != '\0') return 0;
    return (negative ? -milliseconds : milliseconds) * 1000000LL;
}

/* The current offset: cached, re-read by one thread once the cache is 20 ms old. */
static int64_t current_offset_ns(void) {
    int64_t now = monotonic_ns();
    int64_t due = atomic_load_explicit(&next_read_ns, memory_order_acquire);
    if (now >= due &&
        atomic_compare_exchange_strong_explicit(&next_read_ns, &due, now + REREAD_NS, memory_order_acq_rel,
                                                memory_order_acquire)) {
        int saved = errno;
        atomic_store_explicit(&offset_ns, read_offset_ns(), memory_order_release);
        errno = saved;
    }
    return atomic_load_explicit(&offset_ns, memory_order_acquire);
}

static void shift(struct timespec *ts, int64_t by_ns) {
    int64_t ns = (int64_t)ts->tv_nsec + by_ns % 1000000000LL;
    int64_t sec = (int64_t)ts->tv_sec + by_ns / 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        sec -= 1;
    } else if (ns >= 1000000000LL) {
        ns -= 1000000000LL;
        sec += 1;
    }
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)ns;
}

__attribute__((constructor)) static void clockshim_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("RUMOR_CLOCK_OFFSET_FILE");
    if (path && strlen(path) < sizeof offset_path) strcpy(offset_path, path);
    current_offset_ns();
}

int clock_gettime(clockid_t clock, struct timespec *ts) {
    if (!real_clock_gettime) clockshim_init(); /* called before our constructor ran */
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        shift(ts, current_offset_ns());
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    if (!real_clock_gettime) clockshim_init();
    if (tz) {
        /* Obsolete, but answer it as the kernel does: UTC, no daylight saving. */
        struct timezone *zone = tz;
        zone->tz_minuteswest = 0;
        zone->tz_dsttime = 0;
    }
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return -1;
    tv->tv_sec = now.tv_sec;
    tv->tv_usec = now.tv_nsec / 1000;
    return 0;
}

int timespec_get(struct timespec *ts, int base) {
    if (base != TIME_UTC || clock_gettime(CLOCK_REALTIME, ts) != 0) return 0;
    return base;
}

time_t time(time_t *out) {
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0) return (time_t)-1;
    if (out) *out = now.tv_sec;
    return now.tv_sec;
}
