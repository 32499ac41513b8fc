// Slow storage for benchmarks: preloaded (LD_PRELOAD) into any process that submits its I/O
// through libaio (DiskLease and sanlock alike), it delays every io_submit by SLOWIO_US
// microseconds before passing it on. Each batch of requests then takes that much longer, as
// on an iSCSI or stretched SAN where every round trip pays the link's latency; how many
// round trips an acquire needs decides what slow storage costs it.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

struct iocb;
typedef struct io_context *io_context_t;
typedef int (*submit_fn)(io_context_t, long, struct iocb **);

int io_submit(io_context_t ctx, long nr, struct iocb **ios) {
    static submit_fn real;
    static long delay_us = -1;
    if (!real) {
        real = (submit_fn)dlvsym(RTLD_NEXT, "io_submit", "LIBAIO_0.1");
        if (!real) real = (submit_fn)dlsym(RTLD_NEXT, "io_submit");
    }
    if (delay_us < 0) {
        const char *v = getenv("SLOWIO_US");
        delay_us = v ? atol(v) : 0;
    }
    if (delay_us > 0) {
        struct timespec ts = { delay_us / 1000000, (delay_us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) != 0) {}
    }
    return real(ctx, nr, ios);
}
