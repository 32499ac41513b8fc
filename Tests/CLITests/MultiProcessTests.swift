import Foundation
import LeaseFormat
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Real OS processes on a real file: mutual exclusion under SIGKILL, and DiskLease racing the
/// real sanlock. Time only bounds how long the tests run; what they assert is counts.
@Suite(.serialized) struct MultiProcessTests {
    func lockspaceWithResource(numHosts: Int = 8) -> String {
        let path = Scratch.file(size: 2 << 20)
        #expect(DiskLease.run(["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"]).status == 0)
        #expect(DiskLease.run(["init", "resource", "LS:res:\(path):1048576", "-n", "\(numHosts)"]).status == 0)
        return path
    }

    func spawn(_ args: [String]) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Programs.disklease)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try! p.run()
        return p
    }

    @Test func thousandContendedAcquiresUnderSIGKILLKeepMutualExclusion() throws {
        let path = lockspaceWithResource()
        let dir = Scratch.directory("stress")
        let counter = dir.appendingPathComponent("counter").path
        let log = dir.appendingPathComponent("log").path
        func worker(_ h: Int) -> Process {
            spawn([
                "direct", "stress", "-s", "LS:\(h):\(path):0", "-r", "LS:res:\(path):1048576", "--name",
                "dl:stress-\(h)",
                "--counter", counter, "--log", log, "--seconds", "600", "--watchdog", "4",
            ])
        }
        var workers = [1: worker(1), 2: worker(2), 3: worker(3)]
        var kills = 0
        var rng = SystemRandomNumberGenerator()
        func lines() -> [Substring] {
            (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? []
        }
        // Kill a random worker every 1–3 s (at any point: inside the critical section, mid
        // ballot, mid join) and restart it, until 1,000 critical sections or 240 s.
        let limit = Date().addingTimeInterval(240)
        while (lines().count < 1000 || kills < 8) && Date() < limit {
            usleep(UInt32(1_000_000 + rng.next() % 2_000_000))
            let h = Int(rng.next() % 3) + 1
            kill(workers[h]!.processIdentifier, SIGKILL)
            workers[h]!.waitUntilExit()
            kills += 1
            workers[h] = worker(h)
        }
        for (_, p) in workers { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        let all = lines()
        #expect(!all.contains { $0.hasPrefix("VIOLATION") }, "a token was overwritten: two owners at once")
        #expect(all.count >= 1000, "only \(all.count) critical sections")
        #expect(kills >= 5)
        // Every critical section happened under a newer lease version than the one before.
        let lvers = all.compactMap { UInt64($0.split(separator: " ")[1]) }
        #expect(lvers.count == all.count)
        #expect(zip(lvers, lvers.dropFirst()).allSatisfy { $0 < $1 }, "lvers not strictly increasing")
        // Each host got its turn.
        #expect(Set(all.map { $0.split(separator: " ")[0] }).count == 3)
        print("multi-process: \(all.count) critical sections, \(kills) SIGKILLs, 0 violations")
    }

    @Test func directAcquireRacingSanlockHasExactlyOneWinner() throws {
        let path = lockspaceWithResource()
        #expect(Sanlock.direct(["acquire_id", "-s", "LS:1:\(path):0", "-o", "1"]).stdout.contains("acquire_id done 0"))
        #expect(DiskLease.run(["direct", "join", "-s", "LS:2:\(path):0", "--name", "dl:racer"]).status == 0)
        // There is no join wait: a first acquire goes at once (the race then starts from free).
        #expect(
            DiskLease.run(["direct", "acquire", "-s", "LS:2:\(path):0", "-r", "LS:res:\(path):1048576"]).status == 0)
        var rng = SystemRandomNumberGenerator()
        var wins = (sanlock: 0, disklease: 0)
        for trial in 1...40 {
            // sanlock's direct release leaves the leader timestamp set, so every trial starts
            // from a freshly initialised resource.
            #expect(DiskLease.run(["init", "resource", "LS:res:\(path):1048576", "-n", "8", "--force"]).status == 0)
            let delay = Double(rng.next() % 80) / 1000
            let sanlock = Process()
            sanlock.executableURL = URL(fileURLWithPath: "/bin/sh")
            sanlock.arguments = [
                "-c",
                "sleep \(delay); exec \(Programs.which("sanlock")) direct acquire "
                    + "-r LS:res:\(path):1048576 -i 1 -g 1 -o 1",
            ]
            let out = Pipe()
            sanlock.standardOutput = out
            sanlock.standardError = FileHandle.nullDevice
            try sanlock.run()
            let ours = DiskLease.run(["direct", "acquire", "-s", "LS:2:\(path):0", "-r", "LS:res:\(path):1048576"])
            let theirs = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            sanlock.waitUntilExit()
            let sanlockWon = theirs.contains("acquire done 0")
            let weWon = ours.status == 0
            #expect(sanlockWon != weWon, "trial \(trial): sanlock won=\(sanlockWon), disklease won=\(weWon): \(ours)")
            let leader = try #require(Sanlock.readLeader("-r", "LS:res:\(path):1048576"))
            #expect(leader["owner_id"] == (sanlockWon ? "1" : "2"), "trial \(trial): leader \(leader)")
            if weWon {
                wins.disklease += 1
                #expect(
                    ours.stdout.contains("lver \(leader["lver"]!)"),
                    "lver differs: ours \(ours.stdout), sanlock \(leader["lver"]!)")
            } else {
                wins.sanlock += 1
            }
            let ourView = DiskLease.run(["read-leader", "-r", "LS:res:\(path):1048576"])
            #expect(Sanlock.fields(ourView.stdout)["lver"] == leader["lver"])
        }
        #expect(wins.sanlock + wins.disklease == 40)
        print("interop race: sanlock won \(wins.sanlock), disklease won \(wins.disklease) of 40")
    }

    /// `direct acquire --owner-wait`: an owner whose host keeps renewing is refused as soon as
    /// a renewal is seen; one that stopped renewing loses the lease only after
    /// host_dead_seconds (8·1 + 2 = 10 s here) of watching.
    @Test func ownerWaitRefusesARenewingOwnerAndTakesOverFromADeadOne() throws {
        let path = lockspaceWithResource()
        let ls1 = "LS:1:\(path):0", ls2 = "LS:2:\(path):0", res = "LS:res:\(path):1048576"
        let t = ["--watchdog", "2"]
        #expect(DiskLease.run(["direct", "join", "-s", ls1, "--name", "dl:a"]).status == 0)
        #expect(DiskLease.run(["direct", "join", "-s", ls2, "--name", "dl:b"]).status == 0)
        #expect(DiskLease.run(["direct", "acquire", "-s", ls1, "-r", res] + t).status == 0)

        // Host 1 renews every second in the background: host 2 sees it LIVE and is refused.
        let renewer = Process()
        renewer.executableURL = URL(fileURLWithPath: "/bin/sh")
        renewer.arguments = [
            "-c", "while :; do \(Programs.disklease) direct renew -s \(ls1) >/dev/null 2>&1; sleep 1; done",
        ]
        try renewer.run()
        let refused = DiskLease.run(["direct", "acquire", "-s", ls2, "-r", res, "--owner-wait"] + t)
        kill(renewer.processIdentifier, SIGKILL)
        renewer.waitUntilExit()
        #expect(refused.status == 75, "\(refused)")
        #expect(refused.stderr.contains("LIVE"), "\(refused)")

        // Host 1 stops renewing: after host_dead_seconds host 2 takes over at the next lver.
        let started = Date()
        let taken = DiskLease.run(["direct", "acquire", "-s", ls2, "-r", res, "--owner-wait"] + t)
        #expect(taken.status == 0, "\(taken)")
        #expect(taken.stdout.contains("lver 2"), "\(taken)")
        #expect(taken.stderr.contains("watching its delta lease"))
        // A bound on the run, not a timing assertion: the takeover cannot come before
        // host_dead_seconds of watching.
        #expect(Date().timeIntervalSince(started) >= 10)
        let leader = DiskLease.run(["read-leader", "-r", res])
        #expect(Sanlock.fields(leader.stdout)["owner_id"] == "2")
    }
}
