import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat

/// What the checker remembers across steps.
struct SimChecker {
    struct DecidedValue: Equatable, CustomStringConvertible {
        var ownerID: UInt64, generation: UInt64, timestamp: UInt64
        var description: String { "owner \(ownerID) gen \(generation) ts \(timestamp)" }
    }
    var decisions: [Int: [UInt64: DecidedValue]] = [:]
    /// Exclusive grants on disk per resource and lver: who (host id / generation) got them.
    var exclusiveGrants: [Int: [UInt64: Set<String>]] = [:]
    var diskLver: [Int: UInt64] = [:]
    var dblockSeen: [UInt64: (mbal: UInt64, lver: UInt64)] = [:]
    /// Highest leader lver each host has read, per resource.
    var maxLverSeen: [Int: [Int: UInt64]] = [:]
}

/// The checker. After every event:
/// * at most one value is decided per resource and lver, and one host (incarnation) is granted
///   each exclusive lver;
/// * among processes that run (on a host that is powered and not suspended) and believe they
///   hold a lease: at most one exclusive holder per resource, and none beside a shared one;
/// * a dblock's mbal and lver never go back on disk; no host writes a leader below a version
///   it has read.
/// The core's own invariants (HostInvariants.swift) trap inside it on every step as well.
extension Simulation {
    func fail(_ message: String) {
        if violation == nil { violation = Violation(seed: config.seed, step: stepCount, time: now, message: message) }
    }

    func checkAfterStep() { checkBeliefs() }

    func resourceIndex(_ r: PaxosResource) -> Int? { resources.firstIndex { $0.name == r.name } }

    func recordDecision(
        resource r: Int, _ d: (lver: UInt64, ownerID: UInt64, generation: UInt64, timestamp: UInt64), by host: Int
    ) {
        let v = SimChecker.DecidedValue(ownerID: d.ownerID, generation: d.generation, timestamp: d.timestamp)
        if let prior = checker.decisions[r]?[d.lver], prior != v {
            fail("two values decided for r\(r) lver \(d.lver): \(prior) and \(v) (by host \(host))")
        }
        checker.decisions[r, default: [:]][d.lver] = v
    }

    /// Counts what finished operations did, and records exclusive grants on disk.
    func noteOutput(_ output: HostOutput, host: Int) {
        if debugLog, case .acquire(let r, let op) = output { debug("host \(host) acquire \(op.resource.name) -> \(r)") }
        switch output {
        case .acquire(.success(let g), let op):
            stats.epochRebuilds += op.membershipRebuilds
            stats.leaderRepairs += op.leaderRepairs
            guard !g.shared, let r = resourceIndex(g.resource) else { return }
            recordExclusiveGrant(resource: r, lver: g.lver, who: "\(host)/\(g.host.generation)")
        case .acquire(.failure, let op):
            stats.epochRebuilds += op.membershipRebuilds
            stats.leaderRepairs += op.leaderRepairs
        default:
            break
        }
    }

    func recordExclusiveGrant(resource r: Int, lver: UInt64, who: String) {
        var set = checker.exclusiveGrants[r]?[lver] ?? []
        set.insert(who)
        if set.count > 1 { fail("two exclusive grants of r\(r) at lver \(lver): \(set.sorted())") }
        checker.exclusiveGrants[r, default: [:]][lver] = set
    }

    func checkBeliefs() {
        for r in resources.indices {
            var holders: [(who: String, belief: Belief)] = []
            for host in hosts where host.running(at: now) && !host.believers.isEmpty {
                for pid in host.believers.sorted() {
                    if let p = host.processes[pid], p.alive, let b = p.beliefs[r] {
                        holders.append(("h\(host.id)/pid\(pid)", b))
                    }
                }
            }
            for d in directs where d.powered {
                if let (res, b) = d.belief, res == r { holders.append(("direct h\(d.id)", b)) }
            }
            let ex = holders.filter { !$0.belief.shared }
            if ex.count > 1 {
                fail("\(ex.map(\.who)) all hold r\(r) exclusively (lvers \(ex.map(\.belief.lver)))")
            } else if let e = ex.first, let sh = holders.first(where: { $0.belief.shared }) {
                fail(
                    "\(e.who) holds r\(r) exclusively (lver \(e.belief.lver)) while \(sh.who) holds it shared (lver "
                        + "\(sh.belief.lver))"
                )
            }
        }
    }

    /// Remembers the highest leader lver each host has read per resource.
    func noteLeadersSeen(_ ranges: [IORange], by host: Int) {
        let area = UInt64(config.geometry.alignSize)
        for r in ranges where r.offset >= area && r.offset % area == 0 {
            let l = LeaderRecord(decoding: disk.sector(at: r.offset))
            let res = Int(r.offset / area) - 1
            if l.magic == LeaderRecord.paxosMagic {
                checker.maxLverSeen[host, default: [:]][res] = max(checker.maxLverSeen[host]?[res] ?? 0, l.lver)
            }
        }
    }

    /// lver never goes backwards in what a host writes: a leader write below a lver the host
    /// has read is a protocol bug (a write issued earlier may still land late: that is counted,
    /// and the other checks judge whether it does harm).
    func checkIssuedLeaderWrites(_ writes: [SectorWrite], by host: Int) {
        let area = UInt64(config.geometry.alignSize)
        for w in writes where w.offset >= area && w.offset % area == 0 {
            let r = Int(w.offset / area) - 1
            let l = LeaderRecord(decoding: w.bytes)
            let seen = checker.maxLverSeen[host]?[r] ?? 0
            if l.magic == LeaderRecord.paxosMagic && l.lver < seen {
                fail("host \(host) wrote r\(r)'s leader at lver \(l.lver) after reading lver \(seen)")
            }
        }
    }

    func checkLanding(_ offset: UInt64, _ bytes: [UInt8]) {
        let g = config.geometry
        guard offset >= UInt64(g.alignSize) else { return }
        let r = Int(offset / UInt64(g.alignSize)) - 1
        let sector = Int((offset % UInt64(g.alignSize)) / UInt64(g.sectorSize))
        if sector == 0 {
            let l = LeaderRecord(decoding: bytes)
            if l.magic == LeaderRecord.paxosMagic && l.lver < checker.diskLver[r, default: 0] {
                // A commit landing late, after a newer one: the leader moves back (rule 7 repairs it).
                stats.staleLeaderLandings += 1
            }
            if l.magic == LeaderRecord.paxosMagic { checker.diskLver[r] = l.lver }
        } else if sector >= 2 {
            if bytes.isAllZero {
                checker.dblockSeen[offset] = nil
            } else {
                let d = PaxosDblock(decoding: bytes)
                if let prior = checker.dblockSeen[offset], d.mbal < prior.mbal || d.lver < prior.lver {
                    fail(
                        "dblock at \(offset) went back: mbal \(prior.mbal)→\(d.mbal), "
                            + "lver \(prior.lver)→\(d.lver)")
                }
                checker.dblockSeen[offset] = (d.mbal, d.lver)
            }
        }
    }
}
