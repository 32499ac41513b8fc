// Fault injection for real-process tests: preloaded (LD_PRELOAD) into any process that submits
// its I/O through libaio (DiskLease and sanlock alike), it can delay or hang io_submit, make a
// chosen write land long after its caller gave up on it, fail a chosen read or write with EIO
// without touching the disk, and step the process's wall clock (CLOCK_REALTIME, gettimeofday,
// time, realtime condition-variable deadlines) while leaving CLOCK_MONOTONIC and CLOCK_BOOTTIME
// alone. Every behaviour is off unless its variable is set (see README.md), so preloading it
// with nothing set changes nothing. Variables are read once, on first use.
//
// Build: gcc -O2 -shared -fPIC -o faultio.so faultio.c -ldl -lpthread
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
// <sys/time.h> is left out on purpose: it declares gettimeofday nonnull, which would let the
// compiler drop our NULL check; struct timeval comes from <sys/types.h> (via libaio.h).

#define NS_PER_SEC 1000000000LL
#define NS_PER_MS 1000000LL

typedef int (*submit_fn)(io_context_t, long, struct iocb **);
typedef int (*getevents_fn)(io_context_t, long, long, struct io_event *, struct timespec *);
typedef int (*destroy_fn)(io_context_t);
typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef int (*gettimeofday_fn)(struct timeval *, void *);
typedef time_t (*time_fn)(time_t *);
typedef int (*cond_init_fn)(pthread_cond_t *, const pthread_condattr_t *);
typedef int (*cond_destroy_fn)(pthread_cond_t *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t,
                                 const struct timespec *);

// A byte range [offset, offset+len) of which the first `count` matching requests are hit.
struct target {
    int on;
    long long offset, len;
    atomic_long left;
};

static struct {
    submit_fn submit;
    getevents_fn getevents;
    destroy_fn destroy;
    clock_gettime_fn clock_gettime;
    gettimeofday_fn gettimeofday;
    time_fn time;
    cond_init_fn cond_init;
    cond_destroy_fn cond_destroy;
    cond_timedwait_fn cond_timedwait;
    cond_clockwait_fn cond_clockwait;

    long long delay_us;
    const char *hang_file;
    struct target late, fail;
    long long late_ms;
    const char *shift_file;
    int verbose;
} cfg;

static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static void *real_sym(const char *name, const char *version) {
    void *p = version ? dlvsym(RTLD_NEXT, name, version) : NULL;
    return p ? p : dlsym(RTLD_NEXT, name);
}

