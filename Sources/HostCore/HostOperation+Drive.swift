import DeltaLease
import DiskPaxos

/// The next thing a running `HostOperation` needs.
public enum OperationProgress: Sendable {
    case perform(IOAction)
    case finished(HostOutput)
}

extension HostOperation {
    /// Starts (`result` nil) or resumes the operation: every driver (the daemon's runner, the
    /// simulator) steps operations through here, so outputs are typed the same everywhere.
    /// `drain` is the driver's own business and never comes here.
    public mutating func advance(_ result: IOResult?, now: Nanos) -> OperationProgress {
        func drive<Op: LeaseOperation>(_ op: inout Op, _ wrap: (Op.Output, Op) -> HostOutput) -> OperationProgress {
            switch result.map({ op.resume($0, now: now) }) ?? op.start(now: now) {
            case .perform(let a): return .perform(a)
            case .finished(let out): return .finished(wrap(out, op))
            }
        }
        switch self {
        case .join(var op): defer { self = .join(op) }; return drive(&op) { o, _ in .join(o) }
        case .renew(var op): defer { self = .renew(op) }; return drive(&op) { o, _ in .renew(o) }
        case .scan(var op): defer { self = .scan(op) }; return drive(&op) { o, _ in .scan(o) }
        case .leave(var op): defer { self = .leave(op) }; return drive(&op) { o, _ in .leave(o) }
        case .acquire(var op): defer { self = .acquire(op) }; return drive(&op) { o, final in .acquire(o, final) }
        case .release(var op): defer { self = .release(op) }; return drive(&op) { o, _ in .release(o) }
        case .request(var op): defer { self = .request(op) }; return drive(&op) { o, _ in .request(o) }
        case .checkRequests(var op):
            defer { self = .checkRequests(op) }; return drive(&op) { o, _ in .checkRequests(o) }
        case .drain: preconditionFailure("drain is run by the driver")
        }
    }

    /// The commit this operation has issued, if it is an acquire that got that far (for
    /// checkers that compare decisions per version).
    public var decided: (lver: UInt64, ownerID: UInt64, generation: UInt64, timestamp: UInt64)? {
        if case .acquire(let op) = self { return op.decided }
        return nil
    }
}
