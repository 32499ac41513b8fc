import Foundation
import Testing
import TestSupport

@Suite struct ConfigTests {
    /// The config file alone starts a working daemon; a bad line is refused with file:line and
    /// exit 78 before anything touches the disk; unsafe grace periods are refused.
    @Test func configFileDrivesTheDaemonAndBadLinesAreRefused() throws {
        let path = leaseFile()
        let dir = Scratch.directory("config")
        let conf = dir.appendingPathComponent("diskleased.conf").path
        let run = dir.appendingPathComponent("run").path
        try """
        # a test host
        run-dir = \(run)
        lockspace = LS:4:\(path):0
        io-timeout = 1
        watchdog-fire-timeout = 4   # small for the test
        kill-grace = 1
        term-grace = 1
        watchdog-device = none
        """.write(toFile: conf, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Programs.diskleased)
        p.arguments = ["--config", conf]
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        #expect(
            eventually(20) {
                Programs.run(Programs.disklease, ["client", "status", "--run-dir", run, "--json"]).stdout.contains(
                    "\"io_timeout\":1,\"name\":\"LS\"")
            })

        try "io-timeout = ten\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let bad = Programs.run(Programs.diskleased, ["--config", conf])
        #expect(bad.status == 78 && bad.stderr.contains("\(conf):1: io-timeout: ten is not"), "\(bad)")
        let unsafe = Programs.run(
            Programs.diskleased, ["--config", "/dev/null", "--kill-grace", "40", "--term-grace", "30"])
        #expect(unsafe.status == 64 && unsafe.stderr.contains("must be below the watchdog timeout"), "\(unsafe)")
    }
}