static const char *env_str(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

static long long env_ll(const char *name, long long dflt) {
    const char *v = env_str(name);
    return v ? strtoll(v, NULL, 0) : dflt;
}

static void target_init(struct target *t, const char *prefix) {
    char name[64];
    snprintf(name, sizeof name, "FAULTIO_%s_OFFSET", prefix);
    t->on = env_str(name) != NULL;
    t->offset = env_ll(name, 0);
    snprintf(name, sizeof name, "FAULTIO_%s_LEN", prefix);
    t->len = env_ll(name, 512);
    snprintf(name, sizeof name, "FAULTIO_%s_COUNT", prefix);
    atomic_store(&t->left, (long)env_ll(name, 1));
    if (t->len <= 0 || atomic_load(&t->left) <= 0) t->on = 0;
}

static long long shift_read_file(long long previous);
static _Atomic long long shift_value;        // seconds
static _Atomic long long shift_checked_ns;   // CLOCK_MONOTONIC of the last read of the file
static atomic_int shift_busy;

static void cfg_load(void) {
    cfg.submit = (submit_fn)real_sym("io_submit", "LIBAIO_0.1");
    cfg.getevents = (getevents_fn)real_sym("io_getevents", "LIBAIO_0.4");
    cfg.destroy = (destroy_fn)real_sym("io_destroy", "LIBAIO_0.4");
    cfg.clock_gettime = (clock_gettime_fn)real_sym("clock_gettime", "GLIBC_2.17");
    cfg.gettimeofday = (gettimeofday_fn)real_sym("gettimeofday", NULL);
    cfg.time = (time_fn)real_sym("time", NULL);
    cfg.cond_init = (cond_init_fn)real_sym("pthread_cond_init", "GLIBC_2.3.2");
    cfg.cond_destroy = (cond_destroy_fn)real_sym("pthread_cond_destroy", "GLIBC_2.3.2");
    cfg.cond_timedwait = (cond_timedwait_fn)real_sym("pthread_cond_timedwait", "GLIBC_2.3.2");
    cfg.cond_clockwait = (cond_clockwait_fn)real_sym("pthread_cond_clockwait", NULL);

    cfg.delay_us = env_ll("FAULTIO_DELAY_US", 0);
    cfg.hang_file = env_str("FAULTIO_HANG_FILE");
    target_init(&cfg.late, "LATE");
    cfg.late_ms = env_ll("FAULTIO_LATE_MS", 1000);
    target_init(&cfg.fail, "FAIL");
    cfg.shift_file = env_str("FAULTIO_REALTIME_SHIFT_FILE");
    cfg.verbose = env_ll("FAULTIO_VERBOSE", 0) != 0;
    if (cfg.shift_file) {
        atomic_store(&shift_value, shift_read_file(0));
        struct timespec m;
        cfg.clock_gettime(CLOCK_MONOTONIC, &m);
        atomic_store(&shift_checked_ns, m.tv_sec * NS_PER_SEC + m.tv_nsec);
    }
}

static inline void init(void) { pthread_once(&cfg_once, cfg_load); }

static long long real_now_ns(clockid_t clk) {
    struct timespec ts;
    if (cfg.clock_gettime) cfg.clock_gettime(clk, &ts);
    else syscall(SYS_clock_gettime, clk, &ts);
    return ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static struct timespec ns_to_ts(long long ns) {
    struct timespec ts = { ns / NS_PER_SEC, ns % NS_PER_SEC };
    return ts;
}

static void sleep_ns(long long ns) {
    struct timespec ts = ns_to_ts(ns);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---------------------------------------------------------------- io_submit faults */

// Offset and length of a read or write request; 0 if it is neither.
static int rw_range(const struct iocb *cb, int *is_write, long long *off, long long *len) {
    switch (cb->aio_lio_opcode) {
    case IO_CMD_PREAD:
    case IO_CMD_PWRITE:
        *is_write = cb->aio_lio_opcode == IO_CMD_PWRITE;
        *off = cb->u.c.offset;
        *len = (long long)cb->u.c.nbytes;
        return 1;
    case IO_CMD_PREADV:
    case IO_CMD_PWRITEV: {
        *is_write = cb->aio_lio_opcode == IO_CMD_PWRITEV;
        *off = cb->u.v.offset;
        long long n = 0;
        for (unsigned long i = 0; cb->u.v.vec && i < cb->u.v.nr; i++) n += cb->u.v.vec[i].iov_len;
        *len = n;
        return 1;
    }
    default:
        return 0;
    }
}

enum action { PASS, FAIL, LATE };

static int hits(const struct target *t, long long off, long long len) {
    return t->on && len > 0 && off < t->offset + t->len && off + len > t->offset &&
           atomic_load(&t->left) > 0;
}

static int take(struct target *t) {
    long left = atomic_load(&t->left);
    while (left > 0)
        if (atomic_compare_exchange_weak(&t->left, &left, left - 1)) return 1;
    return 0;
}

// What to do with one request; with `consume` set, a hit uses up one of the target's count.
static enum action classify(struct iocb *cb, int consume) {
    int is_write;
    long long off, len;
    if (!cb || !rw_range(cb, &is_write, &off, &len)) return PASS;
    if (hits(&cfg.fail, off, len) && (!consume || take(&cfg.fail))) return FAIL;
    if (is_write && hits(&cfg.late, off, len) && (!consume || take(&cfg.late))) return LATE;
    return PASS;
}

// Completions of failed requests, waiting for io_getevents; FIFO, keyed by io_context.
struct fake {
    struct fake *next;
    io_context_t ctx;
    struct io_event ev;
};
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake *fake_head, **fake_tail = &fake_head;

static void queue_fake(io_context_t ctx, struct iocb *cb) {
    struct fake *f = calloc(1, sizeof *f);
    if (!f) abort();
    f->ctx = ctx;
    f->ev.data = cb->data;
    f->ev.obj = cb;
    f->ev.res = (unsigned long)-EIO;
    f->ev.res2 = 0;
    pthread_mutex_lock(&fake_lock);
    *fake_tail = f;
    fake_tail = &f->next;
    pthread_mutex_unlock(&fake_lock);
    // A real completion would signal the request's eventfd; so does this one.
    if (cb->u.c.flags & 1 /* IOCB_FLAG_RESFD */) {
        uint64_t one = 1;
        if (write((int)cb->u.c.resfd, &one, sizeof one) < 0) {}
    }
}

static long pop_fakes(io_context_t ctx, struct io_event *out, long max) {
    long n = 0;
    if (max <= 0) return 0;
    pthread_mutex_lock(&fake_lock);
    for (struct fake **pp = &fake_head; *pp && n < max;) {
        struct fake *f = *pp;
        if (f->ctx != ctx) {
            pp = &f->next;
            continue;
        }
        out[n++] = f->ev;
        *pp = f->next;
        if (fake_tail == &f->next) fake_tail = pp;
        free(f);
    }
    pthread_mutex_unlock(&fake_lock);
    return n;
}

// A write submitted late from its own thread: a private copy of the caller's iocb (and of its
// iovec array), never freed, since the kernel refers to it until the write completes.
struct late {
    io_context_t ctx;
    struct iocb cb;
    struct timespec due;   // CLOCK_MONOTONIC
};

static void *late_main(void *arg) {
    struct late *l = arg;
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &l->due, NULL) == EINTR) {}
    struct iocb *one = &l->cb;
    int rc = cfg.submit(l->ctx, 1, &one);
    if (rc != 1)
        fprintf(stderr, "faultio: late write at offset %lld failed to submit: %s\n",
                (long long)l->cb.u.c.offset, rc < 0 ? strerror(-rc) : "not taken");
    else if (cfg.verbose)
        fprintf(stderr, "faultio: late write at offset %lld submitted\n",
                (long long)l->cb.u.c.offset);
    return NULL;   // l is leaked on purpose
}

static int schedule_late(io_context_t ctx, struct iocb *cb) {
    struct late *l = calloc(1, sizeof *l);
    if (!l) return -1;
    l->ctx = ctx;
    l->cb = *cb;
    if (cb->aio_lio_opcode == IO_CMD_PWRITEV && cb->u.v.vec) {
        size_t sz = cb->u.v.nr * sizeof(struct iovec);
        struct iovec *v = malloc(sz ? sz : 1);
        if (!v) { free(l); return -1; }
        memcpy(v, cb->u.v.vec, sz);
        l->cb.u.v.vec = v;
    }
    l->due = ns_to_ts(real_now_ns(CLOCK_MONOTONIC) + cfg.late_ms * NS_PER_MS);

    // The thread blocks every signal, so none meant for the program is delivered to it.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &attr, late_main, l);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        if (l->cb.u.v.vec != cb->u.v.vec) free((void *)l->cb.u.v.vec);
        free(l);
        return -1;
    }
    return 0;
}

