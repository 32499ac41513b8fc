import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat
import LeaseRunner

/// One host core and an in-memory disk, driven by hand: the test chooses when time passes and
/// when the operations the core asked for run (they run for real, on the disk), and reads the
/// effects the core returned. No processes, no threads.
final class CoreHarness: @unchecked Sendable {
    var core: HostCore
    let device: MemoryDevice
    let geometry = Geometry.g512_1M
    let timeouts = Timeouts(ioTimeoutSeconds: 1, watchdogFireSeconds: 4)
    var time = HostTime(mono: Clock.seconds(1000), boot: Clock.seconds(1000))
    var pending: [(id: OpID, lane: Lane, op: HostOperation)] = []
    var replies: [RequestID: HostReply] = [:]
    var fenced: [Victim] = []
    var feeds: [Bool] = []
    var persisted: [PersistedLease] = []
    var guardState: [String: GuardEntry] = [:]
    var logs: [String] = []
    var nextRequest: RequestID = 1
    /// Whether drains report outstanding writes.
    var outstandingOnDrain = 0

    init(mutations: SafetyMutations = [], resources: Int = 2, orphans: OrphanPolicy = .release) {
        var c = HostConfig()
        c.mutations = mutations
        c.orphans = orphans
        core = HostCore(config: c, seed: 42)
        device = MemoryDevice(size: (1 + resources) * geometry.alignSize, alignment: 512)
        device.load(try! InitImage.lockspace(space: "LS", geometry: geometry, ioTimeout: 1).final, at: 0)
        for r in 0..<resources {
            device.load(
                try! InitImage.resource(space: "LS", resource: "r\(r)", geometry: geometry, numHosts: 64).final,
                at: (1 + r) * geometry.alignSize)
        }
    }

    var setup: LockspaceSetup {
        LockspaceSetup(
            name: "LS", hostID: 1, path: "mem", offset: 0, layout: AreaLayout(offset: 0, geometry: geometry),
            timeouts: timeouts, mode: .live, hostName: "dl:h1")
    }

    @discardableResult
    func step(_ e: HostEvent) -> [HostEffect] {
        let effects = core.step(e, now: time)
        for x in effects {
            switch x {
            case let .run(id, _, lane, op): pending.append((id, lane, op))
            case let .reply(id, r): replies[id] = r
            case let .fence(_, v, _): fenced += v
            case .watchdog(let f): feeds.append(f)
            case .persist(let l): persisted = l
            case .guardState(let g): guardState = g
            case let .log(_, m, _): logs.append(m)
            }
        }
        return effects
    }

    func request(_ make: (RequestID) -> HostEvent) -> RequestID {
        let id = nextRequest
        nextRequest += 1
        step(make(id))
        return id
    }

    /// Runs every pending operation to completion on the disk (sleeps pass at once) and feeds
    /// the results back, until none is left (or `limit` rounds).
    func settle(limit: Int = 50) {
        for _ in 0..<limit where !pending.isEmpty {
            let batch = pending
            pending = []
            for p in batch { step(.finished(p.id, perform(p.op))) }
        }
    }

    /// Runs only the pending operations `where` selects; the others stay pending.
    func runOnly(_ which: (HostOperation) -> Bool) {
        let (go, stay) = (pending.filter { which($0.op) }, pending.filter { !which($0.op) })
        pending = stay
        for p in go { step(.finished(p.id, perform(p.op))) }
    }

    func perform(_ op: HostOperation) -> HostOutput {
        if case .drain = op { return .drained(outstanding: outstandingOnDrain) }
        let runner = Runner(
            device: device, ioTimeout: .seconds(1), now: { [unowned self] in time.mono },
            sleep: { _ in })
        var op = op
        var progress = op.advance(nil, now: runner.now())
        while true {
            switch progress {
            case .finished(let o): return o
            case .perform(let a): progress = op.advance(runner.perform(a), now: runner.now())
            }
        }
    }

    func advance(seconds: Double) {
        let d = Nanos(seconds * 1e9)
        time.mono += d
        time.boot += d
        step(.tick)
    }

    /// Joins LS as host 1 and settles.
    func join() {
        step(.start(previous: []))
        step(.addLockspace(setup, reply: nil, waitJoined: false))
        settle()
    }

    func client(_ pid: Int32) -> ClientRef { ClientRef(id: UInt64(pid), pid: pid, startTime: 7) }

    func acquire(
        _ c: ClientRef, _ r: Int = 0, shared: Bool = false, wait: Bool = true, persistent: Bool = false,
        deadline: Nanos? = nil
    ) -> RequestID {
        let req = AcquireRequest(
            key: ResourceKey(lockspace: "LS", name: "r\(r)"), path: "mem",
            offset: UInt64((1 + r) * geometry.alignSize), shared: shared, wait: wait, deadline: deadline,
            persistent: persistent)
        return request { .acquire($0, c, req) }
    }

    func key(_ r: Int = 0) -> ResourceKey { ResourceKey(lockspace: "LS", name: "r\(r)") }

    /// Writes another host's live delta lease (as if it had joined and held `r`).
    func placeOwner(_ h: Int, ofResource r: Int, lver: UInt64 = 1) {
        var d = LeaderRecord.delta(space: "LS", geometry: geometry, ioTimeout: 1)
        d.ownerID = UInt64(h); d.ownerGeneration = 1; d.timestamp = 500; d.resourceName = "dl:h\(h)"
        device.load(d.sector(size: 512), at: (h - 1) * 512)
        var l = LeaderRecord.paxos(space: "LS", resource: "r\(r)", geometry: geometry, numHosts: 64)
        l.lver = lver; l.ownerID = UInt64(h); l.ownerGeneration = 1; l.timestamp = 500; l.writeID = UInt64(h)
        device.load(l.sector(size: 512), at: (1 + r) * geometry.alignSize)
    }

    var lockspaceState: String? { core.lockspaceStatus(now: time).first?.state }
}
