import ArgumentParser
import DiskLeaseClient
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `disklease client flood`: opens many connections at once and holds them, to measure what a
/// flood costs the daemon (threads, descriptors) and what each connection is told. Each
/// connection sends one `status` request; the replies are counted by error code.
struct ClientFlood: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flood",
        abstract: "Open N connections, send status on each, hold them, count the replies by code.")
    @OptionGroup var options: ClientOptions
    @Option(help: "Connections to open.") var connections = 1000
    @Option(help: "Seconds to hold them open after the last reply.") var hold = 2
    @Option(help: "Write a line to this file when all connections are open and answered.") var readyFile: String?

    func run() throws {
        let path = (options.runDir as NSString).appendingPathComponent(Wire.socketName)
        let line = Wire.line(Request(op: .status))
        var fds: [Int32] = []
        var counts: [String: Int] = [:]
        defer { fds.forEach { close($0) } }
        // Many connections need many descriptors: take the hard limit (a soft limit of 1024
        // is common), as a client that means harm would.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        for _ in 0..<connections {
            guard let fd = Self.connect(path) else { counts["connect failed", default: 0] += 1; continue }
            fds.append(fd)
            _ = line.withUnsafeBytes { send(fd, $0.baseAddress!, line.count, Int32(MSG_NOSIGNAL)) }
        }
        for fd in fds { counts[Self.replyCode(fd), default: 0] += 1 }
        if let readyFile { FileManager.default.createFile(atPath: readyFile, contents: Data("ready\n".utf8)) }
        sleep(UInt32(max(0, hold)))
        let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FileHandleStream.stdout.write("connections \(connections): \(summary)\n")
    }

    static func connect(_ path: String) -> Int32? {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0, var addr = unixSocketAddress(path) else { return nil }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { close(s); return nil }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        return s
    }

    /// "ok", the error code of the reply, or what went wrong reading it.
    static func replyCode(_ fd: Int32) -> String {
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while !out.contains(0x0A) {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { return n == 0 ? "closed" : "no reply" }
            out += buf[0..<n]
        }
        guard let r = try? Wire.decoder().decode(Response.self, from: Data(out.prefix { $0 != 0x0A })) else {
            return "garbled"
        }
        return r.ok ? "ok" : (r.error?.code.rawValue ?? "error")
    }
}
