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
            if let reply = RawSocket(a.runDir).exchange(payload) { answered += 1; #expect(reply.contains("\"ok\":false"), "\(reply)") }
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
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir, extra: ["--allow-uid", "65533"])
        try a.waitJoined()
        chmod(a.runDir, 0o755)
        // The client binary too: the build folder may be out of their reach as well.
        let client = dir.appendingPathComponent("disklease").path
        try FileManager.default.copyItem(atPath: Programs.disklease, toPath: client)
        chmod(client, 0o755)
        let asNobody = Programs.run("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups",
                                                         client, "client", "status", "--run-dir", a.runDir])
        #expect(asNobody.status == 64, "\(asNobody)")
        #expect(asNobody.stderr.contains("uid 65534 is not allowed"), "\(asNobody)")
        let allowed = Programs.run("/usr/bin/setpriv", ["--reuid=65533", "--regid=65533", "--clear-groups",
                                                        client, "client", "status", "--run-dir", a.runDir])
        #expect(allowed.status == 0 && allowed.stdout.contains("lockspace LS"), "\(allowed)")
        #expect(a.log.contains("refused connection"))
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
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
