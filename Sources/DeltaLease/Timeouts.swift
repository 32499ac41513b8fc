/// Every protocol duration, derived from io_timeout (N) and the watchdog fire timeout (W),
/// as sanlock derives them. They govern lease expiry and fencing only: which blocks a ballot
/// reads never depends on them (docs/AGREEMENT.md).
///
/// Timeline of a host that stops renewing after its last successful renewal at T (N=10, W=60):
///
///     T          last renewal written (timestamp T on disk)
///     T+20  (2N) next renewal due; one is attempted every 2N
///     T+60  (6N) renewal warning
///     T+80  (8N) renewal failed: kill lease holders, stop using the lockspace; the watchdog,
///                fed only while renewals are in time, is no longer fed
///     T+140 (8N+W) the watchdog has reset the host. Other hosts, which saw the timestamp
///                change at T' ≥ T, call it DEAD after T'+8N+W ≥ T+140, and may take over.
public struct Timeouts: Sendable, Hashable, CustomStringConvertible {
    public let ioTimeoutSeconds: Int
    public let watchdogFireSeconds: Int

    public init(ioTimeoutSeconds: Int = 10, watchdogFireSeconds: Int = 60) {
        precondition(ioTimeoutSeconds >= 1 && ioTimeoutSeconds <= 255, "io_timeout is one byte on disk")
        precondition(watchdogFireSeconds >= 1)
        self.ioTimeoutSeconds = ioTimeoutSeconds
        self.watchdogFireSeconds = watchdogFireSeconds
        precondition(renewalSeconds < renewalFailSeconds && renewalFailSeconds < hostDeadSeconds)
    }

    public var renewalSeconds: Int { 2 * ioTimeoutSeconds }
    public var renewalWarnSeconds: Int { 6 * ioTimeoutSeconds }
    public var renewalFailSeconds: Int { 8 * ioTimeoutSeconds }
    public var hostDeadSeconds: Int { Self.hostDeadSeconds(ioTimeout: ioTimeoutSeconds, watchdog: watchdogFireSeconds) }
    /// Wait after the delta write before the verifying read.
    public var deltaShortDelaySeconds: Int { 2 * ioTimeoutSeconds }
    /// How long a release-request bit stays set in our bitmap (sanlock's set_bitmap_seconds is
    /// 6N; ours is 8N so a host that reads members every third renewal, 6N apart, sees it).
    public var setBitmapSeconds: Int { 8 * ioTimeoutSeconds }

    /// host_dead_seconds for a host whose record says `ioTimeout` (sanlock uses the *other*
    /// host's io_timeout).
    public static func hostDeadSeconds(ioTimeout: Int, watchdog: Int) -> Int { 8 * ioTimeout + watchdog }
    public static func failSeconds(ioTimeout: Int) -> Int { 8 * ioTimeout }

    public var ioTimeout: Duration { .seconds(ioTimeoutSeconds) }

    public var description: String {
        "io_timeout \(ioTimeoutSeconds)s, renewal \(renewalSeconds)s, fail \(renewalFailSeconds)s, host_dead "
            + "\(hostDeadSeconds)s"
    }
}

/// Monotonic time in nanoseconds. On disk, timestamps are whole seconds of it.
public typealias Nanos = Int64

public enum Clock {
    public static let nanosPerSecond: Nanos = 1_000_000_000
    public static func seconds(_ s: Int) -> Nanos { Nanos(s) * nanosPerSecond }
    /// The on-disk timestamp for `now`; never 0, which means "free".
    public static func diskTimestamp(_ now: Nanos) -> UInt64 { UInt64(max(1, now / nanosPerSecond)) }
}