int io_submit(io_context_t ctx, long nr, struct iocb **ios) {
    init();
    if (!cfg.submit) return -ENOSYS;
    if (cfg.hang_file)
        while (access(cfg.hang_file, F_OK) == 0) sleep_ns(10 * NS_PER_MS);
    if (cfg.delay_us > 0) sleep_ns(cfg.delay_us * 1000);
    if ((!cfg.late.on && !cfg.fail.on) || nr <= 0 || !ios) return cfg.submit(ctx, nr, ios);

    // Requests go in order: each run of untouched ones in one real io_submit; a failed or
    // late one counts as taken. A short real submit ends the call there, as the kernel would.
    long i = 0;
    while (i < nr) {
        long j = i;
        while (j < nr && classify(ios[j], 0) == PASS) j++;
        if (j > i) {
            int rc = cfg.submit(ctx, j - i, ios + i);
            if (rc < 0) return i > 0 ? (int)i : rc;
            if (rc < j - i) return (int)(i + rc);
            i = j;
            continue;
        }
        struct iocb *cb = ios[i];
        enum action a = classify(cb, 1);
        if (a == LATE && schedule_late(ctx, cb) != 0) {
            fprintf(stderr, "faultio: cannot defer the write at offset %lld; submitting it now\n",
                    (long long)cb->u.c.offset);
            a = PASS;
        }
        if (a == FAIL) {
            queue_fake(ctx, cb);
            if (cfg.verbose)
                fprintf(stderr, "faultio: %s at offset %lld fails with EIO\n",
                        cb->aio_lio_opcode == IO_CMD_PWRITE || cb->aio_lio_opcode == IO_CMD_PWRITEV
                            ? "write" : "read",
                        (long long)cb->u.c.offset);
        } else if (a == LATE) {
            if (cfg.verbose)
                fprintf(stderr, "faultio: write at offset %lld deferred by %lld ms\n",
                        (long long)cb->u.c.offset, cfg.late_ms);
        } else {
            int rc = cfg.submit(ctx, 1, ios + i);
            if (rc < 0) return i > 0 ? (int)i : rc;
            if (rc == 0) return (int)i;
        }
        i++;
    }
    return (int)nr;
}

