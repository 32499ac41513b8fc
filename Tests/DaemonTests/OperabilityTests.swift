import DiskLeaseClient
import Foundation
import LeaseDaemon
import Logging
import Synchronization
import Testing
import TestSupport

/// Issue 13, as an operator meets the daemon: journald priorities and a level filter on its
/// log, sanlock's underscore spellings in its config, `--version` and the `version` op.
@Suite(.serialized) struct OperabilityTests {
    /// Lines a handler wrote, kept for the test.
    final class Lines: Sendable {
        let all = Mutex<[String]>([])
        var write: @Sendable (String) -> Void { { s in self.all.withLock { $0.append(s) } } }
    }

    @Test func underJournaldEachLineCarriesItsPriorityAndTheLevelFilters() {
        let lines = Lines()
        var log = Logger(label: "diskleased") { label in
            JournalLogHandler(
                label: label, level: .warning, environment: ["JOURNAL_STREAM": "8:1234"], write: lines.write)
        }
        log[metadataKey: "lockspace"] = "LS"
        log.info("joined lockspace")
        log.warning("renewal slow", metadata: ["seconds": "3"])
        log.critical("holder survived SIGKILL", metadata: ["pid": "42"])
        #expect(
            lines.all.withLock { $0 }
                == [
                    "<4>diskleased: [DaemonTests] renewal slow lockspace=LS seconds=3\n",
                    "<2>diskleased: [DaemonTests] holder survived SIGKILL lockspace=LS pid=42\n",
                ])

        let plain = Lines()
        let p = Logger(label: "diskleased") {
            JournalLogHandler(label: $0, level: .info, environment: [:], write: plain.write)
        }
        p.error("cannot open", metadata: ["path": "/dev/sdz"])
        let line = plain.all.withLock { $0.first ?? "" }
        #expect(
            line.hasSuffix(" error diskleased: [DaemonTests] cannot open path=/dev/sdz\n") && !line.hasPrefix("<"),
            "\(line)")
    }

    /// The real daemon under a journal-like stderr: its first critical line (no watchdog) is
    /// `<2>`, and `--log-level warning` keeps info lines out.
    @Test func theDaemonWritesPrioritiesAndHonoursLogLevel() throws {
        let path = leaseFile()
        let dir = Scratch.directory("journal")
        let d = try DaemonProcess(
            hostID: 1, lease: path, dir: dir, extra: ["--log-level", "warning"],
            environment: ["JOURNAL_STREAM": "8:1234"])
        try d.waitJoined()
        let lines = d.log.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("<2>diskleased: [LeaseDaemon] no watchdog device") }, "\(d.log)")
        #expect(!lines.contains { $0.hasPrefix("<6>") }, "info lines despite --log-level warning: \(d.log)")
        #expect(lines.allSatisfy { $0.hasPrefix("<") }, "\(d.log)")
        d.kill(SIGTERM)
    }

    /// sanlock's spellings are the same keys; an unknown one is named as written.
    @Test func underscoreKeysAreAliases() throws {
        let conf = Scratch.directory("alias").appendingPathComponent("d.conf").path
        try "io_timeout = 3\nwatchdog_fire_timeout = 30\nlog_level = err\n".write(
            toFile: conf, atomically: true, encoding: .utf8)
        var c = DaemonConfig()
        try c.apply(file: conf)
        #expect(c.ioTimeout == 3 && c.watchdogFireSeconds == 30 && c.logLevel == "err")
        try "io_timeuot = 3\n".write(toFile: conf, atomically: true, encoding: .utf8)
        var bad = DaemonConfig()
        #expect(throws: ConfigError.self) { try bad.apply(file: conf) }
        let r = Programs.run(Programs.diskleased, ["--config", conf])
        #expect(r.status == 78 && r.stderr.contains("unknown key io_timeuot"), "\(r)")
    }

    @Test func bothProgramsAndTheSocketTellTheirVersion() throws {
        for program in [Programs.disklease, Programs.diskleased] {
            let r = Programs.run(program, ["--version"])
            #expect(r.status == 0 && r.stdout == "\(DiskLeaseVersion.string)\n", "\(program): \(r)")
        }
        let d = try DaemonProcess(hostID: 1, lease: leaseFile(), dir: Scratch.directory("version"))
        try d.waitJoined()
        // A misspelt key is refused by name, not ignored.
        let line = #"{"op":"acquire","lockspace":"LS","resource":"vm1","path":"x","offset":0,"shard":true}"# + "\n"
        let reply = RawSocket(d.runDir).exchange(Array(line.utf8)) ?? ""
        #expect(reply.contains("bad_request") && reply.contains("unknown key 'shard'"), "\(reply)")
        let v = d.client(["version"])
        #expect(v.status == 0 && v.stdout.contains("diskleased \(DiskLeaseVersion.string)"), "\(v)")
        #expect(v.stdout.contains("membership-epoch") && v.stdout.contains("protocol-1"), "\(v)")
        d.kill(SIGTERM)
    }
}
