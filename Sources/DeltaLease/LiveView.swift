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
    /// When we first looked at this slot, and when we last saw (owner, generation, timestamp)
    /// change, on our monotonic clock.
    public var firstCheck: Nanos
    public var lastLive: Nanos
    /// The record failed its checks at the last read (logged, and a changing timestamp still
    /// counts as life, as sanlock does).
    public var damaged: Bool
}

/// Our view of every host in one lockspace: which are live, failing or dead.
///
/// Guarantees: DEAD is declared only after no change has been seen for host_dead_seconds
/// (8·io_timeout + watchdog, with the *other* host's io_timeout), measured on our monotonic
/// clock from the last change we observed, so a DEAD host has been reset by its watchdog.
public struct LiveView: Sendable, Hashable {
    public let ourHostID: Int
    public let timeouts: Timeouts
    /// When the lockspace area was last read into this view.
    public private(set) var refreshedAt: Nanos?
    public private(set) var hosts: [Int: HostObservation] = [:]

    /// Name prefix of hosts that follow the join-wait rule (DiskLease hosts). sanlock rewrites
    /// the name on its own join, so a sanlock host can never carry it by accident.
    public static let joinWaitMarker = "dl:"

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
                name: r.resourceName, firstCheck: now, lastLive: now, damaged: damaged)
        }
    }

    /// Folds in one read of the whole lockspace area (the renewal's, or a refresh). Slots never
    /// used (owner 0, timestamp 0) and not seen before are skipped without decoding.
    ///
    /// The disk was sampled somewhere between issue and completion, so each bound takes the
    /// safe end: a timestamp change counts as seen at completion (DEAD is never declared
    /// early), and the view is as old as the issue (its age is never understated by a slow
    /// read: rule 3 and the join wait count from there).
    public mutating func refresh(_ snapshot: AreaSnapshot, layout: AreaLayout, space: String) {
        let bytes = snapshot.bytes
        let now = snapshot.completedAt
        let ss = layout.geometry.sectorSize
        let used: [Int] = bytes.withUnsafeBytes { raw in
            (1...layout.geometry.maxHosts).filter { h in
                let at = (h - 1) * ss
                let owner = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 32, as: UInt64.self))
                let ts = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 152, as: UInt64.self))
                return owner != 0 || ts != 0
            }
        }
        for h in Set(used).union(hosts.keys).sorted() {
            let at = (h - 1) * ss
            let record = LeaderRecord(decoding: bytes, at: at)
            let ok = (try? LeaderRecord.verifyDelta(bytes, at: at, deviceOffset: layout.deltaOffset(hostID: h), space: space)) != nil
            observe(hostID: h, record: record, damaged: !ok, now: now)
        }
        refreshedAt = snapshot.issuedAt
    }

    /// Marks the view fresh without a read (for a view built from individual slots in tests).
    public mutating func markRefreshed(at now: Nanos) { refreshedAt = now }

    /// sanlock's host_status rules (SANLOCK-FORMAT.md §4.7).
    public func state(of hostID: Int, now: Nanos) -> HostState {
        guard let o = hosts[hostID], o.timestamp != 0 else { return .free }
        if hostID == ourHostID { return .live }
        let io = o.ioTimeout > 0 ? o.ioTimeout : timeouts.ioTimeoutSeconds
        let elapsed = now - o.lastLive
        if elapsed <= Clock.seconds(Timeouts.failSeconds(ioTimeout: io)) {
            return o.firstCheck == o.lastLive ? .unknown : .live
        }
        if elapsed <= Clock.seconds(Timeouts.hostDeadSeconds(ioTimeout: io, watchdog: timeouts.watchdogFireSeconds)) {
            return .fail
        }
        return .dead
    }

    /// DESIGN.md rule 1: every host whose lease is not FREE and not DEAD (LIVE, UNKNOWN and
    /// FAIL are all read), plus ourselves. Ascending host ids.
    public func readSet(now: Nanos) -> [Int] {
        var ids = hosts.keys.filter { h in
            let s = state(of: h, now: now)
            return s != .free && s != .dead
        }
        if !ids.contains(ourHostID) { ids.append(ourHostID) }
        return ids.sorted()
    }

    /// Hosts the view calls DEAD, with the incarnation (generation, timestamp) that died.
    public func deadHosts(now: Nanos) -> [Int: HostIncarnation] {
        var out: [Int: HostIncarnation] = [:]
        for (h, o) in hosts where state(of: h, now: now) == .dead {
            out[h] = HostIncarnation(generation: o.generation, timestamp: o.timestamp)
        }
        return out
    }

    /// True when any host in the lockspace, in any state, has shown a name without our marker
    /// (a sanlock host): ballots must then read all num_hosts blocks (rule 6). Sticky on
    /// purpose: a sanlock host that left may rejoin and run a ballot 2·io_timeout later, sooner
    /// than our view would notice it.
    public func requiresFullReads() -> Bool {
        hosts.contains { h, o in h != ourHostID && !o.name.isEmpty && !o.name.hasPrefix(Self.joinWaitMarker) }
    }

    /// How old the view is at `now` (nil: never refreshed).
    public func age(now: Nanos) -> Nanos? { refreshedAt.map { now - $0 } }
}

/// One life of a host id: a rejoin changes the generation, a renewal the timestamp.
public struct HostIncarnation: Sendable, Hashable {
    public var generation: UInt64
    public var timestamp: UInt64
    public init(generation: UInt64, timestamp: UInt64) {
        self.generation = generation
        self.timestamp = timestamp
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
