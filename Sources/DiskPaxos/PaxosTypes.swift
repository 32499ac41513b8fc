import DeltaLease
import DirectIO
import LeaseFormat

/// How ballots read dblocks: only the blocks of hosts that are not dead (DESIGN.md rule 1), or
/// all num_hosts blocks as sanlock does.
public enum ReadMode: String, Sendable, Codable, CaseIterable {
    case live
    case full
}

/// Who we are in a lockspace.
public struct PaxosHost: Sendable, Hashable {
    public var hostID: Int
    public var generation: UInt64
    public init(hostID: Int, generation: UInt64) {
        self.hostID = hostID
        self.generation = generation
    }
}

/// Which resource lease: its lockspace and name, and where its area is.
public struct PaxosResource: Sendable, Hashable, CustomStringConvertible {
    public var space: String
    public var name: String
    public var layout: AreaLayout
    public init(space: String, name: String, layout: AreaLayout) {
        self.space = space
        self.name = name
        self.layout = layout
    }
    public var description: String { "\(space):\(name)@\(layout.offset)" }
}

/// What a ballot needs to know about the world, snapshotted at its start; the acquire updates
/// it (a rebuilt membership, blocks shown dominated) and hands it back for the next one.
public struct BallotContext: Sendable {
    /// The lockspace area (for the epoch sector and membership rebuilds) and its name.
    public var lockspace: AreaLayout
    public var membership: Membership
    /// Left hosts whose block in this resource was shown dominated, at that generation
    /// (docs/AGREEMENT.md rule 6).
    public var dominated: [Int: UInt64]
    /// For lease expiry only: whether an owner or a shared holder may be treated as gone.
    public var view: LiveView
    public var mode: ReadMode
    public var mutations: SafetyMutations

    public init(
        lockspace: AreaLayout, membership: Membership, view: LiveView, mode: ReadMode,
        dominated: [Int: UInt64] = [:], mutations: SafetyMutations = []
    ) {
        self.lockspace = lockspace
        self.membership = membership
        self.view = view
        self.mode = mode
        self.dominated = dominated
        self.mutations = mutations
    }

    /// The host state used for lease expiry of owners and shared holders.
    public func state(of hostID: Int, now: Nanos) -> HostState { view.state(of: hostID, now: now) }

    /// Rule 2: ourselves, every present slot, and left slots not yet shown dominated.
    public func dblockHosts(now: Nanos) -> [Int] {
        var ids = membership.readSet(
            ourHostID: view.ourHostID, dominated: dominated,
            dropLeftAtOnce: mutations.contains(.dropLeftAtOnce))
        if mutations.contains(.dropDeadBlocks) {
            ids.removeAll { $0 != view.ourHostID && view.state(of: $0, now: now) == .dead }
        }
        return ids
    }

    /// The read mode in force: full when asked, or when a host that never writes the epoch
    /// (a sanlock host) is in the lockspace (rule 10).
    public var effectiveMode: ReadMode {
        mode == .full || view.requiresFullReads() || membership.hasForeignHost ? .full : .live
    }
}

/// A granted lease. The fencing token is `lver`.
public struct Grant: Sendable, Hashable {
    public var resource: PaxosResource
    public var host: PaxosHost
    public var lver: UInt64
    public var shared: Bool
    /// The leader as we committed (or found) it.
    public var leader: LeaderRecord
    /// Our dblock as last written (release writes it again with RELEASED).
    public var dblock: PaxosDblock
    /// Left blocks shown dominated during this acquire, to carry into the next ballot (rule 6).
    public var dominated: [Int: UInt64]
    /// Ballots run (1 when uncontended).
    public var ballots: Int

    public init(
        resource: PaxosResource, host: PaxosHost, lver: UInt64, shared: Bool, leader: LeaderRecord,
        dblock: PaxosDblock, dominated: [Int: UInt64], ballots: Int
    ) {
        self.resource = resource
        self.host = host
        self.lver = lver
        self.shared = shared
        self.leader = leader
        self.dblock = dblock
        self.dominated = dominated
        self.ballots = ballots
    }

    public var fencingToken: UInt64 { lver }
}

/// Why a paxos operation failed. Cases carry host id, offset and lver where they apply.
public enum PaxosError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(BlockIOError)
    case leader(FormatError)
    /// A dblock failed its checksum during a ballot (nothing is written after this).
    case corruptDblock(hostID: Int, offset: UInt64, stored: UInt32, computed: UInt32)
    case geometryMismatch(offset: UInt64, expected: String, found: String)
    /// Held by a host that is not dead (try-acquire returns this at once).
    case held(ownerID: UInt64, generation: UInt64, lver: UInt64, ownerState: HostState)
    /// The caller required a lease version that is not the current one.
    case lverMismatch(required: UInt64, current: UInt64)
    /// Another host committed the version we were deciding.
    case acquiredByOther(ownerID: UInt64, lver: UInt64)
    /// A record's value cannot be used (arithmetic on it would overflow).
    case outOfRange(FormatError)
    /// The lockspace's membership kept changing while we balloted (rule 3, retried each time).
    case membershipChurn(lver: UInt64, rebuilds: Int)
    /// A membership rebuild (the slot read after an epoch change) failed.
    case membership(DeltaError)
    /// Live shared holders prevent an exclusive lease.
    case sharedHolders([Int])
    /// Too many ballots aborted by higher mbal or lver.
    case contended(lver: UInt64, ballots: Int)
    /// Release or convert of a lease we do not hold at that version.
    case notOwner(lver: UInt64)
    /// This host already holds the lease at this version (a second acquire by the holder
    /// would run a ballot for the next version beside the holding it supersedes).
    case alreadyHeld(lver: UInt64)

    public var description: String {
        switch self {
        case .io(let e): return e.description
        case .leader(let e): return e.description
        case let .corruptDblock(h, o, s, c):
            return
                "offset \(o): dblock of host_id \(h) has a bad checksum 0x\(String(s, radix: 16)) (computed "
                    + "0x\(String(c, radix: 16)))"
        case let .geometryMismatch(o, e, f): return "offset \(o): resource is \(f), expected \(e)"
        case let .held(o, g, l, s): return "held by host_id \(o) generation \(g) (\(s.rawValue)) at lver \(l)"
        case let .lverMismatch(r, c): return "required lver \(r) but the lease is at lver \(c)"
        case let .acquiredByOther(o, l): return "host_id \(o) acquired lver \(l) first"
        case .outOfRange(let e): return e.description
        case let .membershipChurn(l, n):
            return "lockspace membership changed \(n) times during the ballot for lver \(l); retry"
        case .membership(let e): return "membership rebuild: \(e)"
        case .sharedHolders(let h): return "held shared by live host_id(s) \(h.map(String.init).joined(separator: ","))"
        case let .contended(l, b): return "gave up on lver \(l) after \(b) ballots"
        case .notOwner(let l): return "not the owner at lver \(l)"
        case .alreadyHeld(let l): return "this host already holds the lease at lver \(l)"
        }
    }
}
