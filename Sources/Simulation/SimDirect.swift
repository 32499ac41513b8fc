import DeltaLease
import DiskPaxos
import HostCore
import LeaseFormat

/// Direct hosts: `disklease direct join`, then over and over `direct acquire` (which renews
/// our delta lease first and refuses if it lapsed, builds the membership, and ballots with
/// live reads), a short hold (well inside our lease), and `direct release`. No daemon, no
/// fencer: a direct holder stops believing before its own renewal could lapse.
extension Simulation {
    func directBoot(_ d: SimDirectHost) {
        d.powerCycle += 1
        d.powered = true
        d.record = nil
        d.op = nil
        d.holding = nil
        d.belief = nil
        d.membership = nil
        d.step = .join
        directNext(d)
    }

    func directWake(_ d: SimDirectHost, cycle: Int) {
        guard d.powerCycle == cycle, d.powered, d.op == nil else { return }
        if rng.next() % 400 == 0 { return directCrash(d) }
        switch d.step {
        case .hold(let r):
            d.belief = nil
            d.step = .release(r)
        case .idle:
            if let q = resources.indices.compactMap({ quietEnd($0) }).max() {
                return schedule(at: q + Clock.seconds(1), .directWake(host: d.id, cycle: cycle))
            }
            d.step = .renew
        default:
            break
        }
        directNext(d)
    }

    func directCrash(_ d: SimDirectHost) {
        stats.hostCrashes += 1
        d.powered = false
        settleWritesAtPowerLoss(host: d.id, cycle: d.powerCycle)
        d.powerCycle += 1
        schedule(
            at: now + Clock.seconds(1) + quantized(Nanos(rng.next() % UInt64(Clock.seconds(3)))),
            .directBoot(host: d.id))
    }

    /// Starts the operation for the direct host's current step.
    func directNext(_ d: SimDirectHost) {
        let mono = d.mono(now)
        let t = d.timeouts
        switch d.step {
        case .join:
            directRun(
                d,
                .join(
                    DeltaJoin(
                        layout: lockspace, space: "sim", hostID: config.diskID(d.id),
                        hostName: "\(LiveView.nameMarker)d\(d.id)",
                        timeouts: t, nonce: rng.next(), mutations: config.mutations)))
        case .renew:
            // A lease that may have lapsed in others' eyes is refused: rejoin instead.
            if mono - d.lastRenewal > Clock.seconds(t.renewalFailSeconds) {
                d.step = .join
                return directNext(d)
            }
            d.renewalStart = mono
            directRun(
                d,
                .renew(
                    DeltaRenew(
                        layout: lockspace, space: "sim", hostID: config.diskID(d.id), last: d.record!, timeouts: t,
                        previousSucceeded: false)))
        case .scan:
            directRun(
                d,
                .scan(MembershipScan(layout: lockspace, space: "sim", epoch: d.scanEpoch, mutations: config.mutations)))
        case .acquire(let r):
            if let q = quietEnd(r) {
                d.step = .idle
                return schedule(at: q + Clock.seconds(1), .directWake(host: d.id, cycle: d.powerCycle))
            }
            let ctx = BallotContext(
                lockspace: lockspace, membership: d.membership!, view: d.view, mode: config.mode,
                mutations: config.mutations)
            var options = PaxosAcquire.Options(shared: chance(config.sharedRatio), noWait: true)
            options.refuseIfOurs = true
            options.minimumMbal = d.highestMbal[r] ?? 0
            options.minimumLver = d.highestLver[r] ?? 0
            directRun(
                d,
                .acquire(
                    PaxosAcquire(
                        resource: resources[r],
                        host: PaxosHost(hostID: config.diskID(d.id), generation: d.record!.ownerGeneration),
                        context: ctx, options: options, seed: rng.next())))
        case .release(let r):
            directRun(d, .release(PaxosRelease(grant: d.holding!.grant)))
            _ = r
        case .hold, .idle:
            schedule(
                at: now + quantized(Clock.seconds(1) + Nanos(rng.next() % UInt64(Clock.seconds(3)))),
                .directWake(host: d.id, cycle: d.powerCycle))
        }
    }

