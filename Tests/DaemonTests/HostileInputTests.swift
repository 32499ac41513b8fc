import DiskLeaseClient
import Foundation
import LeaseFormat
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What a local user, a corrupt disk or a clumsy operator can do to the daemon: each case once
/// crashed it, lost a record or reached the wrong file. Each must now get one clear error, the
/// daemon stays up and the device is unchanged.
@Suite(.serialized) struct HostileInputTests {
    /// An offset near 2^64, a dblock with mbal 2^64-1 and a slot at generation 2^64-1: typed
    /// errors, no trap, nothing written.
    @Test func overflowingRequestsAndRecordsAreRefused() throws {
        let path = leaseFile()
        let dir = Scratch.directory("overflow")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let request = "{\"v\":1,\"op\":\"acquire\",\"lockspace\":\"LS\",\"resource\":\"vm9\",\"path\":\"\(path)\","
            + "\"offset\":18446744073708503040}\n"
        let line = Array(request.utf8)
        let reply = RawSocket(a.runDir).exchange(line) ?? ""
        #expect(reply.contains("bad_request") && reply.contains("18446744073708503040"), "\(reply)")

        // Our own dblock of vm1 (always read) at mbal 2^64-1 with a valid checksum: our next
        // ballot number would overflow.
        var sector = [UInt8](repeating: 0, count: 512)
        var d = PaxosDblock(mbal: .max, bal: 0, lver: 1)
        d.encode(into: &sector)
        #expect(Self.write(sector, to: path, at: 1_048_576 + 2 * 512))
        let before = Scratch.bytes(of: path)
        let r = a.client(["acquire", "-r", "LS:vm1:\(path):1048576", "--no-wait"])
        #expect(r.status != 0 && r.stderr.contains("mbal"), "\(r)")
        #expect(a.process.isRunning && a.client(["status"]).status == 0)
        #expect(Scratch.bytes(of: path)[1_048_576..<(2 << 20)] == before[1_048_576..<(2 << 20)])

        // A slot at generation 2^64-1 under another name: joining it would need generation + 1.
        var slot = LeaderRecord.delta(space: "LS", geometry: .g512_1M, ioTimeout: 1)
        slot.ownerID = 3
        slot.ownerGeneration = .max
        slot.timestamp = 0
        slot.resourceName = "dl:other"
        #expect(Self.write(slot.sector(size: 512), to: path, at: 2 * 512))
        let join = a.client(["add-lockspace", "-s", "LS2:3:\(path):0"])
        #expect(join.status != 0, "\(join)")
        let direct = Programs.run(Programs.disklease, ["direct", "join", "-s", "LS:3:\(path):0", "--name", "dl:x"])
        #expect(direct.status == 65 && direct.stderr.contains("generation"), "\(direct)")
        #expect(a.process.isRunning)
    }

    /// A blank line is a bad request on an open connection, not a hang-up: the lease stays.
    @Test func aBlankLineKeepsTheLease() throws {
        let path = leaseFile()
        let a = try DaemonProcess(hostID: 1, lease: path, dir: Scratch.directory("blank"))
        try a.waitJoined()
        // The lease is held by this test process itself: it must be released before the daemon
        // stops, or the daemon's guard would (rightly) stop the holder, i.e. the test runner.
        let s = try ClientSession(runDir: a.runDir)
        let spec = "\"lockspace\":\"LS\",\"resource\":\"vm1\",\"path\":\"\(path)\",\"offset\":1048576"
        #expect(s.send("{\"v\":1,\"op\":\"acquire\",\(spec)}").contains("\"ok\":true"))
        #expect(s.send("").contains("bad_request"))
        #expect(s.send("   ").contains("bad_request"))
        #expect(a.client(["status"]).stdout.contains("lease LS:vm1"))
        s.close()
        #expect(eventually(10) { !a.client(["status"]).stdout.contains("lease LS:vm1") })
    }

