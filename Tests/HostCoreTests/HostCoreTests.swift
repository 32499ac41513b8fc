import DeltaLease
import DirectIO
import DiskPaxos
import HostCore
import LeaseFormat
import Testing

/// Every rule of the host core, without processes: each test drives one core with an
/// in-memory disk and a hand-turned clock, and reads what it decided from its effects.
@Suite struct HostCoreTests {
    // MARK: - Renewal and fencing

    @Test func joinsThenRenewsEveryTwoIoTimeouts() throws {
        let h = CoreHarness()
        h.join()
        #expect(h.lockspaceState == "joined")
        // The first renewal is due as the join ends; the next 2·io_timeout after it started.
        h.settle()
        let renewals = { h.logs.count }
        _ = renewals
        h.advance(seconds: 1)
        #expect(h.pending.isEmpty, "no renewal 1 s after the last")
        h.advance(seconds: 1.1)
        #expect(
            h.pending.contains { if case .renew = $0.op { true } else { false } },
            "a renewal 2·io_timeout after the last")
    }

    @Test func fencesAtTheDeadlineOnTheBootClockEvenWithoutARenewalResult() throws {
        let h = CoreHarness()
        h.join()
        let c = h.client(300)
        let id = h.acquire(c)
        h.settle()
        guard case .granted = h.replies[id] else {
            Issue.record("not granted: \(String(describing: h.replies[id]))"); return
        }
        // Renewals hang (never finish); the clock passes 8·io_timeout: fence, no renewal needed.
        h.advance(seconds: 2.5)  // a renewal starts and hangs
        #expect(h.fenced.isEmpty)
        h.time.boot += Clock.seconds(8)  // a suspend: only the boot clock moved
        h.step(.tick)
        #expect(h.fenced.map(\.pid) == [300], "holders fenced at the deadline")
        #expect(h.lockspaceState == "failed")
        #expect(h.feeds.last == false, "no feeding while the victim may run")
        h.step(.victimGone(h.fenced[0]))
        h.step(.tick)
        #expect(h.feeds.last == true, "fed again once the victim is confirmed gone")
    }

    @Test func aChangedSlotFencesAtOnceUnlessTheRuleIsBroken() throws {
        for broken in [false, true] {
            let h = CoreHarness(mutations: broken ? .ignoreFenceAtOnce : [])
            h.join()
            let id = h.acquire(h.client(301))
            h.settle()
            guard case .granted = h.replies[id] else { Issue.record("not granted"); return }
            // Another incarnation takes our slot (same name, generation + 1).
            var r = LeaderRecord(decoding: h.device.contents(at: 0, length: 512))
            r.ownerGeneration += 1
            h.device.load(r.sector(size: 512), at: 0)
            h.advance(seconds: 2.1)
            h.settle()
            #expect(h.fenced.isEmpty == broken, broken ? "the mutant keeps going" : "renewOwner must fence at once")
        }
    }

    // MARK: - Restart

    @Test func aRestartStopsLeftoverHoldersBeforeItJoins() throws {
        for broken in [false, true] {
            let h = CoreHarness(mutations: broken ? .restartWithoutKillingLeftovers : [])
            let old = PersistedLease(
                lockspace: "LS", resource: "r0", path: "mem", offset: 1 << 20, lver: 3, shared: false, pid: 77,
                startTime: 9, persistent: false, orphan: false, releaseRequested: false)
            h.step(.start(previous: [old]))
            h.step(.addLockspace(h.setup, reply: nil, waitJoined: false))
            h.step(.tick)
            if broken {
                #expect(h.fenced.isEmpty && h.pending.contains { if case .join = $0.op { true } else { false } })
                continue
            }
            #expect(h.fenced.map(\.pid) == [77], "the leftover is stopped first")
            #expect(!h.pending.contains { if case .join = $0.op { true } else { false } }, "no join while it may run")
            #expect(h.feeds.last == false, "no feeding while it may run")
            h.step(.victimGone(h.fenced[0]))
            h.step(.tick)
            #expect(h.pending.contains { if case .join = $0.op { true } else { false } }, "joins once it is gone")
            #expect(h.feeds.last == true)
        }
    }

    @Test func aHolderThatCannotBeStoppedKeepsTheWatchdogUnfed() throws {
        for broken in [false, true] {
            let h = CoreHarness(mutations: broken ? .feedWatchdogWhileVictimLives : [])
            h.join()
            _ = h.acquire(h.client(302))
            h.settle()
            h.advance(seconds: 2.5)
            h.time.boot += Clock.seconds(9)
            h.step(.tick)
            h.step(.victimUnconfirmed(h.fenced[0]))
            h.step(.tick)
            #expect(h.feeds.last == broken, broken ? "the mutant feeds" : "never fed while a victim may live")
        }
    }

    // MARK: - Ballot outcomes

    @Test func heldElsewhereWaitsWatchesTheOwnerAndRetriesAfterARenewal() throws {
        let h = CoreHarness()
        h.placeOwner(5, ofResource: 0)
        h.join()
        let try1 = h.acquire(h.client(303), wait: false)
        h.settle()
        guard case .failed(let f)? = h.replies[try1], f.code == .busy else {
            Issue.record("try-acquire must be busy"); return
        }
        let waiting = h.acquire(h.client(304))
        h.settle()
        #expect(h.replies[waiting] == nil, "a waiter keeps waiting")
        // The next renewal reads the owner's slot.
        h.advance(seconds: 2.1)
        guard let renew = h.pending.first(where: { if case .renew = $0.op { true } else { false } }),
            case .renew(let op) = renew.op
        else { Issue.record("no renewal"); return }
        _ = op
        h.settle()
        // The owner releases on disk: the waiter gets it after the next renewal.
        var l = LeaderRecord(decoding: h.device.contents(at: 1 << 20, length: 512))
        l.timestamp = 0
        h.device.load(l.sector(size: 512), at: 1 << 20)
        h.advance(seconds: 2.1)
        h.settle()
        guard case .granted(let lver)? = h.replies[waiting] else {
            Issue.record("waiter not granted: \(String(describing: h.replies[waiting]))"); return
        }
        #expect(lver == 2)
    }

    @Test func localWaitersGoInArrivalOrderAndSharedHoldersShareOneGrant() throws {
        let h = CoreHarness()
        h.join()
        let a = h.acquire(h.client(310))
        let b = h.acquire(h.client(311))
        let c = h.acquire(h.client(312))
        h.settle()
        #expect(h.replies[a] == .granted(lver: 1) && h.replies[b] == nil && h.replies[c] == nil)
        let ra = h.request { .release($0, h.client(310), h.key()) }
        h.settle()
        #expect(h.replies[ra] == .ok && h.replies[b] == .granted(lver: 2) && h.replies[c] == nil)
        _ = h.request { .release($0, h.client(311), h.key()) }
        h.settle()
        #expect(h.replies[c] == .granted(lver: 3))
        _ = h.request { .release($0, h.client(312), h.key()) }
        h.settle()
        let s1 = h.acquire(h.client(320), shared: true)
        h.settle()
        let s2 = h.acquire(h.client(321), shared: true)
        h.settle()
        #expect(h.replies[s1] == h.replies[s2], "the second SH holder shares the host's grant")
        #expect(h.core.leases().count == 2)
    }

    @Test func aTimedOutWaiterIsAnsweredAndAGrantNobodyWantsIsReleased() throws {
        let h = CoreHarness()
        h.join()
        let a = h.acquire(h.client(330))
        h.settle()
        let w = h.acquire(h.client(331), deadline: h.time.mono + Clock.seconds(1))
        h.advance(seconds: 1.5)
        guard case .failed(let f)? = h.replies[w], f.code == .timeout else { Issue.record("expected timeout"); return }
        _ = a
    }

    @Test func aClosedConnectionReleasesAndPersistentLeasesBecomeOrphans() throws {
        let h = CoreHarness()
        h.join()
        let p = h.acquire(h.client(340), 0, persistent: true)
        let n = h.acquire(h.client(341), 1)
        h.settle()
        #expect(h.replies[p] == .granted(lver: 1) && h.replies[n] == .granted(lver: 1))
        h.step(.clientGone(h.client(340)))
        h.step(.clientGone(h.client(341)))
        h.settle()
        let left = h.core.leases()
        #expect(left.count == 1 && left[0].orphan && left[0].resource == "r0")
        // The next local acquire of r0 adopts the orphan: same lver, no ballot.
        let adopt = h.acquire(h.client(342), 0)
        #expect(h.pending.isEmpty)
        #expect(h.replies[adopt] == .granted(lver: 1))
        #expect(
            LeaderRecord(decoding: h.device.contents(at: 2 << 20, length: 512)).timestamp == 0, "r1 released on disk")
    }

    @Test func aBallotCarriesItsHighestMbalToTheNext() throws {
        let h = CoreHarness()
        h.join()
        _ = h.acquire(h.client(350))
        h.settle()
        _ = h.request { .release($0, h.client(350), h.key()) }
        h.settle()
        _ = h.acquire(h.client(351))
        guard let next = h.pending.first, case .acquire(let op) = next.op else { Issue.record("no acquire"); return }
        #expect(op.finalContext.membership.presentHosts == [1])
        h.settle()
        let mine = PaxosDblock(decoding: h.device.contents(at: (1 << 20) + 2 * 512, length: 512))
        #expect(mine.lver == 2 && mine.mbal > 1, "mbal grew across acquires: \(mine)")
    }

    // MARK: - Convert

    @Test func aFailedConvertToSharedLeavesTheHoldingShared() throws {
        let h = CoreHarness()
        h.join()
        _ = h.acquire(h.client(360))
        h.settle()
        _ = h.request { .convert($0, h.client(360), h.key(), toShared: true) }
        // The convert's write fails with EIO.
        var f = MemoryFaults()
        f.eio = [IORange(offset: 1 << 20, length: 512)]
        h.device.setFaults(f)
        h.settle()
        h.device.setFaults(MemoryFaults())
        #expect(h.core.leases().first?.shared == true, "whatever landed, the holding is shared now")
    }

    // MARK: - Leaving (rule 5)

    @Test func aLeaveWaitsForBallotsAndDrainsIOUnlessTheRuleIsBroken() throws {
        for broken in [false, true] {
            let h = CoreHarness(mutations: broken ? .leaveDuringBallot : [])
            h.join()
            _ = h.acquire(h.client(370))  // its ballot is pending, not run
            let rem = h.request { .remLockspace("LS", reply: $0) }
            let leaveQueued = h.pending.contains { if case .leave = $0.op { true } else { false } }
            #expect(leaveQueued == broken, broken ? "the mutant leaves at once" : "no leave while a ballot runs")
            h.settle()
            #expect(h.replies[rem] == .ok)
        }
    }

    @Test func aLeaveWithTimedOutWritesOutstandingKeepsTheSlot() throws {
        let h = CoreHarness()
        h.join()
        h.outstandingOnDrain = 1
        let rem = h.request { .remLockspace("LS", reply: $0) }
        h.settle()
        #expect(h.replies[rem] == .ok)
        #expect(
            LeaderRecord(decoding: h.device.contents(at: 0, length: 512)).timestamp != 0, "the slot is left to expire")
    }
}
