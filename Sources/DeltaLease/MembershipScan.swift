import DirectIO
import LeaseFormat

/// Building a membership (docs/AGREEMENT.md rule 1): the epoch, then, in a later batch, every
/// slot. When the caller already holds an epoch from a read that completed (a ballot's or a
/// renewal's), the slot read alone follows it and the membership is labelled with that epoch.
///
/// Guarantees: the slots were read after the epoch they are labelled with was read, so every
/// joiner whose epoch write had landed by then has its delta lease in them.
public struct MembershipScan: LeaseOperation {
    public typealias Output = Result<Scanned, DeltaError>

    public struct Scanned: Sendable {
        public var membership: Membership
        /// The slots as read, for the live view.
        public var snapshot: AreaSnapshot
    }

    let layout: AreaLayout
    let space: String
    let mutations: SafetyMutations
    private var epoch: EpochStamp?
    private var issuedAt: Nanos = 0
    private var phase = 0

    /// `epoch`: an epoch from a read that has completed, or nil to read one first.
    public init(layout: AreaLayout, space: String, epoch: EpochStamp?, mutations: SafetyMutations = []) {
        self.layout = layout
        self.space = space
        self.epoch = epoch
        self.mutations = mutations
    }

    var ss: Int { layout.geometry.sectorSize }
    var slotsRange: IORange { IORange(offset: layout.offset, length: layout.slotsLength) }
    var epochRange: IORange { IORange(offset: layout.epochOffset, length: ss) }

    public mutating func start(now: Nanos) -> Step<Output> {
        issuedAt = now
        if mutations.contains(.buildInOneBatch) {
            // Mutant: epoch and slots in one batch, the slots labelled with that epoch.
            phase = 2
            return .perform(.read([slotsRange, epochRange]))
        }
        if epoch == nil {
            phase = 0
            return .perform(.read([epochRange]))
        }
        phase = 1
        return .perform(.read([slotsRange]))
    }

    public mutating func resume(_ result: IOResult, now: Nanos) -> Step<Output> {
        if case .failed(let e) = result { return .finished(.failure(.io(e))) }
        let b = result.reads
        switch phase {
        case 0:
            epoch = EpochStamp(sector: b[0])
            phase = 1
            issuedAt = now
            return .perform(.read([slotsRange]))
        case 1:
            return done(b[0], epoch!, now: now)
        default:
            return done(b[0], EpochStamp(sector: b[1]), now: now)
        }
    }

    private func done(_ slots: [UInt8], _ e: EpochStamp, now: Nanos) -> Step<Output> {
        .finished(
            .success(
                Scanned(
                    membership: Membership(epoch: e, slotBytes: slots, layout: layout, space: space),
                    snapshot: AreaSnapshot(bytes: slots, issuedAt: issuedAt, completedAt: now))))
    }
}
