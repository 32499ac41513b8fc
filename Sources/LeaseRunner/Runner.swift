import DeltaLease
import DirectIO

#if canImport(Glibc)
import Glibc
#endif

/// The process's monotonic clock (CLOCK_MONOTONIC, the clock sanlock's timestamps use).
public enum MonotonicClock {
    public static func now() -> Nanos {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Nanos(ts.tv_sec) * Clock.nanosPerSecond + Nanos(ts.tv_nsec)
    }

    public static func sleep(until t: Nanos) {
        while true {
            let left = t - now()
            if left <= 0 { return }
            var ts = timespec(tv_sec: Int(left / Clock.nanosPerSecond), tv_nsec: Int(left % Clock.nanosPerSecond))
            _ = nanosleep(&ts, nil)
        }
    }
}

/// This machine's node name (uname's nodename), the readable part of default host names.
public func nodeName() -> String {
    var buf = [CChar](repeating: 0, count: 65)
    gethostname(&buf, 64)
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// What one run of an operation did: every action, in order, for exact I/O assertions.
public struct IOTrace: Sendable {
    public var actions: [IOAction] = []
    public init() {}

    /// Sequential round trips to storage (reads and writes; sleeps are not I/O).
    public var roundTrips: Int { actions.filter { if case .sleep = $0 { false } else { true } }.count }
    public var bytesRead: Int {
        actions.reduce(0) { if case .read(let r) = $1 { $0 + r.reduce(0) { $0 + $1.length } } else { $0 } }
    }
    public var bytesWritten: Int {
        actions.reduce(0) { if case .write(let w) = $1 { $0 + w.reduce(0) { $0 + $1.bytes.count } } else { $0 } }
    }
    public var reads: Int { actions.filter { if case .read = $0 { true } else { false } }.count }
    public var writes: Int { actions.filter { if case .write = $0 { true } else { false } }.count }
}

/// Runs operations against a real device: each action is one batch on the device with the
/// io_timeout as its deadline, sleeps are real sleeps on the monotonic clock.
public struct Runner: Sendable {
    public let device: any SectorDevice
    public let ioTimeout: Duration
    public let now: @Sendable () -> Nanos
    public let sleep: @Sendable (Nanos) -> Void

    public init(
        device: any SectorDevice, ioTimeout: Duration,
        now: @escaping @Sendable () -> Nanos = MonotonicClock.now,
        sleep: @escaping @Sendable (Nanos) -> Void = MonotonicClock.sleep(until:)
    ) {
        self.device = device
        self.ioTimeout = ioTimeout
        self.now = now
        self.sleep = sleep
    }

    /// Runs `op` to completion.
    public func run<Op: LeaseOperation>(_ op: inout Op, trace: inout IOTrace) -> Op.Output {
        var step = op.start(now: now())
        while true {
            switch step {
            case .finished(let out):
                return out
            case .perform(let action):
                trace.actions.append(action)
                step = op.resume(perform(action), now: now())
            }
        }
    }

    public func run<Op: LeaseOperation>(_ op: Op) -> Op.Output {
        var op = op
        var trace = IOTrace()
        return run(&op, trace: &trace)
    }

    public func perform(_ action: IOAction) -> IOResult {
        do {
            switch action {
            case .read(let ranges):
                return .read(try device.read(ranges, timeout: ioTimeout))
            case .write(let writes):
                try device.write(writes, timeout: ioTimeout)
                return .written
            case .sleep(let until):
                sleep(until)
                return .slept
            }
        } catch {
            return .failed(error)
        }
    }
}
