import DirectIO
import LeaseFormat

/// sanlock's host states (SANLK_HOST_*), decided from timestamp changes seen on our own clock.
public enum HostState: String, Sendable, Codable, CaseIterable {
    case unknown = "UNKNOWN"
    case free = "FREE"
    case live = "LIVE"
    case fail = "FAIL"
    case dead = "DEAD"
}

/// What we know of one other host's delta lease.
public struct HostObservation: Sendable, Hashable {
    public var ownerID: UInt64
    public var generation: UInt64
    public var timestamp: UInt64
    /// The host's own io_timeout from its record (0 = unknown: ours is used).
    public var ioTimeout: Int
    public var name: String
    /// When we first looked at this slot, when we last saw (owner, generation, timestamp)
    /// change, and when we last read it at all, on our monotonic clock.
    public var firstCheck: Nanos
    public var lastLive: Nanos
    public var lastCheck: Nanos
    /// The record failed its checks at the last read (logged, and a changing timestamp still
    /// counts as life, as sanlock does).
    public var damaged: Bool
}

/// Our view of the hosts in one lockspace, for lease expiry only: which are live, failing or
/// dead. It never decides which blocks a ballot reads (that is `Membership`).
///
/// Guarantees: DEAD is declared only after no change has been seen for host_dead_seconds
/// (8·io_timeout + watchdog, with the *other* host's io_timeout), measured on our monotonic
/// clock from the last change we observed, so a DEAD host has been reset by its watchdog.
/// Observations may be sparse (a host we read rarely): a change is dated when we see it,
/// which can only make DEAD later, never earlier.
public struct LiveView: Sendable, Hashable {
    public let ourHostID: Int
    public let timeouts: Timeouts
    public private(set) var hosts: [Int: HostObservation] = [:]

    /// Name prefix of DiskLease hosts. sanlock rewrites the name on its own join, so a sanlock
    /// host can never carry it by accident; one without it forces full reads (rule 10).
    public static let nameMarker = "dl:"

    public init(ourHostID: Int, timeouts: Timeouts) {
        self.ourHostID = ourHostID
        self.timeouts = timeouts
    }

    /// Folds in one slot's record as read at `now`.
    public mutating func observe(hostID: Int, record r: LeaderRecord, damaged: Bool, now: Nanos) {
        if var o = hosts[hostID] {
            if o.ownerID != r.ownerID || o.generation != r.ownerGeneration || o.timestamp != r.timestamp {
                o.lastLive = now
            }
            o.lastCheck = max(o.lastCheck, now)
            o.ownerID = r.ownerID
            o.generation = r.ownerGeneration
            o.timestamp = r.timestamp
            o.ioTimeout = Int(r.ioTimeout)
            o.name = r.resourceName
            o.damaged = damaged
            hosts[hostID] = o
        } else if r.timestamp != 0 || r.ownerID != 0 {
            hosts[hostID] = HostObservation(
                ownerID: r.ownerID, generation: r.ownerGeneration, timestamp: r.timestamp, ioTimeout: Int(r.ioTimeout),
                name: r.resourceName, firstCheck: now, lastLive: now, lastCheck: now, damaged: damaged)
        }
    }

    /// Folds in individual slots (a renewal's watched slots): host id → its sector, read
    /// between `issuedAt` and `completedAt`. A change counts as seen at completion.
    public mutating func observe(slots: [Int: [UInt8]], layout: AreaLayout, space: String, completedAt now: Nanos) {
        for (h, bytes) in slots.sorted(by: { $0.key < $1.key }) {
            let ok =
                (try? LeaderRecord.verifyDelta(bytes, deviceOffset: layout.deltaOffset(hostID: h), space: space)) != nil
            observe(hostID: h, record: LeaderRecord(decoding: bytes), damaged: !ok, now: now)
        }
    }

