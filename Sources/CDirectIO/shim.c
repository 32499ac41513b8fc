// See CDirectIO.h. _GNU_SOURCE is defined here only: putting it in the public header
// conflicts with other modules' imports of the same system headers.
#define _GNU_SOURCE
#include "CDirectIO.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <linux/watchdog.h>

_Static_assert(sizeof(struct iocb) == 64, "libaio iocb layout changed");
_Static_assert(sizeof(struct io_event) == 32, "libaio io_event layout changed");

int cdio_open_direct(const char *path, int read_only) {
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_DIRECT | O_SYNC | O_CLOEXEC;
    int fd = open(path, flags);
    return fd < 0 ? -errno : fd;
}

int cdio_close(int fd) { return close(fd) < 0 ? -errno : 0; }

int cdio_geometry_of(int fd, const char *path, cdio_geometry *out) {
    struct stat st;
    memset(out, 0, sizeof(*out));
    if (fstat(fd, &st) < 0) return -errno;
    if (S_ISBLK(st.st_mode)) {
        uint64_t size = 0;
        int ss = 0;
        if (ioctl(fd, BLKGETSIZE64, &size) < 0) return -errno;
        if (ioctl(fd, BLKSSZGET, &ss) < 0) return -errno;
        out->size_bytes = size;
        out->logical_sector = (uint32_t)ss;
        out->memory_align = (uint32_t)ss;
        out->is_block_device = 1;
        return 0;
    }
    if (!S_ISREG(st.st_mode)) return -EINVAL;
    out->size_bytes = (uint64_t)st.st_size;
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(AT_FDCWD, path, 0, STATX_DIOALIGN, &stx) == 0 && (stx.stx_mask & STATX_DIOALIGN)) {
        out->logical_sector = stx.stx_dio_offset_align;
        out->memory_align = stx.stx_dio_mem_align;
    }
#else
    (void)path;
#endif
    return 0;
}

void *cdio_alloc_aligned(size_t alignment, size_t size) {
    void *p = NULL;
    if (posix_memalign(&p, alignment, size) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

void cdio_free(void *p) { free(p); }

int cdio_setup(unsigned nr_events, io_context_t *ctx) {
    *ctx = 0;
    return io_setup((int)nr_events, ctx);
}

int cdio_destroy(io_context_t ctx) { return io_destroy(ctx); }

void cdio_prep(struct iocb *cb, int fd, int is_write, void *buf, size_t len, int64_t offset,
               uint64_t tag) {
    if (is_write) io_prep_pwrite(cb, fd, buf, len, offset);
    else io_prep_pread(cb, fd, buf, len, offset);
    cb->data = (void *)(uintptr_t)tag;
}

int cdio_submit(io_context_t ctx, struct iocb *cbs, int n) {
    struct iocb *ptrs[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) ptrs[i] = &cbs[i];
    return io_submit(ctx, n, ptrs);
}

int cdio_getevents(io_context_t ctx, int min_nr, int max_nr, struct io_event *events,
                   int64_t timeout_ns) {
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000LL;
        ts.tv_nsec = timeout_ns % 1000000000LL;
        tsp = &ts;
    }
    return io_getevents(ctx, min_nr, max_nr, events, tsp);
}

uint64_t cdio_event_tag(const struct io_event *ev) { return (uint64_t)(uintptr_t)ev->data; }
int64_t cdio_event_result(const struct io_event *ev) { return (int64_t)(long)ev->res; }

size_t cdio_iocb_size(void) { return sizeof(struct iocb); }
size_t cdio_event_size(void) { return sizeof(struct io_event); }

int cdio_peer_cred(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) != 0) return -errno;
    *pid = c.pid;
    *uid = c.uid;
    *gid = c.gid;
    return 0;
}

struct cdio_monitor {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
};

cdio_monitor *cdio_monitor_create(void) {
    cdio_monitor *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&m->mutex, NULL);
    pthread_cond_init(&m->cond, &attr);
    pthread_condattr_destroy(&attr);
    return m;
}

void cdio_monitor_destroy(cdio_monitor *m) {
    pthread_cond_destroy(&m->cond);
    pthread_mutex_destroy(&m->mutex);
    free(m);
}

void cdio_monitor_lock(cdio_monitor *m) { pthread_mutex_lock(&m->mutex); }
void cdio_monitor_unlock(cdio_monitor *m) { pthread_mutex_unlock(&m->mutex); }
void cdio_monitor_broadcast(cdio_monitor *m) { pthread_cond_broadcast(&m->cond); }

int cdio_monitor_wait(cdio_monitor *m, int64_t deadline_ns) {
    if (deadline_ns < 0) {
        pthread_cond_wait(&m->cond, &m->mutex);
        return 0;
    }
    struct timespec ts = { deadline_ns / 1000000000LL, deadline_ns % 1000000000LL };
    return pthread_cond_timedwait(&m->cond, &m->mutex, &ts) == ETIMEDOUT ? 1 : 0;
}

static int64_t clock_ns(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t cdio_monotonic_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t cdio_boottime_ns(void) { return clock_ns(CLOCK_BOOTTIME); }

int cdio_pidfd_open(int32_t pid) {
    long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

int cdio_pidfd_send_signal(int pidfd, int sig) {
    return syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0 ? -errno : 0;
}

int cdio_watchdog_set_timeout(int fd, int seconds) {
    int v = seconds;
    return ioctl(fd, WDIOC_SETTIMEOUT, &v) < 0 ? -errno : 0;
}

int cdio_watchdog_get_timeout(int fd, int *seconds) {
    return ioctl(fd, WDIOC_GETTIMEOUT, seconds) < 0 ? -errno : 0;
}

int cdio_watchdog_keepalive(int fd) {
    int dummy = 0;
    return ioctl(fd, WDIOC_KEEPALIVE, &dummy) < 0 ? -errno : 0;
}