int io_getevents(io_context_t ctx, long min_nr, long nr, struct io_event *events,
                 struct timespec *timeout) {
    init();
    if (!cfg.getevents) return -ENOSYS;
    if (!cfg.fail.on || nr <= 0 || min_nr < 0 || min_nr > nr || !events)
        return cfg.getevents(ctx, min_nr, nr, events, timeout);

    long got = pop_fakes(ctx, events, nr);
    if (got >= nr) return (int)got;
    if (got >= min_nr) {
        struct timespec zero = { 0, 0 };
        int rc = cfg.getevents(ctx, 0, nr - got, events + got, &zero);
        return (int)(rc > 0 ? got + rc : got);
    }
    // Wait in slices of at most 10 ms, so a failure queued by another thread meanwhile is
    // delivered to a caller already waiting here.
    long long deadline = -1;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= NS_PER_SEC)
            return got > 0 ? (int)got : -EINVAL;
        deadline = real_now_ns(CLOCK_MONOTONIC) + timeout->tv_sec * NS_PER_SEC + timeout->tv_nsec;
    }
    for (;;) {
        long long slice = 10 * NS_PER_MS;
        if (deadline >= 0) {
            long long left = deadline - real_now_ns(CLOCK_MONOTONIC);
            if (left < 0) left = 0;
            if (left < slice) slice = left;
        }
        struct timespec ts = ns_to_ts(slice);
        int rc = cfg.getevents(ctx, min_nr - got, nr - got, events + got, &ts);
        if (rc < 0) return got > 0 ? (int)got : rc;
        got += rc;
        if (got < nr) got += pop_fakes(ctx, events + got, nr - got);
        if (got >= min_nr) return (int)got;
        if (deadline >= 0 && real_now_ns(CLOCK_MONOTONIC) >= deadline) return (int)got;
    }
}

// Failures still queued for a context die with it (a new context may get the same address).
int io_destroy(io_context_t ctx) {
    init();
    if (!cfg.destroy) return -ENOSYS;
    if (cfg.fail.on) {
        struct io_event ev[64];
        while (pop_fakes(ctx, ev, 64) > 0) {}
    }
    return cfg.destroy(ctx);
}

/* ---------------------------------------------------------------- wall-clock shift */

// Seconds in the shift file; a missing file is 0, an unreadable or empty one keeps the
// previous value (a writer that truncates then writes is seen at most as a brief delay).
static long long shift_read_file(long long previous) {
    int fd = open(cfg.shift_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : previous;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return previous;
    buf[n] = 0;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || errno) return previous;
    return v;
}

// The current shift in seconds, re-reading the file at most every 100 ms. Lock-free, so it is
// as safe in a signal handler as open/read are.
static long long shift_now(void) {
    if (!cfg.shift_file) return 0;
    int saved = errno;
    long long now = real_now_ns(CLOCK_MONOTONIC);
    if (now - atomic_load(&shift_checked_ns) >= 100 * NS_PER_MS) {
        int expected = 0;
        if (atomic_compare_exchange_strong(&shift_busy, &expected, 1)) {
            if (now - atomic_load(&shift_checked_ns) >= 100 * NS_PER_MS) {
                atomic_store(&shift_value, shift_read_file(atomic_load(&shift_value)));
                atomic_store(&shift_checked_ns, now);
            }
            atomic_store(&shift_busy, 0);
        }
    }
    errno = saved;
    return atomic_load(&shift_value);
}

int clock_gettime(clockid_t clk, struct timespec *tp) {
    init();
    int rc = cfg.clock_gettime ? cfg.clock_gettime(clk, tp)
                               : (int)syscall(SYS_clock_gettime, clk, tp);
    if (rc == 0 && cfg.shift_file && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        tp->tv_sec += shift_now();
    return rc;
}

int gettimeofday(struct timeval *tv, void *tz) {
    init();
    int rc = cfg.gettimeofday(tv, tz);
    if (rc == 0 && tv && cfg.shift_file) tv->tv_sec += shift_now();
    return rc;
}

time_t time(time_t *t) {
    init();
    time_t now = cfg.time(NULL);
    if (now != (time_t)-1 && cfg.shift_file) now += shift_now();
    if (t) *t = now;
    return now;
}

// Condition variables initialised with a CLOCK_MONOTONIC attribute: an open-addressing set of
// their addresses (linear probing, backward-shift deletion), grown when half full.
static pthread_mutex_t mono_lock = PTHREAD_MUTEX_INITIALIZER;
static const void **mono_slots;
static size_t mono_cap, mono_count;

static size_t mono_hash(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static size_t mono_find(const void *p) {   // slot of p, or the empty slot where it would go
    size_t m = mono_cap - 1, i = mono_hash(p) & m;
    while (mono_slots[i] && mono_slots[i] != p) i = (i + 1) & m;
    return i;
}

static void mono_add(const void *p) {
    if ((mono_count + 1) * 2 > mono_cap) {
        size_t old_cap = mono_cap;
        const void **old = mono_slots;
        size_t cap = old_cap ? old_cap * 2 : 64;
        const void **slots = calloc(cap, sizeof *slots);
        if (!slots) return;   // not remembered: the condvar is then treated as realtime
        mono_slots = slots;
        mono_cap = cap;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i]) mono_slots[mono_find(old[i])] = old[i];
        free(old);
    }
    size_t i = mono_find(p);
    if (!mono_slots[i]) {
        mono_slots[i] = p;
        mono_count++;
    }
}

