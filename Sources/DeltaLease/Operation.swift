import DirectIO

/// One I/O round trip or wait that an operation asks its driver for. Operations never perform
/// these themselves: a driver runs them on a real device with a real clock, or the simulator
/// on a simulated disk with simulated time.
public enum IOAction: Sendable, Equatable {
    /// Read these ranges in one batch.
    case read([IORange])
    /// Write these sectors in one batch.
    case write([SectorWrite])
    /// Resume no earlier than this monotonic time.
    case sleep(until: Nanos)
}

/// What came back from an `IOAction`.
public enum IOResult: Sendable {
    case read([[UInt8]])
    case written
    case slept
    case failed(BlockIOError)
}

/// The next thing an operation needs: an action to perform, or its final output.
public enum Step<Output> {
    case perform(IOAction)
    case finished(Output)
}

/// A protocol operation as a pure state machine (etcd raft's "no I/O" core): given the result
/// of its last action and the current monotonic time, it says what to do next. The same input
/// always gives the same output, so a seeded simulator can replay any run.
public protocol LeaseOperation: Sendable {
    associatedtype Output
    /// The first step.
    mutating func start(now: Nanos) -> Step<Output>
    /// The step after `result` arrived at `now`.
    mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output>
}

/// A small deterministic generator (SplitMix64) that operations own, so randomness is
/// injected as a seed and replays exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
