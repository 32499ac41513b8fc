// Self-test for faultio.so: run by selftest.sh as `selftest MODE DIR` with faultio.so preloaded
// and the variables of that mode set. Does libaio I/O on an O_DIRECT file in DIR (ext4, not
// tmpfs) and prints one PASS or FAIL line per check; exits 1 if any check failed.
//
// Build: gcc -O2 -o selftest selftest.c -laio -lpthread
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define SECTOR 512
#define MS 1000000LL

static int failures;
static io_context_t ctx;
static int dfd, bfd;   // the test file: O_DIRECT for libaio, buffered for checking its bytes
static char path[4096];

static void check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!ok) failures++;
}

// Clocks read with the raw system call, past both the shim and the vDSO.
static long long raw_ns(clockid_t clk) {
    struct timespec ts;
    syscall(SYS_clock_gettime, clk, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static long long mono_ms(void) { return raw_ns(CLOCK_MONOTONIC) / MS; }
static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * MS };
    while (nanosleep(&ts, &ts) != 0) {}
}
static long long ts_ns(struct timespec ts) { return ts.tv_sec * 1000000000LL + ts.tv_nsec; }
static struct timespec ns_ts(long long ns) {
    struct timespec ts = { ns / 1000000000LL, ns % 1000000000LL };
    return ts;
}

static void *sector(int fill) {
    void *p;
    if (posix_memalign(&p, 4096, SECTOR)) abort();
    memset(p, fill, SECTOR);
    return p;
}

static int all_bytes(const void *p, int c) {
    const unsigned char *b = p;
    for (int i = 0; i < SECTOR; i++)
        if (b[i] != (unsigned char)c) return 0;
    return 1;
}

static int file_bytes(long long off, int c) {   // the file's sector at off, read buffered
    unsigned char b[SECTOR];
    return pread(bfd, b, SECTOR, off) == SECTOR && all_bytes(b, c);
}

static void prep(struct iocb *cb, int write, void *buf, long long off, uint64_t tag) {
    if (write) io_prep_pwrite(cb, dfd, buf, SECTOR, off);
    else io_prep_pread(cb, dfd, buf, SECTOR, off);
    cb->data = (void *)(uintptr_t)tag;
}

static int reap(long min, struct io_event *ev, long nr, long timeout_ms) {
    struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * MS };
    return io_getevents(ctx, min, nr, ev, &ts);
}

static uint64_t tag_of(const struct io_event *e) { return (uint64_t)(uintptr_t)e->data; }
static long res_of(const struct io_event *e) { return (long)e->res; }

