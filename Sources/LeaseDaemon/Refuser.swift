import DiskLeaseClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Answers refused connections (a uid that is not allowed, one connection too many) without a
/// thread each: the reason is sent at once, and one thread drains what the peer sends, then
/// closes. Closing with the peer's request unread would reset the connection, and the peer
/// would see "connection reset" instead of the reason.
///
/// Guarantees: one thread however many peers are refused; at most `maxPending` refused
/// connections are kept open, each for at most one second; beyond that they are closed at once.
final class Refuser: @unchecked Sendable {
    static let maxPending = 1024
    static let drainNanos: UInt64 = 1_000_000_000

    private let lock = NSLock()
    private var pending: [(fd: Int32, deadline: UInt64)] = []
    private var wake: [Int32] = [-1, -1]

    init() {
        guard pipe(&wake) == 0 else { return }
        for fd in wake {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        let t = Thread { [self] in loop() }
        t.name = "refuser"
        t.start()
    }

    /// Sends `reason` on `fd` and takes ownership of it.
    func refuse(_ fd: Int32, _ reason: WireError) {
        let line = Wire.line(Response.failure(reason))
        _ = line.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, line.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        shutdown(fd, Int32(SHUT_WR))
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        lock.lock()
        guard wake[1] >= 0, pending.count < Self.maxPending else {
            lock.unlock()
            close(fd)
            return
        }
        pending.append((fd, DispatchTime.now().uptimeNanoseconds + Self.drainNanos))
        lock.unlock()
        var one: UInt8 = 1
        _ = write(wake[1], &one, 1)
    }

    var pendingCount: Int { lock.withLock { pending.count } }

    private func loop() {
        var scratch = [UInt8](repeating: 0, count: 4096)
        while true {
            let fds = lock.withLock { pending.map(\.fd) }
            var polled = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
            polled += fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Idle, it sleeps until a refusal arrives on the wake pipe; otherwise it wakes at
            // least every 100 ms to close connections whose second is up.
            _ = poll(&polled, nfds_t(polled.count), fds.isEmpty ? -1 : 100)
            if polled[0].revents != 0 { while read(wake[0], &scratch, scratch.count) > 0 {} }
            var done = Set<Int32>()
            for p in polled.dropFirst() where p.revents != 0 {
                let n = recv(p.fd, &scratch, scratch.count, 0)
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) || scratch[0..<max(n, 0)].contains(0x0A) {
                    done.insert(p.fd)
                }
            }
            let now = DispatchTime.now().uptimeNanoseconds
            lock.withLock {
                pending.removeAll { entry in
                    guard done.contains(entry.fd) || entry.deadline <= now else { return false }
                    close(entry.fd)
                    return true
                }
            }
        }
    }
}