    /// Folds in one read of every slot (a join's, or a membership scan's). Slots never used
    /// (owner 0, timestamp 0) and not seen before are skipped without decoding.
    public mutating func refresh(_ snapshot: AreaSnapshot, layout: AreaLayout, space: String) {
        let bytes = snapshot.bytes
        let now = snapshot.completedAt
        let ss = layout.geometry.sectorSize
        let slotCount = min(layout.geometry.maxHosts, bytes.count / ss)
        guard slotCount >= 1 else { return }
        let used: [Int] = bytes.withUnsafeBytes { raw in
            (1...slotCount).filter { h in
                let at = (h - 1) * ss
                let owner = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 32, as: UInt64.self))
                let ts = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 152, as: UInt64.self))
                return owner != 0 || ts != 0
            }
        }
        for h in Set(used).union(hosts.keys.filter { $0 <= slotCount }).sorted() {
            let at = (h - 1) * ss
            let record = LeaderRecord(decoding: bytes, at: at)
            let ok =
                (try? LeaderRecord.verifyDelta(
                    bytes, at: at, deviceOffset: layout.deltaOffset(hostID: h), space: space))
                != nil
            observe(hostID: h, record: record, damaged: !ok, now: now)
        }
    }

    /// Takes from `other` (a copy of this view that an operation refreshed) every host it read
    /// more recently than we did.
    /// Two reads dated the same instant are ordered by what they saw: a later generation, then
    /// within one a later timestamp, and timestamp 0 (a leave) after any other.
    public mutating func merge(_ other: LiveView) {
        func newer(_ a: HostObservation, than b: HostObservation) -> Bool {
            if a.lastCheck != b.lastCheck { return a.lastCheck > b.lastCheck }
            if a.generation != b.generation { return a.generation > b.generation }
            return (a.timestamp == 0 ? .max : a.timestamp) > (b.timestamp == 0 ? .max : b.timestamp)
        }
        for (h, o) in other.hosts {
            guard let mine = hosts[h] else { hosts[h] = o; continue }
            if newer(o, than: mine) { hosts[h] = o }
        }
    }

    /// sanlock's host_status rules (SANLOCK-FORMAT.md §4.7), judged on what our reads showed:
    /// FAIL and DEAD need a read that found the record unchanged that long after the last
    /// change we saw. A host we have not read for a while is not thereby failing: a gap in
    /// our reads is not evidence (sanlock reads every slot every renewal; we read a slot when
    /// it matters: an owner we wait for, a member scan, a join).
    public func state(of hostID: Int, now: Nanos) -> HostState {
        if hostID == ourHostID { return .live }
        // A slot we have never read is not free: it is unknown (only a read that found
        // timestamp 0 makes a host FREE).
        guard let o = hosts[hostID] else { return .unknown }
        if o.timestamp == 0 { return .free }
        let io = o.ioTimeout > 0 ? o.ioTimeout : timeouts.ioTimeoutSeconds
        let unchangedFor = o.lastCheck - o.lastLive
        if unchangedFor <= Clock.seconds(Timeouts.failSeconds(ioTimeout: io)) {
            return o.firstCheck == o.lastLive ? .unknown : .live
        }
        if unchangedFor
            <= Clock.seconds(Timeouts.hostDeadSeconds(ioTimeout: io, watchdog: timeouts.watchdogFireSeconds))
        {
            return .fail
        }
        return .dead
    }

    /// True when any host in the lockspace, in any state, has shown a name without our marker
    /// (a sanlock host): ballots must then read all num_hosts blocks (rule 10). Sticky.
    public func requiresFullReads() -> Bool {
        hosts.contains { h, o in h != ourHostID && !o.name.isEmpty && !o.name.hasPrefix(Self.nameMarker) }
    }
}

/// One read of a whole lockspace area and the two instants that bound when the disk was sampled.
public struct AreaSnapshot: Sendable {
    public var bytes: [UInt8]
    public var issuedAt: Nanos
    public var completedAt: Nanos

    public init(bytes: [UInt8], issuedAt: Nanos, completedAt: Nanos) {
        precondition(issuedAt <= completedAt, "a read completes after it is issued")
        self.bytes = bytes
        self.issuedAt = issuedAt
        self.completedAt = completedAt
    }
}
