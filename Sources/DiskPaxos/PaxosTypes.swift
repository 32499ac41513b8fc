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

/// Deliberately broken rules, for the simulator's mutation tests only: each switch removes one
/// safety rule so a test can show the simulator catches the violation. Production code and the
/// daemon always use `[]`.
public struct SafetyMutations: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// Rule 5 removed: ballots right after joining.
    public static let noJoinWait = SafetyMutations(rawValue: 1 << 0)
    /// Rule 5 weakened: the join wait equals viewMaxAge + ballotMaxDuration instead of exceeding it.
    public static let joinWaitEqualsBound = SafetyMutations(rawValue: 1 << 1)
    /// Rule 2 removed: a dead host's block is dropped at once, never read to show it stale.
    public static let dropDeadBlocksAtOnce = SafetyMutations(rawValue: 1 << 2)
    /// Rule 3 removed: ballots start on a view of any age.
    public static let noViewAgeCheck = SafetyMutations(rawValue: 1 << 3)
    /// DEAD replaced by "not renewed recently" (no change seen for 2·io_timeout).
    public static let earlyDead = SafetyMutations(rawValue: 1 << 4)
    /// Rule 4 removed: a ballot of any length may commit.
    public static let noBallotBound = SafetyMutations(rawValue: 1 << 5)
}

/// What a ballot needs to know about the world, snapshotted at its start.
public struct BallotContext: Sendable {
    public var view: LiveView
    /// When our delta-lease write was on disk (the join wait counts from here).
    public var joinedAt: Nanos
    public var mode: ReadMode
    /// Hosts that are FREE or DEAD whose block in this resource was read and shown stale
    /// (rule 2), with the incarnation that was checked.
    public var verifiedStale: [Int: HostIncarnation]
    public var mutations: SafetyMutations

    public init(view: LiveView, joinedAt: Nanos, mode: ReadMode, verifiedStale: [Int: HostIncarnation] = [:],
                mutations: SafetyMutations = []) {
        self.view = view
        self.joinedAt = joinedAt
        self.mode = mode
        self.verifiedStale = verifiedStale
        self.mutations = mutations
    }

    /// The host state a ballot uses (the early-dead mutant shortens DEAD to 2·io_timeout).
    public func state(of hostID: Int, now: Nanos) -> HostState {
        let s = view.state(of: hostID, now: now)
        if mutations.contains(.earlyDead), s == .live || s == .fail || s == .unknown, hostID != view.ourHostID,
           let o = view.hosts[hostID], now - o.lastLive > Clock.seconds(2 * view.timeouts.ioTimeoutSeconds) {
            return .dead
        }
        return s
    }

    /// Rule 1 plus rule 2: hosts not FREE or DEAD, plus FREE or DEAD hosts whose block has not
    /// been shown stale for this incarnation. (FREE is treated like DEAD on purpose: a host
    /// that left is not reading, but its block has not been shown stale either.)
    public func dblockHosts(now: Nanos) -> [Int] {
        var ids = Set([view.ourHostID])
        for (h, o) in view.hosts {
            let s = state(of: h, now: now)
            if s != .free && s != .dead {
                ids.insert(h)
            } else if !mutations.contains(.dropDeadBlocksAtOnce),
                      verifiedStale[h] != HostIncarnation(generation: o.generation, timestamp: o.timestamp) {
                ids.insert(h)
            }
        }
        return ids.sorted()
    }

    /// The read mode in force: full when asked, or when a host that does not follow the join
    /// wait is in the lockspace (rule 6).
    public var effectiveMode: ReadMode { mode == .full || view.requiresFullReads() ? .full : .live }
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
    /// Blocks shown stale during this acquire, to carry into the next ballot (rule 2).
    public var verifiedStale: [Int: HostIncarnation]
    /// Ballots run (1 when uncontended).
    public var ballots: Int

    public init(resource: PaxosResource, host: PaxosHost, lver: UInt64, shared: Bool, leader: LeaderRecord,
                dblock: PaxosDblock, verifiedStale: [Int: HostIncarnation], ballots: Int) {
        self.resource = resource
        self.host = host
        self.lver = lver
        self.shared = shared
        self.leader = leader
        self.dblock = dblock
        self.verifiedStale = verifiedStale
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
    /// Rule 3: the live view is older than viewMaxAge; refresh it and retry.
    case viewTooOld(ageNanos: Nanos)
    /// Rule 5: no ballots until the join wait has passed.
    case joinWaitPending(until: Nanos)
    /// Rule 4: the ballot ran past ballotMaxDuration and was abandoned before its commit.
    case ballotTooLong(lver: UInt64)
    /// Live shared holders prevent an exclusive lease.
    case sharedHolders([Int])
    /// Too many ballots aborted by higher mbal or lver.
    case contended(lver: UInt64, ballots: Int)
    /// Release or convert of a lease we do not hold at that version.
    case notOwner(lver: UInt64)
    /// The leader on disk is older than a version our own dblock already took part in: a
    /// timed-out commit landed late over a newer one. Balloting for the old version would
    /// overwrite (and lose) what our block says about the newer one, so nothing is written.
    case leaderBehind(leaderLver: UInt64, dblockLver: UInt64)

    public var description: String {
        switch self {
        case .io(let e): return e.description
        case .leader(let e): return e.description
        case let .corruptDblock(h, o, s, c):
            return "offset \(o): dblock of host_id \(h) has a bad checksum 0x\(String(s, radix: 16)) (computed 0x\(String(c, radix: 16)))"
        case let .geometryMismatch(o, e, f): return "offset \(o): resource is \(f), expected \(e)"
        case let .held(o, g, l, s): return "held by host_id \(o) generation \(g) (\(s.rawValue)) at lver \(l)"
        case let .lverMismatch(r, c): return "required lver \(r) but the lease is at lver \(c)"
        case let .acquiredByOther(o, l): return "host_id \(o) acquired lver \(l) first"
        case .viewTooOld(let a): return "live view is \(a / 1_000_000) ms old: refresh before a ballot"
        case .joinWaitPending(let u): return "joined too recently: no ballot before monotonic \(u / 1_000_000) ms"
        case .ballotTooLong(let l): return "ballot for lver \(l) ran too long and was abandoned before commit"
        case .sharedHolders(let h): return "held shared by live host_id(s) \(h.map(String.init).joined(separator: ","))"
        case let .contended(l, b): return "gave up on lver \(l) after \(b) ballots"
        case .notOwner(let l): return "not the owner at lver \(l)"
        case let .leaderBehind(l, d): return "leader is at lver \(l) but our dblock is already at lver \(d): a stale commit landed late; retry later"
        }
    }
}