static void mono_remove(const void *p) {
    if (!mono_cap) return;
    size_t m = mono_cap - 1, i = mono_find(p);
    if (!mono_slots[i]) return;
    mono_slots[i] = NULL;
    mono_count--;
    for (size_t j = (i + 1) & m; mono_slots[j]; j = (j + 1) & m) {
        size_t home = mono_hash(mono_slots[j]) & m;
        // Move slot j back into the hole at i unless its home lies cyclically in (i, j].
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            mono_slots[i] = mono_slots[j];
            mono_slots[j] = NULL;
            i = j;
        }
    }
}

static int mono_contains(const void *p) {
    pthread_mutex_lock(&mono_lock);
    int r = mono_cap && mono_slots[mono_find(p)] != NULL;
    pthread_mutex_unlock(&mono_lock);
    return r;
}

int pthread_cond_init(pthread_cond_t *cond, const pthread_condattr_t *attr) {
    init();
    int rc = cfg.cond_init(cond, attr);
    if (rc == 0 && cfg.shift_file) {
        clockid_t clk = CLOCK_REALTIME;
        if (attr) pthread_condattr_getclock(attr, &clk);
        pthread_mutex_lock(&mono_lock);
        if (clk == CLOCK_MONOTONIC) mono_add(cond);
        else mono_remove(cond);   // the address may have held a monotonic one before
        pthread_mutex_unlock(&mono_lock);
    }
    return rc;
}

int pthread_cond_destroy(pthread_cond_t *cond) {
    init();
    if (cfg.shift_file) {
        pthread_mutex_lock(&mono_lock);
        mono_remove(cond);
        pthread_mutex_unlock(&mono_lock);
    }
    return cfg.cond_destroy(cond);
}

// A wait until `abstime` on the shifted wall clock: real waits of at most 100 ms, each ending
// on the real realtime clock, the deadline re-checked against the current shift after each,
// so a shift changed while waiting moves the end of the wait as a real clock step would.
static int shifted_wait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                        const struct timespec *abstime, int clockwait) {
    if (abstime->tv_nsec < 0 || abstime->tv_nsec >= NS_PER_SEC) return EINVAL;
    if (abstime->tv_sec < 0) return ETIMEDOUT;   // as glibc does
    long long abs_ns = abstime->tv_sec >= INT64_MAX / NS_PER_SEC - 1
                           ? INT64_MAX
                           : abstime->tv_sec * NS_PER_SEC + abstime->tv_nsec;
    for (;;) {
        long long real = real_now_ns(CLOCK_REALTIME);
        long long shifted = real + shift_now() * NS_PER_SEC;
        if (shifted >= abs_ns) return ETIMEDOUT;
        long long slice = abs_ns - shifted;
        if (slice > 100 * NS_PER_MS) slice = 100 * NS_PER_MS;
        struct timespec until = ns_to_ts(real + slice);
        int rc = clockwait ? cfg.cond_clockwait(cond, mutex, CLOCK_REALTIME, &until)
                           : cfg.cond_timedwait(cond, mutex, &until);
        if (rc != ETIMEDOUT) return rc;
    }
}

int pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                           const struct timespec *abstime) {
    init();
    if (!cfg.shift_file || mono_contains(cond)) return cfg.cond_timedwait(cond, mutex, abstime);
    return shifted_wait(cond, mutex, abstime, 0);
}

int pthread_cond_clockwait(pthread_cond_t *cond, pthread_mutex_t *mutex, clockid_t clk,
                           const struct timespec *abstime) {
    init();
    if (!cfg.cond_clockwait) return ENOSYS;
    if (!cfg.shift_file || clk != CLOCK_REALTIME)
        return cfg.cond_clockwait(cond, mutex, clk, abstime);
    return shifted_wait(cond, mutex, abstime, 1);
}
