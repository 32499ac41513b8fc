import Foundation
import Testing
import LeaseFormat
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The six ways real daemons once granted one lease twice (issue 10), replayed against real
/// diskleased processes. Each holder proves exclusion with a token file; each grant is logged
/// with its lver, so two holders of one lver, or two at once, show up as a VIOLATION line or
/// a repeated lver.
@Suite(.serialized) struct AgreementTests {
    func lines(_ log: String) -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func expectExclusive(_ log: String, _ context: String) {
        let all = lines(log)
        #expect(
            !all.contains { $0.hasPrefix("VIOLATION") },
            "two holders at once (\(context)): \(all.filter { $0.hasPrefix("VIOLATION") }.prefix(3))")
        let lvers = all.filter { !$0.hasPrefix("VIOLATION") }.compactMap {
            $0.split(separator: " ").last.map(String.init)
        }
        #expect(Set(lvers).count == lvers.count, "one lver granted twice (\(context)): \(all)")
    }

    /// 1. Hosts with different io_timeouts (10 and 1) and every submit delayed 20 ms, both
    /// acquiring right after their join: nothing about agreement depends on those timeouts.
    @Test func differentTimeoutsAndSlowSubmitsNeverGrantOneLeaseTwice() throws {
        let path = leaseFile()
        let dir = Scratch.directory("timeouts")
        let token = dir.appendingPathComponent("token").path, log = dir.appendingPathComponent("log").path
        let slow = FaultIO.environment(["FAULTIO_DELAY_US": "20000"])
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir, ioTimeout: 10, environment: slow)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir, ioTimeout: 1, environment: slow)
        try a.waitJoined(seconds: 60)
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        // Two try-acquires racing may both lose a round; go on until six grants (or 40 rounds).
        for _ in 0..<40 where lines(log).count < 6 {
            let ha = a.tokenHolder(vm1, token: token, log: log, extra: ["--no-wait"])
            let hb = b.tokenHolder(vm1, token: token, log: log, extra: ["--no-wait"])
            Thread.sleep(forTimeInterval: 0.6)
            for h in [ha, hb] { kill(h.processIdentifier, SIGKILL); h.waitUntilExit() }
            Thread.sleep(forTimeInterval: 0.3)
        }
        expectExclusive(log, "io_timeout 10 beside 1")
        #expect(lines(log).count >= 6, "\(lines(log))")
    }

    /// 2. rem_lockspace while an acquire is in flight (each submit 150 ms): the leave waits for
    /// the ballot and for our I/O; another host meanwhile gets the lease once, cleanly.
    @Test func leavingWithAnAcquireInFlightWaitsForIt() throws {
        let path = leaseFile()
        let dir = Scratch.directory("leave")
        let token = dir.appendingPathComponent("token").path, log = dir.appendingPathComponent("log").path
        let a = try DaemonProcess(
            hostID: 1, lease: path, dir: dir, environment: FaultIO.environment(["FAULTIO_DELAY_US": "150000"]))
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined(seconds: 60)
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let acquiring = a.tokenHolder(vm1, token: token, log: log)
        Thread.sleep(forTimeInterval: 0.2)  // its ballot is under way
        let rem = a.client(["rem-lockspace", "LS"])
        #expect(rem.status == 0 || rem.stderr.contains("still has leases held"), "\(rem)")
        let hb = b.tokenHolder(vm1, token: token, log: log)
        #expect(eventually(30) { lines(log).count >= 1 })
        Thread.sleep(forTimeInterval: 1)
        for h in [acquiring, hb] { kill(h.processIdentifier, SIGKILL); h.waitUntilExit() }
        expectExclusive(log, "leave during acquire")
        #expect(a.log.contains("left lockspace") || a.log.contains("still has leases held"), "\(a.log)")
    }

    /// 3. A SH→EX convert refused by another host's SH hold keeps our SHARED mode block:
    /// after the other host lets go, an EX acquire elsewhere is still refused while we hold SH.
    @Test func aFailedConvertStillShowsOurSharedHold() throws {
        let path = leaseFile()
        let dir = Scratch.directory("convert")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let out = Pipe(), inp = Pipe()
        let session = Process()
        session.executableURL = URL(fileURLWithPath: Programs.disklease)
        session.arguments = ["client", "session", "--run-dir", a.runDir]
        session.standardInput = inp
        session.standardOutput = out
        try session.run()
        func send(_ line: String) -> String {
            inp.fileHandleForWriting.write(Data((line + "\n").utf8))
            var got = Data()
            while !got.contains(0x0A) {
                let more = out.fileHandleForReading.availableData
                if more.isEmpty { break }
                got.append(more)
            }
            return String(decoding: got, as: UTF8.self)
        }
        let spec = "\"lockspace\":\"LS\",\"resource\":\"vm1\",\"path\":\"\(path)\",\"offset\":1048576"
        #expect(send("{\"v\":1,\"op\":\"acquire\",\(spec),\"shared\":true}").contains("\"ok\":true"))
        let bsh = b.holder(vm1 + ":SH")
        #expect(eventually(10) { b.client(["status"]).stdout.contains("lease LS:vm1") })
        let conv = send("{\"v\":1,\"op\":\"convert\",\"lockspace\":\"LS\",\"resource\":\"vm1\",\"shared\":false}")
        #expect(conv.contains("\"ok\":false"), "convert beside a live SH holder must fail: \(conv)")
        kill(bsh.processIdentifier, SIGKILL)
        bsh.waitUntilExit()
        #expect(eventually(10) { !b.client(["status"]).stdout.contains("lease LS:vm1") })
        let ex = b.client(["acquire", "-r", vm1, "--no-wait"])
        #expect(ex.status != 0 && ex.stderr.contains("shared"), "EX granted beside our SH hold: \(ex)")
        // SIGKILL: a child of the test process inherits its blocked SIGTERM.
        kill(session.processIdentifier, SIGKILL)
        session.waitUntilExit()
    }

    /// 5. A direct process renews its delta lease before balloting and refuses once it has
    /// lapsed; a fresh one races a daemon with live reads and exactly one wins each time.
    @Test func directAcquireRenewsFirstRefusesALapsedLeaseAndRacesADaemonCleanly() throws {
        let path = leaseFile()
        let dir = Scratch.directory("direct")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let ls3 = "LS:3:\(path):0", vm1 = "LS:vm1:\(path):1048576"
        #expect(Programs.run(Programs.disklease, ["direct", "join", "-s", ls3, "--name", "dl:direct3"]).status == 0)
        Thread.sleep(forTimeInterval: 9)  // past 8·io_timeout without a renewal
        let lapsed = Programs.run(Programs.disklease, ["direct", "acquire", "-s", ls3, "-r", vm1])
        #expect(lapsed.status == 65 && lapsed.stderr.contains("lapsed"), "\(lapsed)")
        var wins = (daemon: 0, direct: 0)
        for _ in 0..<8 {
            #expect(
                Programs.run(Programs.disklease, ["direct", "join", "-s", ls3, "--name", "dl:direct3"]).status == 0)
            let holder = a.holder(vm1, extra: ["--no-wait"])
            let ours = Programs.run(Programs.disklease, ["direct", "acquire", "-s", ls3, "-r", vm1])
            let daemonHeld = eventually(1) { a.client(["status"]).stdout.contains("lease LS:vm1") }
            #expect(daemonHeld != (ours.status == 0), "daemon held=\(daemonHeld), direct: \(ours)")
            if ours.status == 0 { wins.direct += 1 } else { wins.daemon += 1 }
            kill(holder.processIdentifier, SIGKILL)
            holder.waitUntilExit()
            if ours.status == 0 {
                #expect(Programs.run(Programs.disklease, ["direct", "release", "-s", ls3, "-r", vm1]).status == 0)
            }
            _ = eventually(5) { !a.client(["status"]).stdout.contains("lease LS:vm1") }
        }
        #expect(wins.daemon + wins.direct == 8)
    }

    /// 6. A commit write that lands 4 s after its deadline moves the leader back; the next
    /// ballot repairs it (rule 7), nobody is refused for ever, and no lver is granted twice.
    /// And a checksummed leader at lver 2^64−1 is refused as corrupt, the daemon stays up.
    @Test func aLateCommitIsRepairedAndAnOverflowingLeaderIsRefused() throws {
        let path = leaseFile()
        let dir = Scratch.directory("late")
        let token = dir.appendingPathComponent("token").path, log = dir.appendingPathComponent("log").path
        let late = FaultIO.environment(["FAULTIO_LATE_OFFSET": "1048576", "FAULTIO_LATE_MS": "4000"])
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir, environment: late)
        let b = try DaemonProcess(hostID: 2, lease: path, dir: dir)
        try a.waitJoined()
        try b.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        // A's commit of lver 1 times out (it lands 4 s later); B takes the lease twice meanwhile.
        let ha = a.tokenHolder(vm1, token: token, log: log, extra: ["--no-wait"])
        ha.waitUntilExit()
        for _ in 0..<2 {
            let hb = b.tokenHolder(vm1, token: token, log: log)
            #expect(eventually(20) { b.client(["status"]).stdout.contains("lease LS:vm1") }, "\(b.log)")
            Thread.sleep(forTimeInterval: 0.5)
            kill(hb.processIdentifier, SIGKILL)
            hb.waitUntilExit()
            _ = eventually(5) { !b.client(["status"]).stdout.contains("lease LS:vm1") }
        }
        Thread.sleep(forTimeInterval: 4)  // A's late commit has landed
        let repaired = b.tokenHolder(vm1, token: token, log: log)
        #expect(
            eventually(20) { b.client(["status"]).stdout.contains("lease LS:vm1") },
            "refused after the leader moved back: \(b.log)")
        kill(repaired.processIdentifier, SIGKILL)
        repaired.waitUntilExit()
        expectExclusive(log, "late commit")

        // A leader whose lver is 2^64-1 (checksum valid): corrupt, not a crash.
        #expect(OverflowLeader.write(path: path, offset: 2097152, resource: "vm2"))
        let r = b.client(["acquire", "-r", "LS:vm2:\(path):2097152", "--no-wait"])
        #expect(r.status == 65, "\(r)")
        #expect(b.process.isRunning)
        #expect(b.client(["status"]).status == 0)
    }
}

/// Writes a resource's leader with lver 2^64-1 and a valid checksum: bad input a reader must
/// refuse with a typed error, never trap on (lver + 1 would overflow).
enum OverflowLeader {
    static func write(path: String, offset: UInt64, resource: String) -> Bool {
        guard let h = FileHandle(forUpdatingAtPath: path) else { return false }
        defer { try? h.close() }
        var l = LeaderRecord.paxos(space: "LS", resource: resource, geometry: .g512_1M, numHosts: 2000)
        l.lver = .max
        l.ownerID = 1
        l.ownerGeneration = 1
        l.timestamp = 0
        try? h.seek(toOffset: offset)
        try? h.write(contentsOf: Data(l.sector(size: 512)))
        try? h.synchronize()
        return true
    }
}