static void setup(const char *dir) {
    snprintf(path, sizeof path, "%s/faultio-selftest.XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) { perror("mkstemp"); exit(2); }
    if (ftruncate(fd, 1 << 20) != 0) { perror("ftruncate"); exit(2); }
    close(fd);
    struct statfs sf;
    if (statfs(dir, &sf) == 0 && sf.f_type == 0x01021994 /* TMPFS_MAGIC */)
        printf("NOTE %s is tmpfs; O_DIRECT behaves differently there\n", dir);
    dfd = open(path, O_RDWR | O_DIRECT);
    bfd = open(path, O_RDWR);
    if (dfd < 0 || bfd < 0) { perror("open"); exit(2); }
    int rc = io_setup(64, &ctx);
    if (rc < 0) { fprintf(stderr, "io_setup: %s\n", strerror(-rc)); exit(2); }
}

/* ---------------------------------------------------------------- modes */

static void mode_off(void) {   // nothing set: everything passes through
    struct iocb cb, *p = &cb;
    struct io_event ev[4];
    void *buf = sector('a');
    prep(&cb, 1, buf, 0, 1);
    int rc = io_submit(ctx, 1, &p);
    int n = reap(1, ev, 4, 2000);
    check(rc == 1 && n == 1 && tag_of(&ev[0]) == 1 && res_of(&ev[0]) == SECTOR &&
          file_bytes(0, 'a'), "off: write submitted and reaped normally (rc=%d n=%d)", rc, n);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long d = ts_ns(ts) - raw_ns(CLOCK_REALTIME);
    check(llabs(d) < 50 * MS, "off: CLOCK_REALTIME unshifted (%lld ms off)", d / MS);
}

static void mode_delay(void) {   // FAULTIO_DELAY_US=200000
    struct iocb cb, *p = &cb;
    struct io_event ev[4];
    prep(&cb, 0, sector(0), 0, 2);
    long long t0 = mono_ms();
    int rc = io_submit(ctx, 1, &p);
    long long took = mono_ms() - t0;
    int n = reap(1, ev, 4, 2000);
    check(rc == 1 && took >= 195, "delay: io_submit took %lld ms (>= 200 expected)", took);
    check(n == 1 && res_of(&ev[0]) == SECTOR, "delay: request completed (n=%d)", n);
}

static struct {
    atomic_int done;
    int rc;
    long long at;
} hung;

static void *hang_submitter(void *arg) {
    struct iocb *cb = arg;
    hung.rc = io_submit(ctx, 1, &cb);
    hung.at = mono_ms();
    atomic_store(&hung.done, 1);
    return NULL;
}

static void mode_hang(void) {   // FAULTIO_HANG_FILE=path
    const char *hf = getenv("FAULTIO_HANG_FILE");
    int fd = open(hf, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { perror(hf); exit(2); }
    close(fd);
    struct iocb cb;
    struct io_event ev[4];
    prep(&cb, 0, sector(0), 0, 7);
    pthread_t th;
    pthread_create(&th, NULL, hang_submitter, &cb);
    sleep_ms(300);
    check(!atomic_load(&hung.done), "hang: io_submit still blocked 300 ms after the file appeared");
    long long t0 = mono_ms();
    struct timespec zero = { 0, 0 };
    int n = io_getevents(ctx, 0, 4, ev, &zero);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long took = mono_ms() - t0;
    check(n == 0 && took < 50,
          "hang: another thread's io_getevents/clock_gettime ran meanwhile (%lld ms)", took);
    long long removed = mono_ms();
    unlink(hf);
    pthread_join(th, NULL);
    long long after = hung.at - removed;
    check(hung.rc == 1 && after >= 0 && after < 200,
          "hang: io_submit returned %d, %lld ms after the file was removed", hung.rc, after);
    n = reap(1, ev, 4, 2000);
    check(n == 1 && tag_of(&ev[0]) == 7 && res_of(&ev[0]) == SECTOR,
          "hang: the held request then completed (n=%d)", n);
}

static void mode_late(void) {   // FAULTIO_LATE_OFFSET=8192 FAULTIO_LATE_MS=1000
    const long long late_off = 8192;
    struct iocb cbs[2], *ps[2] = { &cbs[0], &cbs[1] };
    struct io_event ev[8];
    void *a = sector('A'), *b = sector('B');
    prep(&cbs[0], 1, a, 0, 21);
    prep(&cbs[1], 1, b, late_off, 22);
    struct iocb *late_cb = &cbs[1];
    long long t0 = mono_ms();
    int rc = io_submit(ctx, 2, ps);
    memset(cbs, 0, sizeof cbs);   // the caller reuses its iocbs, as DiskLease does
    check(rc == 2, "late: io_submit of 2 writes (one late) reported %d taken", rc);

    int n = reap(1, ev, 8, 1000);
    int saw_late = 0;
    for (int i = 0; i < n; i++) saw_late |= tag_of(&ev[i]) == 22;
    check(n == 1 && tag_of(&ev[0]) == 21 && res_of(&ev[0]) == SECTOR && !saw_late,
          "late: the other write completed at once (n=%d)", n);
    long long w0 = mono_ms();
    n = reap(1, ev, 8, 200);
    long long waited = mono_ms() - w0;
    check(n == 0 && waited >= 190, "late: io_getevents with a 200 ms timeout got %d events", n);
    check(file_bytes(late_off, 0) && mono_ms() - t0 < 1000,
          "late: bytes not in the file yet at %lld ms", mono_ms() - t0);

    n = reap(1, ev, 8, 3000);
    long long landed = mono_ms() - t0;
    check(n == 1 && tag_of(&ev[0]) == 22 && res_of(&ev[0]) == SECTOR && landed >= 995,
          "late: the late write completed %lld ms after its submit (tag %llu, res %ld)", landed,
          n == 1 ? (unsigned long long)tag_of(&ev[0]) : 0ULL, n == 1 ? res_of(&ev[0]) : 0L);
    check(n == 1 && ev[0].obj != late_cb,
          "late: its completion's obj is the shim's copy (%p), not the caller's iocb (%p)",
          n == 1 ? (void *)ev[0].obj : NULL, (void *)late_cb);
    check(file_bytes(late_off, 'B'), "late: its bytes are in the file (pread after the delay)");

    // FAULTIO_LATE_COUNT defaults to 1: the next write there goes through at once.
    struct iocb cb, *p = &cb;
    prep(&cb, 1, sector('C'), late_off, 23);
    rc = io_submit(ctx, 1, &p);
    n = reap(1, ev, 8, 500);
    check(rc == 1 && n == 1 && tag_of(&ev[0]) == 23 && file_bytes(late_off, 'C'),
          "late: after the count is used up, a write to the offset completes normally");
}

static struct {
    struct io_event ev[8];
    int n;
    long long at;
} waiter;

static void *fail_waiter(void *arg) {
    (void)arg;
    waiter.n = reap(1, waiter.ev, 8, 3000);
    waiter.at = mono_ms();
    return NULL;
}

static void mode_fail(void) {   // FAULTIO_FAIL_OFFSET=4096 FAULTIO_FAIL_COUNT=3
    const long long fail_off = 4096;
    unsigned char x[SECTOR];
    memset(x, 'x', SECTOR);
    if (pwrite(bfd, x, SECTOR, 0) != SECTOR) abort();
    memset(x, 'y', SECTOR);
    if (pwrite(bfd, x, SECTOR, fail_off) != SECTOR) abort();
    memset(x, 'z', SECTOR);
    if (pwrite(bfd, x, SECTOR, 8192) != SECTOR) abort();
    fsync(bfd);

    struct iocb cbs[3], *ps[3] = { &cbs[0], &cbs[1], &cbs[2] };
    void *bufs[3] = { sector(0xEE), sector(0xEE), sector(0xEE) };
    prep(&cbs[0], 0, bufs[0], 0, 31);
    prep(&cbs[1], 0, bufs[1], fail_off, 32);
    prep(&cbs[2], 0, bufs[2], 8192, 33);
    int rc = io_submit(ctx, 3, ps);
    check(rc == 3, "fail: io_submit of 3 reads (one failing) reported %d taken", rc);
    struct io_event ev[8];
    int n = reap(3, ev, 8, 2000);
    int ok31 = 0, ok32 = 0, ok33 = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t = tag_of(&ev[i]);
        if (t == 31) ok31 = res_of(&ev[i]) == SECTOR && all_bytes(bufs[0], 'x');
        if (t == 33) ok33 = res_of(&ev[i]) == SECTOR && all_bytes(bufs[2], 'z');
        if (t == 32)
            ok32 = res_of(&ev[i]) == -EIO && ev[i].res2 == 0 && ev[i].obj == &cbs[1] &&
                   all_bytes(bufs[1], 0xEE);
    }
    check(n == 3, "fail: io_getevents returned all 3 completions (n=%d)", n);
    check(ok32, "fail: the read at the fail offset completed with -EIO, obj = caller's iocb, "
                "buffer untouched");
    check(ok31 && ok33, "fail: the other reads in the same submit succeeded with the right data");

    // A failure queued while another thread already waits in io_getevents reaches that thread.
    pthread_t th;
    pthread_create(&th, NULL, fail_waiter, NULL);
    sleep_ms(100);
    struct iocb cb, *p = &cb;
    prep(&cb, 0, sector(0xEE), fail_off, 34);
    long long t0 = mono_ms();
    rc = io_submit(ctx, 1, &p);
    pthread_join(th, NULL);
    check(rc == 1 && waiter.n == 1 && tag_of(&waiter.ev[0]) == 34 &&
              res_of(&waiter.ev[0]) == -EIO && waiter.at - t0 < 500,
          "fail: a thread already waiting got the -EIO completion %lld ms after the submit",
          waiter.at - t0);

    // Writes fail too, and leave the disk alone.
    prep(&cb, 1, sector('W'), fail_off, 35);
    rc = io_submit(ctx, 1, &p);
    n = reap(1, ev, 8, 1000);
    check(rc == 1 && n == 1 && tag_of(&ev[0]) == 35 && res_of(&ev[0]) == -EIO &&
              file_bytes(fail_off, 'y'),
          "fail: a write at the fail offset completed with -EIO and did not reach the file");

    // FAULTIO_FAIL_COUNT=3 is used up: the offset reads normally again.
    void *buf = sector(0xEE);
    prep(&cb, 0, buf, fail_off, 36);
    rc = io_submit(ctx, 1, &p);
    n = reap(1, ev, 8, 1000);
    check(rc == 1 && n == 1 && tag_of(&ev[0]) == 36 && res_of(&ev[0]) == SECTOR &&
              all_bytes(buf, 'y'),
          "fail: after the count is used up, the offset reads normally");
}

static const char *shift_path;

static void set_shift(const char *value) {   // NULL removes the file; written atomically
    if (!value) {
        unlink(shift_path);
        return;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", shift_path);
    FILE *f = fopen(tmp, "w");
    if (!f) { perror(tmp); exit(2); }
    fprintf(f, "%s\n", value);
    fclose(f);
    rename(tmp, shift_path);
}

static long long shifted_off_ns(clockid_t clk) {   // interposed reading minus the raw one
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ts_ns(ts) - raw_ns(clk == CLOCK_REALTIME_COARSE ? CLOCK_REALTIME : clk);
}

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

// Waits on cond until abstime (timedwait, or clockwait on `clk` if clk >= 0), ignoring
// spurious wakeups; returns the final code and the elapsed milliseconds.
static int wait_until(pthread_cond_t *cond, int clk, struct timespec abstime, long long *ms,
                      atomic_int *flag) {
    long long t0 = mono_ms();
    pthread_mutex_lock(&mu);
    int rc;
    do {
        rc = clk >= 0 ? pthread_cond_clockwait(cond, &mu, clk, &abstime)
                      : pthread_cond_timedwait(cond, &mu, &abstime);
    } while (rc == 0 && !(flag && atomic_load(flag)));
    pthread_mutex_unlock(&mu);
    *ms = mono_ms() - t0;
    return rc;
}

static struct timespec rt_in(long long ms) {   // the (shifted) wall clock, ms from now
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ns_ts(ts_ns(ts) + ms * MS);
}

static void *shift_midwait(void *arg) {   // shift -5 s at 300 ms, back to 0 at 2 s
    long long t0 = *(long long *)arg;
    sleep_ms(300);
    set_shift("-5");
    sleep_ms(2000 - (mono_ms() - t0));
    set_shift("0");
    return NULL;
}

static struct {
    pthread_cond_t *cond;
    atomic_int flag;
} signaller;

static void *signal_later(void *arg) {
    (void)arg;
    sleep_ms(300);
    pthread_mutex_lock(&mu);
    atomic_store(&signaller.flag, 1);
    pthread_cond_signal(signaller.cond);
    pthread_mutex_unlock(&mu);
    return NULL;
}

static void mode_clock(void) {   // FAULTIO_REALTIME_SHIFT_FILE=path
    shift_path = getenv("FAULTIO_REALTIME_SHIFT_FILE");
    set_shift(NULL);
    sleep_ms(150);
    long long d = shifted_off_ns(CLOCK_REALTIME);
    check(llabs(d) < 50 * MS, "clock: no shift file: CLOCK_REALTIME unshifted (%lld ms)", d / MS);

    set_shift("3600");
    sleep_ms(150);
    d = shifted_off_ns(CLOCK_REALTIME);
    check(llabs(d - 3600000 * MS) < 50 * MS, "clock: shift 3600: CLOCK_REALTIME is +%lld ms",
          d / MS);
    d = shifted_off_ns(CLOCK_REALTIME_COARSE);
    check(llabs(d - 3600000 * MS) < 50 * MS,
          "clock: shift 3600: CLOCK_REALTIME_COARSE is +%lld ms", d / MS);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    d = tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - raw_ns(CLOCK_REALTIME);
    check(llabs(d - 3600000 * MS) < 50 * MS, "clock: shift 3600: gettimeofday is +%lld ms",
          d / MS);
    long long t = time(NULL) - raw_ns(CLOCK_REALTIME) / 1000000000LL;
    check(t >= 3599 && t <= 3601, "clock: shift 3600: time() is +%lld s", t);
    d = shifted_off_ns(CLOCK_MONOTONIC);
    long long d2 = shifted_off_ns(CLOCK_BOOTTIME);
    check(llabs(d) < 50 * MS && llabs(d2) < 50 * MS,
          "clock: shift 3600: CLOCK_MONOTONIC (%lld ms) and CLOCK_BOOTTIME (%lld ms) unshifted",
          d / MS, d2 / MS);
    set_shift("-7");
    sleep_ms(150);
    d = shifted_off_ns(CLOCK_REALTIME);
    check(llabs(d + 7000 * MS) < 50 * MS, "clock: shift -7: CLOCK_REALTIME is %lld ms", d / MS);
    set_shift(NULL);
    sleep_ms(150);
    d = shifted_off_ns(CLOCK_REALTIME);
    check(llabs(d) < 50 * MS, "clock: file removed: CLOCK_REALTIME back to %lld ms", d / MS);

    pthread_cond_t rt, mono;
    pthread_condattr_t ma;
    pthread_condattr_init(&ma);
    pthread_condattr_setclock(&ma, CLOCK_MONOTONIC);
    pthread_cond_init(&rt, NULL);
    pthread_cond_init(&mono, &ma);
    long long ms;
    int rc;

    set_shift("0");
    sleep_ms(150);
    rc = wait_until(&rt, -1, rt_in(1000), &ms, NULL);
    check(rc == ETIMEDOUT && ms >= 950 && ms < 1400,
          "clock: shift 0: realtime timedwait(now+1s) timed out after %lld ms", ms);

    long long t0 = mono_ms();
    pthread_t th;
    pthread_create(&th, NULL, shift_midwait, &t0);
    rc = wait_until(&rt, -1, rt_in(1000), &ms, NULL);
    pthread_join(th, NULL);
    check(rc == ETIMEDOUT && ms >= 1800 && ms < 2600,
          "clock: shift -5 set 300 ms into a timedwait(now+1s): no return at 1 s; timed out "
          "at %lld ms, once the shift went back to 0 at 2 s", ms);

    set_shift("-3600");
    sleep_ms(150);
    rc = wait_until(&rt, -1, rt_in(300), &ms, NULL);
    check(rc == ETIMEDOUT && ms >= 280 && ms < 700,
          "clock: shift -3600: timedwait(shifted now+300ms) waited %lld ms", ms);
    rc = wait_until(&rt, CLOCK_REALTIME, rt_in(300), &ms, NULL);
    check(rc == ETIMEDOUT && ms >= 280 && ms < 700,
          "clock: shift -3600: clockwait(REALTIME, shifted now+300ms) waited %lld ms", ms);

    signaller.cond = &rt;
    pthread_create(&th, NULL, signal_later, NULL);
    rc = wait_until(&rt, -1, rt_in(5000), &ms, &signaller.flag);
    pthread_join(th, NULL);
    check(rc == 0 && ms >= 280 && ms < 1000,
          "clock: a realtime timedwait(now+5s) signalled at 300 ms returned 0 after %lld ms", ms);

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    rc = wait_until(&mono, -1, ns_ts(ts_ns(now) + 500 * MS), &ms, NULL);
    check(rc == ETIMEDOUT && ms >= 480 && ms < 900,
          "clock: shift -3600: monotonic condvar timedwait(mono now+500ms) waited %lld ms", ms);

    // Same memory re-initialised without the attribute: a realtime condvar again.
    pthread_cond_destroy(&mono);
    pthread_cond_init(&mono, NULL);
    rc = wait_until(&mono, -1, rt_in(300), &ms, NULL);
    check(rc == ETIMEDOUT && ms >= 280 && ms < 700,
          "clock: a monotonic condvar destroyed and re-initialised as realtime waited %lld ms",
          ms);
    set_shift(NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s off|delay|hang|late|fail|clock [dir]\n", argv[0]);
        return 2;
    }
    alarm(30);   // a wait that never ends kills the test instead of hanging it
    setup(argc > 2 ? argv[2] : "/tmp");
    const char *m = argv[1];
    if (!strcmp(m, "off")) mode_off();
    else if (!strcmp(m, "delay")) mode_delay();
    else if (!strcmp(m, "hang")) mode_hang();
    else if (!strcmp(m, "late")) mode_late();
    else if (!strcmp(m, "fail")) mode_fail();
    else if (!strcmp(m, "clock")) mode_clock();
    else { fprintf(stderr, "unknown mode %s\n", m); failures++; }
    io_destroy(ctx);
    unlink(path);
    return failures ? 1 : 0;
}
