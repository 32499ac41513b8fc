import DeltaLease
import DirectIO
import DiskPaxos
import LeaseFormat
import LeaseRunner

/// A direct process's standing in its lockspace, for as long as it runs: our delta lease
/// (renewed before any ballot, and refused once it may have lapsed in others' eyes), the
/// membership (epoch first, then the slots), and the live view of owners we watch.
///
/// Guarantees: a ballot context comes from a membership built after a renewal that found our
/// record ours and in time; a lease older than renewal_fail_seconds is never renewed over
/// (others may have declared us dead and taken our leases): the caller must join again.
struct DirectSession {
    let host: DirectHost
    private(set) var record: LeaderRecord
    private(set) var membership: Membership
    private(set) var view: LiveView
    /// When our last renewal started, on our monotonic clock.
    private(set) var renewedAt: Nanos

    init(
        host: DirectHost, record: LeaderRecord, membership: Membership, renewedAt: Nanos, snapshot: AreaSnapshot? = nil
    ) {
        self.host = host
        self.record = record
        self.membership = membership
        self.renewedAt = renewedAt
        view = LiveView(ourHostID: host.spec.hostID, timeouts: host.timeouts)
        if let snapshot { view.refresh(snapshot, layout: host.layout, space: host.spec.name) }
    }

    /// The session right after our own join.
    init(host: DirectHost, joined j: DeltaJoin.Joined) {
        self.init(host: host, record: j.record, membership: j.membership, renewedAt: j.writtenAt, snapshot: j.snapshot)
    }

    var paxosHost: PaxosHost { PaxosHost(hostID: host.spec.hostID, generation: record.ownerGeneration) }

    /// Our joined record as on disk, renewed now, and the membership read after that.
    static func open(_ host: DirectHost) throws(CLIFailure) -> DirectSession {
        let me = try host.ownRecord()
        let now = MonotonicClock.now()
        // Our timestamps are our monotonic seconds: one ahead of the clock is from an earlier
        // boot, one older than the fail limit may already have made us DEAD to others.
        let ts = Nanos(me.timestamp) * Clock.nanosPerSecond
        if ts > now + Clock.nanosPerSecond || now - ts > Clock.seconds(host.timeouts.renewalFailSeconds) {
            throw CLIFailure(
                "\(host.spec.path): offset \(host.layout.deltaOffset(hostID: host.spec.hostID)): host_id "
                    + "\(host.spec.hostID)'s delta lease has lapsed (last renewed "
                    + "\(max(0, (now - ts) / Clock.nanosPerSecond))s ago, limit \(host.timeouts.renewalFailSeconds)s): "
                    + "join again",
                .corrupt)
        }
        var s = DirectSession(
            host: host, record: me, membership: Membership(epoch: .initial, slots: [:]), renewedAt: ts)
        try s.renew(scan: true)
        return s
    }

    /// Renews our delta lease and, when `scan` or the epoch changed, rebuilds the membership
    /// from a slot read that follows the renewal's epoch read.
    mutating func renew(scan: Bool) throws(CLIFailure) {
        let started = MonotonicClock.now()
        guard started - renewedAt <= Clock.seconds(host.timeouts.renewalFailSeconds) else {
            throw CLIFailure(
                "\(host.spec.path): host_id \(host.spec.hostID)'s delta lease has lapsed: join again", .corrupt)
        }
        let r = try host.run(
            DeltaRenew(
                layout: host.layout, space: host.spec.name, hostID: host.spec.hostID, last: record,
                timeouts: host.timeouts, previousSucceeded: false))
        record = r.record
        renewedAt = started
        if scan || r.epoch != membership.epoch {
            let built = try host.run(MembershipScan(layout: host.layout, space: host.spec.name, epoch: r.epoch))
            membership = built.membership
            view.refresh(built.snapshot, layout: host.layout, space: host.spec.name)
        }
    }

    /// A context for the next ballot, renewing first when a renewal is due.
    mutating func ballotContext(mode: ReadMode) throws(CLIFailure) -> BallotContext {
        if MonotonicClock.now() - renewedAt >= Clock.seconds(host.timeouts.renewalSeconds) { try renew(scan: false) }
        return BallotContext(lockspace: host.layout, membership: membership, view: view, mode: mode)
    }

    /// Takes back what a ballot learned (a rebuilt membership, blocks shown dominated).
    mutating func adopt(_ ctx: BallotContext) {
        membership = ctx.membership
        view.merge(ctx.view)
    }

    /// Reads `owner`'s slot into the view (an owner we wait for), renewing ours if due.
    mutating func watch(_ owner: Int) throws(CLIFailure) {
        if MonotonicClock.now() - renewedAt >= Clock.seconds(host.timeouts.renewalSeconds) { try renew(scan: false) }
        guard (1...host.layout.geometry.maxHosts).contains(owner) else { return }
        let bytes = try host.access.read(host.layout.deltaOffset(hostID: owner), host.layout.geometry.sectorSize)
        view.observe(
            slots: [owner: bytes], layout: host.layout, space: host.spec.name, completedAt: MonotonicClock.now())
    }
}