    /// One daemon per run directory; a world-writable run directory is refused.
    @Test func theRunDirectoryBelongsToOneDaemon() throws {
        let path = leaseFile()
        let dir = Scratch.directory("rundir")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let second = Programs.run(
            Programs.diskleased,
            [
                "--config", "/dev/null", "--run-dir", a.runDir, "--watchdog-device", "none", "--io-timeout", "1",
                "--watchdog-fire-timeout", "4", "--kill-grace", "1", "--term-grace", "1",
            ])
        #expect(second.status == 75 && second.stderr.contains("in use by another diskleased"), "\(second)")
        #expect(a.client(["status"]).stdout.contains("lockspace LS"), "the first daemon's socket was taken over")

        let open = dir.appendingPathComponent("world-writable").path
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: true)
        chmod(open, 0o777)
        let refused = Programs.run(
            Programs.diskleased, ["--config", "/dev/null", "--run-dir", open, "--watchdog-device", "none"])
        #expect(refused.status == 77 && refused.stderr.contains("writable by others"), "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: open + "/" + Wire.socketName))
    }

    /// Config values out of range and a config path that is a directory: exit 78 naming the
    /// key, never a trap.
    @Test func badConfigValuesAreRefusedByName() throws {
        let dir = Scratch.directory("badconf")
        for (line, needle) in [
            ("allow-uid = 4294967296", "allow-uid"), ("metrics-port = 70000", "metrics-port"),
            ("io-timeout = 0", "io-timeout"), ("max-connections = 0", "max-connections"),
            ("allow-path = relative/dir", "allow-path"),
        ] {
            let conf = dir.appendingPathComponent("d.conf").path
            try (line + "\n").write(toFile: conf, atomically: true, encoding: .utf8)
            let r = Programs.run(Programs.diskleased, ["--config", conf])
            #expect(r.status == 78 && r.stderr.contains(needle), "\(line): \(r)")
        }
        let r = Programs.run(Programs.diskleased, ["--config", dir.path])
        #expect(r.status == 78 && r.stderr.contains("cannot read the config file"), "\(r)")
        let flag = Programs.run(Programs.diskleased, ["--config", "/dev/null", "--metrics-port", "70000"])
        #expect(flag.status == 78 && flag.stderr.contains("metrics-port"), "\(flag)")
    }

    /// A lease file deleted and re-created under the daemon: its I/O fails (ESTALE) instead of
    /// going to a file nobody else uses, and the lockspace fences its holder.
    @Test func aReplacedLeaseFileFencesTheLockspace() throws {
        let path = leaseFile()
        let dir = Scratch.directory("replaced")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let holder = a.holder("LS:vm1:\(path):1048576")
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:vm1") })
        let copy = Scratch.bytes(of: path)
        try FileManager.default.removeItem(atPath: path)
        #expect(FileManager.default.createFile(atPath: path, contents: Data(copy)))
        holder.waitUntilExit()  // fenced: renewals fail for 8·io_timeout, then SIGTERM
        #expect(a.log.contains("Stale file handle") || a.log.contains("errno 116"), "\(a.log)")
        #expect(!a.client(["status"]).stdout.contains("lease LS:vm1"))
    }

    /// Eight add-lockspace calls at once, for host ids 1 and 2: one lockspace, the others told
    /// `exists` or joined to it; none hidden, none renewing after rem-lockspace.
    @Test func concurrentAddLockspaceMakesOneLockspace() throws {
        let path = leaseFile()
        let lt = "LT:0:\(path):2097152"
        #expect(
            Programs.run(Programs.disklease, ["init", "lockspace", lt, "--io-timeout", "1", "--force"]).status == 0)
        let a = try DaemonProcess(hostID: 1, lease: path, dir: Scratch.directory("concurrent-add"))
        try a.waitJoined()
        let calls = (0..<8).map { i -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Programs.disklease)
            p.arguments = [
                "client", "add-lockspace", "--run-dir", a.runDir, "-s", "LT:\(1 + i % 2):\(path):2097152",
                "--wait",
            ]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try? p.run()
            return p
        }
        calls.forEach { $0.waitUntilExit() }
        #expect(calls.filter { $0.terminationStatus == 0 }.count >= 1)
        let status = a.client(["status"]).stdout
        #expect(status.components(separatedBy: "lockspace LT").count == 2, "\(status)")
        #expect(a.client(["rem-lockspace", "LT"]).status == 0)
        let after = a.client(["status"]).stdout
        #expect(!after.contains("lockspace LT"), "\(after)")
    }

    static func write(_ bytes: [UInt8], to path: String, at offset: UInt64) -> Bool {
        guard let h = FileHandle(forUpdatingAtPath: path) else { return false }
        defer { try? h.close() }
        try? h.seek(toOffset: offset)
        try? h.write(contentsOf: Data(bytes))
        try? h.synchronize()
        return true
    }
}

/// One connection kept open: send a line, read one reply line.
final class ClientSession {
    let fd: Int32

    init(runDir: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard var addr = unixSocketAddress(runDir + "/" + Wire.socketName) else { throw CocoaError(.fileNoSuchFile) }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { throw CocoaError(.fileReadNoPermission) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ line: String) -> String {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !out.contains(0x0A) {
            let n = recv(fd, &buf, 1, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    func close() { Glibc.close(fd) }
}