    func directRun(_ d: SimDirectHost, _ op: HostOperation) {
        if debugLog, case .acquire(let a) = op {
            let v = a.finalContext.view
            let mono = d.mono(now)
            debug(
                "direct \(d.id) acquire starts; epoch \(a.finalContext.membership.epoch); view "
                    + "\(v.hosts.keys.sorted().map { h in "\(h):\(v.state(of: h, now: mono).rawValue)" })"
            )
        }
        d.nextToken += 1
        d.op = RunningOp(id: 0, op: op, token: d.nextToken, lane: .ballot)
        directAdvance(d, nil)
    }

    func directDeliver(_ d: SimDirectHost, cycle: Int, token: Int, _ result: IOResult) {
        guard d.powerCycle == cycle, d.powered, let r = d.op, r.token == token else { return }
        directAdvance(d, result)
    }

    func directAdvance(_ d: SimDirectHost, _ result: IOResult?) {
        guard var r = d.op else { return }
        let progress = r.op.advance(result, now: d.mono(now))
        if case .acquire(let a) = r.op, let dec = a.decided, let ri = resourceIndex(a.resource) {
            recordDecision(resource: ri, dec, by: d.id)
        }
        d.op = r
        switch progress {
        case .perform(let action):
            perform(
                action, from: IOSource(host: d.id, cycle: d.powerCycle, incarnation: 0, op: 0, token: r.token),
                hostClock: d.mono(now), local: nil)
        case .finished(let output):
            d.op = nil
            noteOutput(output, host: d.id)
            directFinished(d, output)
            directNext(d)
        }
    }

    func directFinished(_ d: SimDirectHost, _ output: HostOutput) {
        switch output {
        case .join(.success(let j)):
            d.record = j.record
            d.lastRenewal = j.writtenAt
            d.membership = j.membership
            d.view.refresh(j.snapshot, layout: lockspace, space: "sim")
            d.step = .idle
        case .renew(.success(let r)):
            d.record = r.record
            d.lastRenewal = d.renewalStart
            var others = r.slots
            others[d.id] = nil
            d.view.observe(slots: others, layout: lockspace, space: "sim", completedAt: r.readCompletedAt)
            if r.epoch != d.membership?.epoch {
                d.scanEpoch = r.epoch
                d.step = .scan
            } else {
                d.step = .acquire(Int(rng.next() % UInt64(resources.count)))
            }
        case .scan(.success(let s)):
            d.membership = s.membership
            d.view.refresh(s.snapshot, layout: lockspace, space: "sim")
            d.step = .acquire(Int(rng.next() % UInt64(resources.count)))
        case .acquire(let result, let op):
            if case .acquire(let r) = d.step {
                d.highestMbal[r] = max(d.highestMbal[r] ?? 0, op.highestMbal)
                d.highestLver[r] = op.highestLver
            }
            d.membership = op.finalContext.membership
            if debugLog {
                let fv = op.finalContext.view
                debug(
                    "direct \(d.id) acquire done: rebuilds \(op.membershipRebuilds) op view 2: "
                        + "\(String(describing: fv.hosts[2])) own view 2: \(String(describing: d.view.hosts[2]))"
                )
            }
            d.view.merge(op.finalContext.view)
            if case .success(let g) = result, case .acquire(let r) = d.step,
                d.mono(now) - d.lastRenewal < Clock.seconds(d.timeouts.renewalFailSeconds / 2)
            {
                stats.directGrants += 1
                d.holding = (r, g)
                d.belief = (r, Belief(lver: g.lver, shared: g.shared))
                d.step = .hold(r)
            } else if case .success(let g) = result, case .acquire(let r) = d.step {
                // Granted too late in our lease to use it: give it back at once.
                d.holding = (r, g)
                d.step = .release(r)
            } else {
                d.step = .idle
            }
        case .release:
            d.holding = nil
            d.step = .idle
        case .join(.failure), .renew(.failure), .scan(.failure):
            d.step = d.record == nil ? .join : .idle
        default:
            d.step = .idle
        }
    }
}
