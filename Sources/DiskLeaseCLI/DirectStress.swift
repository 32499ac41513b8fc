import ArgumentParser
import DeltaLease
import DiskLeaseClient
import DiskPaxos
import LeaseFormat
import LeaseRunner

#if canImport(Glibc)
import Glibc
#endif

/// `disklease direct stress`: one host's worker for multi-process mutual-exclusion tests.
/// It joins (with a stable name, so a restarted worker rejoins at once), then loops: acquire,
/// critical section on an external counter file, release. The critical section writes a
/// unique token, waits, reads it back and appends "host_id lver" to a shared log; a second
/// owner at the same time would overwrite the token or break the strictly increasing lver
/// order of the log. Kill it with SIGKILL at any moment.
struct DirectStress: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress", abstract: "Contend for one resource in a loop with an external mutual-exclusion check.")
    @OptionGroup var options: DirectHostOptions
    var lockspace: LockspaceSpec { options.lockspace }
    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset") var resource: ResourceSpec
    @Option(help: "Stable host name.") var name: String
    @Option(help: "The counter file two owners would corrupt.") var counter: String
    @Option(help: "Append-only log of critical sections.") var log: String
    @Option(help: "Stop after this many seconds.") var seconds = 30
    @Option(help: "Ballot reads: live (the read set of docs/AGREEMENT.md) or full.") var mode: ReadMode = .live
    var readMode: ReadMode { mode }
    @Flag(name: .customLong("trace"), help: .hidden) var traceAcquires = false

    func run() throws {
        try reporting {
            let host = try options.host()
            var rng = SystemRandomNumberGenerator()
            let joined = try host.run(
                DeltaJoin(
                    layout: host.layout, space: lockspace.name, hostID: lockspace.hostID,
                    hostName: name, timeouts: host.timeouts, nonce: rng.next()))
            let res = try host.resource(resource)
            let me = PaxosHost(hostID: lockspace.hostID, generation: joined.generation)
            var session = DirectSession(host: host, joined: joined)
            try session.renew(scan: false)
            let deadline = MonotonicClock.now() + Clock.seconds(seconds)
            var highestMbal: UInt64 = 0
            var acquired = 0
            let counterFD = open(counter, O_RDWR | O_CREAT, 0o644)
            let logFD = open(log, O_WRONLY | O_APPEND | O_CREAT, 0o644)
            guard counterFD >= 0, logFD >= 0 else { throw CLIFailure("cannot open \(counter) or \(log)", .noInput) }
            while MonotonicClock.now() < deadline {
                let ctx = try session.ballotContext(mode: readMode)
                var options = PaxosAcquire.Options(noWait: true)
                options.minimumMbal = highestMbal
                var op = PaxosAcquire(resource: res, host: me, context: ctx, options: options, seed: rng.next())
                var trace = IOTrace()
                let out = host.runner.run(&op, trace: &trace)
                session.adopt(op.finalContext)
                highestMbal = max(highestMbal, op.highestMbal)
                if traceAcquires {
                    FileHandleStream.stderr.write(
                        "h\(lockspace.hostID) acquire -> \(out) repairs \(op.leaderRepairs) rebuilds "
                            + "\(op.membershipRebuilds) epoch \(ctx.membership.epoch) present "
                            + "\(ctx.membership.presentHosts)\n"
                    )
                }
                guard case .success(let grant) = out else {
                    usleep(UInt32(2_000 + rng.next() % 20_000))
                    continue
                }
                // The critical section.
                let token = Array("\(lockspace.hostID):\(grant.lver):\(rng.next())\n".utf8)
                _ = token.withUnsafeBytes { pwrite(counterFD, $0.baseAddress, $0.count, 0) }
                fsync(counterFD)
                usleep(2_000)
                var back = [UInt8](repeating: 0, count: token.count)
                _ = back.withUnsafeMutableBytes { pread(counterFD, $0.baseAddress, $0.count, 0) }
                let line =
                    back == token
                    ? "\(lockspace.hostID) \(grant.lver)\n"
                    : "VIOLATION host \(lockspace.hostID) lver \(grant.lver): token overwritten\n"
                _ = Array(line.utf8).withUnsafeBytes { write(logFD, $0.baseAddress, $0.count) }
                if back != token { throw CLIFailure("mutual exclusion violated at lver \(grant.lver)", .corrupt) }
                acquired += 1
                if case .failure(let e) = host.runner.run(PaxosRelease(grant: grant)) {
                    FileHandleStream.stderr.write("release failed: \(e)\n")
                }
            }
            FileHandleStream.stdout.write("host_id \(lockspace.hostID): \(acquired) critical sections\n")
        }
    }
}
