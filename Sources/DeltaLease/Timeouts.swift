/// Every protocol duration, derived from io_timeout (N) and the watchdog fire timeout (W),
/// as sanlock derives them, plus the two bounds live-only reads add.
///
/// Timeline of a host that stops renewing after its last successful renewal at T (N=10, W=60):
///
///     T          last renewal written (timestamp T on disk)
///     T+20  (2N) next renewal due; one is attempted every 2N
///     T+60  (6N) renewal warning
///     T+80  (8N) renewal failed: kill lease holders, stop using the lockspace; the watchdog,
///                armed to expire at T+8N, is no longer fed
///     T+140 (8N+W) the watchdog has reset the host. Other hosts, which saw the timestamp
///                change at T' ≥ T, call it DEAD after T'+8N+W ≥ T+140, and may take over.
///
/// Live-only ballots add: a live view no older than `viewMaxAge` at ballot start, ballots no
/// longer than `ballotMaxDuration`, and a join wait strictly longer than their sum, so that any
/// ballot that could miss a new host's dblock has ended before that host runs its first ballot
/// (DESIGN.md rules 3–5).
public struct Timeouts: Sendable, Hashable, CustomStringConvertible {
    public let ioTimeoutSeconds: Int
    public let watchdogFireSeconds: Int
    public let viewMaxAgeSeconds: Int
    public let ballotMaxDurationSeconds: Int

    public init(ioTimeoutSeconds: Int = 10, watchdogFireSeconds: Int = 60,
                viewMaxAgeSeconds: Int? = nil, ballotMaxDurationSeconds: Int? = nil) {
        precondition(ioTimeoutSeconds >= 1 && ioTimeoutSeconds <= 255, "io_timeout is one byte on disk")
        precondition(watchdogFireSeconds >= 1)
        self.ioTimeoutSeconds = ioTimeoutSeconds
        self.watchdogFireSeconds = watchdogFireSeconds
        self.viewMaxAgeSeconds = viewMaxAgeSeconds ?? min(3 * ioTimeoutSeconds, watchdogFireSeconds - 1)
        self.ballotMaxDurationSeconds = ballotMaxDurationSeconds ?? 4 * ioTimeoutSeconds
        // A renewal refreshes the view every 2N and its read may take up to N.
        precondition(self.viewMaxAgeSeconds >= 1)
        // A host DEAD in a view taken up to viewMaxAge ago must still be dead now: its last
        // change was then more than 8N + W - viewMaxAge ago, past its own 8N fail deadline,
        // only if viewMaxAge < W.
        precondition(self.viewMaxAgeSeconds < watchdogFireSeconds, "viewMaxAge must be below the watchdog timeout")
        precondition(self.ballotMaxDurationSeconds >= 1)
        precondition(renewalSeconds < renewalFailSeconds && renewalFailSeconds < hostDeadSeconds)
    }

    public var renewalSeconds: Int { 2 * ioTimeoutSeconds }
    public var renewalWarnSeconds: Int { 6 * ioTimeoutSeconds }
    public var renewalFailSeconds: Int { 8 * ioTimeoutSeconds }
    public var hostDeadSeconds: Int { Self.hostDeadSeconds(ioTimeout: ioTimeoutSeconds, watchdog: watchdogFireSeconds) }
    /// Wait after the delta write before the verifying read.
    public var deltaShortDelaySeconds: Int { 2 * ioTimeoutSeconds }

    /// The wait before a newly joined host may run a ballot: strictly more than
    /// viewMaxAge + ballotMaxDuration; whole-second clocks need the extra second (rule 5).
    public var joinWaitSeconds: Int { viewMaxAgeSeconds + ballotMaxDurationSeconds + 1 }

    /// host_dead_seconds for a host whose record says `ioTimeout` (sanlock uses the *other*
    /// host's io_timeout).
    public static func hostDeadSeconds(ioTimeout: Int, watchdog: Int) -> Int { 8 * ioTimeout + watchdog }
    public static func failSeconds(ioTimeout: Int) -> Int { 8 * ioTimeout }

    public var ioTimeout: Duration { .seconds(ioTimeoutSeconds) }

    public var description: String {
        "io_timeout \(ioTimeoutSeconds)s, renewal \(renewalSeconds)s, fail \(renewalFailSeconds)s, host_dead \(hostDeadSeconds)s, view_max_age \(viewMaxAgeSeconds)s, ballot_max \(ballotMaxDurationSeconds)s, join_wait \(joinWaitSeconds)s"
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
