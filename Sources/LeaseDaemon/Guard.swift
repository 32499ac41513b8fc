import Foundation
import HostCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What the guard is told: per lockspace, when our lease expires (CLOCK_BOOTTIME ns) and who
/// holds leases there.
struct GuardMessage: Codable {
    struct Entry: Codable {
        var expiry: Int64?
        var victims: [GuardVictim]
    }
    struct GuardVictim: Codable {
        var pid: Int32
        var startTime: UInt64
        var lockspace: String
        var resource: String
    }
    var entries: [String: Entry]
    /// A clean stop: nothing is held any more, the guard may exit.
    var bye = false
}

/// The daemon's side of the independent guard: a separate process (this same executable,
/// `diskleased --guard`) that stops lease holders when our lease expires even if the daemon is
/// stopped (SIGSTOP), hung, or killed, as sanlock relies on wdmd and the watchdog for. It is
/// told the whole state whenever it changes; if it dies it is started again.
final class GuardLink: @unchecked Sendable {
    let program: String
    let log: Logger
    private let lock = NSLock()
    private var process: Process? = nil
    private var pipe: Pipe? = nil
    private var last: Data? = nil

    init(program: String, log: Logger) {
        self.program = program
        self.log = log
    }

    func send(_ entries: [String: GuardEntry]) {
        var m = GuardMessage(entries: [:])
        for (name, e) in entries {
            m.entries[name] = GuardMessage.Entry(
                expiry: e.expiry,
                victims: e.victims.map {
                    GuardMessage.GuardVictim(
                        pid: $0.pid, startTime: $0.startTime, lockspace: $0.lockspace, resource: $0.resource)
                })
        }
        write(m)
    }

    func close() {
        write(GuardMessage(entries: [:], bye: true))
        lock.lock()
        try? pipe?.fileHandleForWriting.close()
        pipe = nil
        lock.unlock()
    }

    private func write(_ m: GuardMessage) {
        guard var line = try? JSONEncoder().encode(m) else { return }
        line.append(0x0A)
        lock.lock()
        defer { lock.unlock() }
        last = line
        for _ in 0..<2 {
            if process?.isRunning != true { spawn() }
            guard let p = pipe else { return }
            do {
                try p.fileHandleForWriting.write(contentsOf: line)
                return
            } catch {
                log.error("guard unreachable: starting it again", metadata: ["error": "\(error)"])
                process = nil
            }
        }
    }

    private func spawn() {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = ["--guard"]
        let pipe = Pipe()
        p.standardInput = pipe
        do {
            try p.run()
            process = p
            self.pipe = pipe
            log.info("guard started", metadata: ["pid": "\(p.processIdentifier)"])
        } catch {
            log.critical("cannot start the guard process", metadata: ["program": "\(program)", "error": "\(error)"])
            process = nil
            self.pipe = nil
        }
    }
}

/// The guard process's loop: reads the daemon's messages on stdin and, on CLOCK_BOOTTIME,
/// stops (SIGTERM, then SIGKILL) every holder of a lockspace whose lease has expired. When the
/// daemon goes away without a clean stop it carries on until every holder it knows of is
/// stopped or gone, then exits.
public enum GuardProcess {
    public static func run(termGrace: Int) -> Never {
        signal(SIGPIPE, SIG_IGN)
        let state = Monitor((entries: [String: GuardMessage.Entry](), eof: false, bye: false))
        Thread.detachNewThread {
            while let line = readLine(strippingNewline: true) {
                guard let m = try? JSONDecoder().decode(GuardMessage.self, from: Data(line.utf8)) else { continue }
                state.withLock { s in
                    s.entries = m.entries
                    s.bye = m.bye
                }
            }
            state.withLock { $0.eof = true }
        }
        var termSent: [ProcessRef: Int64] = [:]
        while true {
            let (entries, eof, bye) = state.withLock { ($0.entries, $0.eof, $0.bye) }
            if bye
                || (eof
                    && entries.values.allSatisfy({
                        $0.victims.allSatisfy {
                            !ProcessIdentity.alive(ProcessRef(pid: $0.pid, startTime: $0.startTime))
                        }
                    }))
            {
                exit(0)
            }
            let now = HostClocks.boot()
            for e in entries.values {
                guard let expiry = e.expiry, expiry <= now else { continue }
                for v in e.victims {
                    let p = ProcessRef(pid: v.pid, startTime: v.startTime)
                    guard ProcessIdentity.alive(p) else { continue }
                    if let t = termSent[p] {
                        if now - t > Int64(termGrace) * 1_000_000_000 { ProcessIdentity.signal(p, SIGKILL) }
                    } else {
                        let note = "diskleased guard: lease of \(v.lockspace) expired: "
                            + "stopping pid \(v.pid) (\(v.resource))\n"
                        FileHandle.standardError.write(Data(note.utf8))
                        ProcessIdentity.signal(p, SIGTERM)
                        termSent[p] = now
                    }
                }
            }
            usleep(100_000)
        }
    }
}
