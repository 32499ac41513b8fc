// CDirectIO: the thin C layer under DirectIO.
//
// Only what Swift cannot reach or should not touch: O_DIRECT (hidden from Swift's Glibc),
// block-device ioctls, statx alignment, aligned allocation, and libaio's iocb unions.
// No logic lives here; every function maps one-to-one onto a syscall or a libaio helper.
// libaio convention kept as is: functions return -errno on failure and do not set errno.
#ifndef CDIRECTIO_H
#define CDIRECTIO_H

#include <stdint.h>
#include <stddef.h>
#include <libaio.h>

/// Opens `path` with O_RDWR (or O_RDONLY) | O_DIRECT | O_SYNC | O_CLOEXEC.
/// Returns the fd, or -errno.
int cdio_open_direct(const char *path, int read_only);

/// The pid, uid and gid of a Unix socket's peer (SO_PEERCRED; struct ucred needs
/// _GNU_SOURCE, which Swift's Glibc module does not define). Returns 0 or -errno.
int cdio_peer_cred(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

/// Closes an fd; returns 0 or -errno.
int cdio_close(int fd);

/// What the device or file says about itself.
typedef struct cdio_geometry {
    uint64_t size_bytes;       ///< BLKGETSIZE64 for block devices, st_size for files
    uint32_t logical_sector;   ///< BLKSSZGET for block devices, statx dio_offset_align for files (0 if unknown)
    uint32_t memory_align;     ///< statx dio_mem_align (0 if unknown)
    int is_block_device;
} cdio_geometry;

/// Fills `out` for an open fd; returns 0 or -errno.
int cdio_geometry_of(int fd, const char *path, cdio_geometry *out);

/// posix_memalign wrapper: returns NULL on failure. The memory is zeroed.
void *cdio_alloc_aligned(size_t alignment, size_t size);
void cdio_free(void *p);

/// io_setup / io_destroy; return 0 or -errno.
int cdio_setup(unsigned nr_events, io_context_t *ctx);
int cdio_destroy(io_context_t ctx);

/// Prepares one iocb for a read or write of `len` bytes at `offset`, tagged with `tag`
/// (returned in the completion's `data`, so completions are matched without pointers).
void cdio_prep(struct iocb *cb, int fd, int is_write, void *buf, size_t len, int64_t offset,
               uint64_t tag);

/// io_submit over `n` iocbs laid out contiguously; returns how many the kernel took, or -errno.
int cdio_submit(io_context_t ctx, struct iocb *cbs, int n);

/// io_getevents with an optional timeout in nanoseconds (negative = wait forever).
/// Returns the number of events, 0 on timeout, or -errno (EINTR included).
int cdio_getevents(io_context_t ctx, int min_nr, int max_nr, struct io_event *events,
                   int64_t timeout_ns);

/// The tag and the result (bytes, or -errno) of one completion.
uint64_t cdio_event_tag(const struct io_event *ev);
int64_t cdio_event_result(const struct io_event *ev);

/// Size of the C structs, so Swift allocates them without knowing their layout.
size_t cdio_iocb_size(void);
size_t cdio_event_size(void);

/// A mutex and a condition variable whose timed waits use CLOCK_MONOTONIC (a wall-clock
/// step never stretches or shortens a wait). Allocated and freed by these calls.
typedef struct cdio_monitor cdio_monitor;
cdio_monitor *cdio_monitor_create(void);
void cdio_monitor_destroy(cdio_monitor *m);
void cdio_monitor_lock(cdio_monitor *m);
void cdio_monitor_unlock(cdio_monitor *m);
void cdio_monitor_broadcast(cdio_monitor *m);
/// Waits (lock held) until signalled or the CLOCK_MONOTONIC time `deadline_ns`; negative waits
/// without a deadline. Returns 0 when signalled (or spuriously woken), 1 on timeout.
int cdio_monitor_wait(cdio_monitor *m, int64_t deadline_ns);

/// CLOCK_MONOTONIC and CLOCK_BOOTTIME in nanoseconds.
int64_t cdio_monotonic_ns(void);
int64_t cdio_boottime_ns(void);

/// pidfd_open(2) and pidfd_send_signal(2): a process handle that cannot come to name another
/// process after the pid is reused. Return the fd / 0, or -errno.
int cdio_pidfd_open(int32_t pid);
int cdio_pidfd_send_signal(int pidfd, int sig);

/// Linux watchdog ioctls: set and read the timeout (seconds), and keepalive. 0 or -errno.
int cdio_watchdog_set_timeout(int fd, int seconds);
int cdio_watchdog_get_timeout(int fd, int *seconds);
int cdio_watchdog_keepalive(int fd);

#endif
