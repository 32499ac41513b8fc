import DiskLeaseClient
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct SocketSafetyTests {
    /// Random bytes, truncated requests, wrong types, a wrong version and an oversized line:
    /// each gets an error (or a closed connection), the daemon stays up and no lease changes.
    @Test func garbageOnTheSocketChangesNothing() throws {
        let path = leaseFile()
        let dir = Scratch.directory("fuzz")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir)
        try a.waitJoined()
        let vm1 = "LS:vm1:\(path):1048576"
        let holder = a.holder(vm1)
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        #expect(eventually(10) { a.client(["status"]).stdout.contains("lease LS:vm1 lver 1") })
        let before = Scratch.bytes(of: path)

        var valid = Request(op: .acquire)
        valid.lockspace = "LS"; valid.resource = "vm2"; valid.path = path; valid.offset = 2097152
        let validLine = Array(Wire.line(valid))
        var rng = SystemRandomNumberGenerator()
        var answered = 0
        for trial in 0..<300 {
            var payload: [UInt8]
            switch trial % 5 {
            case 0: payload = (0..<Int(rng.next() % 200)).map { _ in UInt8.random(in: 0...255, using: &rng) } + [0x0A]
            case 1: payload = Array(validLine.prefix(Int(rng.next() % UInt64(validLine.count - 1)))) + [0x0A]
            case 2: payload = Array("{\"v\":1,\"op\":\"acquire\",\"lockspace\":7,\"offset\":\"x\"}\n".utf8)
            case 3: payload = Array("{\"v\":99,\"op\":\"status\"}\n".utf8)
            default: payload = Array("{\"v\":1,\"op\":\"release\",\"lockspace\":\"LS\",\"resource\":\"vm1\"}\n".utf8)
            }
            if let reply = RawSocket(a.runDir).exchange(payload) {
                answered += 1; #expect(reply.contains("\"ok\":false"), "\(reply)")
            }
        }
        // One line larger than the limit: too_large, then the connection is closed.
        let huge = RawSocket(a.runDir).exchange([UInt8](repeating: 0x41, count: Wire.maxMessageBytes + 10) + [0x0A])
        #expect(huge?.contains("too_large") == true, "\(huge ?? "no reply")")
        #expect(answered >= 250)

        // Still up, and the lease is as it was; nothing was written (vm2 untouched, vm1 held).
        #expect(a.client(["status"]).stdout.contains("lease LS:vm1 lver 1 pid \(holder.processIdentifier) EX"))
        let after = Scratch.bytes(of: path)
        #expect(after[(1 << 20)..<(3 << 20)] == before[(1 << 20)..<(3 << 20)], "a resource area changed")
        #expect(a.log.contains("malformed request"))
        #expect(a.process.isRunning)
    }

    /// Peer credentials decide: a uid that is not allowed is refused; an allowed one passes.
    @Test func onlyRootAndAllowedUIDsMayConnect() throws {
        let path = leaseFile()
        // Under /tmp, not the checkout: the other uids must be able to traverse every parent
        // of the socket, and a CI checkout's parents need not let them.
        let dir = URL(fileURLWithPath: "/tmp/disklease-perm-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
        defer { try? FileManager.default.removeItem(at: dir) }
        // The socket is 0660 root:65534: only root and group 65534 can connect at all; of those,
        // SO_PEERCRED admits root and uid 65533.
        let a = try DaemonProcess(
            hostID: 1, lease: path, dir: dir,
            extra: ["--allow-uid", "65533", "--socket-group", "65534"])
        try a.waitJoined()
        chmod(a.runDir, 0o755)
        var st = stat()
        #expect(stat(a.runDir + "/" + Wire.socketName, &st) == 0 && st.st_mode & 0o777 == 0o660 && st.st_gid == 65534)
        let client = try Self.reachableClient(dir)
        func status(uid: Int, gid: Int) -> Run {
            Programs.run(
                "/usr/bin/setpriv",
                [
                    "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups",
                    client, "client", "status", "--run-dir", a.runDir,
                ])
        }
        let asNobody = status(uid: 65534, gid: 65534)
        #expect(asNobody.status == 64, "\(asNobody)")
        #expect(asNobody.stderr.contains("uid 65534 is not allowed"), "\(asNobody)")
        let allowed = status(uid: 65533, gid: 65534)
        #expect(allowed.status == 0 && allowed.stdout.contains("lockspace LS"), "\(allowed)")
        // Allowed by uid, but outside the socket's group: the mode keeps it out.
        let outside = status(uid: 65533, gid: 65533)
        #expect(outside.status != 0 && !outside.stdout.contains("lockspace LS"), "\(outside)")
        #expect(a.log.contains("refused connection"))
    }

    /// A non-root client names a file that is not a lease area (inside its allow-path): the
    /// answer says the magic is wrong without echoing the bytes found there (the path could be
    /// any file root can read); root, and the daemon's log, get the detail.
    @Test func errorsToNonRootClientsDoNotEchoTheDevicesBytes() throws {
        let path = leaseFile()
        let dir = URL(fileURLWithPath: "/tmp/disklease-echo-\(UUID().uuidString.prefix(8))")
        let allowed = dir.appendingPathComponent("allowed")
        try FileManager.default.createDirectory(at: allowed, withIntermediateDirectories: true)
        chmod(dir.path, 0o755)
        defer { try? FileManager.default.removeItem(at: dir) }
        let secret = allowed.appendingPathComponent("secret.img").path
        // A lockspace in the first MiB, then a MiB of bytes that are no lease area.
        #expect(FileManager.default.createFile(atPath: secret, contents: Data(repeating: 0x5A, count: 2 << 20)))
        #expect(Programs.run(Programs.disklease, ["init", "lockspace", "X:0:\(secret):0", "--force"]).status == 0)
        let junk = Data(repeating: 0x5A, count: 1 << 20)
        let a = try DaemonProcess(
            hostID: 1, lease: path, dir: dir,
            extra: ["--allow-uid", "65533", "--socket-group", "65534", "--allow-path", allowed.path])
        try a.waitJoined()
        chmod(a.runDir, 0o755)
        let client = try Self.reachableClient(dir)
        let join = ["client", "add-lockspace", "--run-dir", a.runDir, "-s", "X:1:\(secret):0", "--wait"]
        let joined = Programs.run(
            "/usr/bin/setpriv", ["--reuid=65533", "--regid=65534", "--clear-groups", client] + join)
        #expect(joined.status == 0, "\(joined)")
        let add = ["client", "acquire", "--run-dir", a.runDir, "-r", "X:vm9:\(secret):1048576"]
        let asUser = Programs.run(
            "/usr/bin/setpriv", ["--reuid=65533", "--regid=65534", "--clear-groups", client] + add)
        #expect(asUser.status != 0 && asUser.stderr.contains("bad magic"), "\(asUser)")
        #expect(!asUser.stderr.lowercased().contains("5a5a5a5a"), "the bytes of the file were echoed: \(asUser)")
        let asRoot = Programs.run(client, add)
        #expect(asRoot.status != 0 && asRoot.stderr.contains("0x5a5a5a5a"), "\(asRoot)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: secret))[(1 << 20)...] == junk, "the junk area was written")
        a.kill(SIGKILL)
    }

    /// 2000 connections from a uid that is refused, held open together: the daemon answers
    /// each with the reason and starts no thread for any of them; past max-connections, root's
    /// connections are refused with `busy` the same way.
    @Test func aFloodOfConnectionsStartsNoThreads() throws {
        // 2000 descriptors for the flood (and the daemon): the soft limit goes up to the hard
        // one, which the processes started below inherit (the unit sets LimitNOFILE=65536).
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        #expect(limit.rlim_max >= 2100, "the hard descriptor limit \(limit.rlim_max) is below the flood's 2000")
        let path = leaseFile()
        let dir = URL(fileURLWithPath: "/tmp/disklease-flood-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        chmod(dir.path, 0o777)  // the flood, as nobody, writes its ready file here
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = try DaemonProcess(
            hostID: 1, lease: path, dir: dir,
            extra: [
                "--socket-group", "65534", "--max-connections", "20", "--allow-uid", "65533",
                "--max-connections-per-uid", "5",
            ])
        try a.waitJoined()
        chmod(a.runDir, 0o755)
        let client = try Self.reachableClient(dir)
        let before = Self.threads(a.process.processIdentifier)
        let ready = dir.appendingPathComponent("ready").path
        let flood = Process()
        flood.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        flood.arguments = [
            "--reuid=65534", "--regid=65534", "--clear-groups", client, "client", "flood",
            "--connections", "2000", "--hold", "3", "--ready-file", ready, "--run-dir", a.runDir,
        ]
        let out = Pipe()
        flood.standardOutput = out
        try flood.run()
        #expect(eventually(60) { FileManager.default.fileExists(atPath: ready) })
        let during = Self.threads(a.process.processIdentifier)
        flood.waitUntilExit()
        let summary = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(summary.contains("permission=2000"), "\(summary)")
        #expect(during <= before + 2, "threads \(before) before, \(during) during the flood")

        // Root is admitted up to max-connections; the 21st and later are told why.
        let rootFlood = Programs.run(
            Programs.disklease,
            [
                "client", "flood", "--connections", "30", "--hold", "0",
                "--run-dir", a.runDir,
            ])
        #expect(rootFlood.stdout.contains("busy=10") && rootFlood.stdout.contains("ok=20"), "\(rootFlood)")
        // An allowed non-root uid gets at most max-connections-per-uid of them.
        let perUID = Programs.run(
            "/usr/bin/setpriv",
            [
                "--reuid=65533", "--regid=65534", "--clear-groups", client, "client", "flood", "--connections", "8",
                "--hold", "0", "--run-dir", a.runDir,
            ])
        #expect(perUID.stdout.contains("busy=3") && perUID.stdout.contains("ok=5"), "\(perUID)")
        #expect(a.client(["status"]).status == 0)
        #expect(a.log.contains("refused connection: too many connections"))
    }

    /// A copy of the client where other uids can run it (the build folder may be out of reach).
    static func reachableClient(_ dir: URL) throws -> String {
        let client = dir.appendingPathComponent("disklease").path
        try FileManager.default.copyItem(atPath: Programs.disklease, toPath: client)
        chmod(client, 0o755)
        return client
    }

    /// The process's thread count, from /proc.
    static func threads(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? ""
        return Int(line.split(separator: "\t").last.map(String.init) ?? "") ?? -1
    }
}

/// A bare connection to the daemon's socket: send bytes, read one reply line (or nothing if
/// the daemon closes the connection).
struct RawSocket {
    let path: String
    init(_ runDir: String) { path = runDir + "/" + Wire.socketName }

    func exchange(_ bytes: [UInt8]) -> String? {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        guard var addr = unixSocketAddress(path) else { return nil }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { return nil }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = bytes.withUnsafeBytes { send(s, $0.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL)) }
        shutdown(s, Int32(SHUT_WR))
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !out.contains(0x0A) {
            let n = recv(s, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out.isEmpty ? nil : String(decoding: out, as: UTF8.self)
    }
}
