import CDirectIO
import DiskLeaseClient
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The local API: a Unix stream socket, one thread per connection, one JSON request per line.
///
/// Guarantees: only root and the configured uids/gids get past the peer-credential check;
/// a line over `Wire.maxMessageBytes` closes the connection with `too_large`; a line that does
/// not decode gets `bad_request` and the connection stays usable; nothing a client sends can
/// stop the daemon. When a connection closes, its process's leases are released.
public final class SocketServer: @unchecked Sendable {
    let daemon: Daemon
    let path: String
    let log: Logger
    private var listenFD: Int32 = -1
    private let lock = NSLock()
    private var nextClient: UInt64 = 1

    public init(daemon: Daemon, log: Logger) {
        self.daemon = daemon
        self.path = (daemon.config.runDir as NSString).appendingPathComponent(Wire.socketName)
        self.log = log
    }

    public func start() throws(WireError) {
        signal(SIGPIPE, SIG_IGN)
        unlink(path)
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw WireError(.io, "socket: \(String(cString: strerror(errno)))") }
        guard var addr = unixSocketAddress(path) else {
            close(s)
            throw WireError(.badRequest, "\(path): socket path too long")
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0, listen(s, 64) == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw WireError(.io, "\(path): cannot listen: \(e)")
        }
        // Permission is decided per connection from SO_PEERCRED; the mode only lets them connect.
        chmod(path, 0o666)
        listenFD = s
        let t = Thread { [self] in acceptLoop() }
        t.name = "accept"
        t.start()
        log.info("listening", metadata: ["socket": "\(path)"])
    }

    public func stop() {
        if listenFD >= 0 { shutdown(listenFD, Int32(SHUT_RDWR)); close(listenFD); listenFD = -1 }
        unlink(path)
    }

    private func acceptLoop() {
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            lock.lock()
            let id = nextClient
            nextClient += 1
            lock.unlock()
            Thread.detachNewThread { [self] in serve(c, id: id) }
        }
    }

    func peer(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard cdio_peer_cred(fd, &pid, &uid, &gid) == 0 else { return nil }
        return (pid, uid, gid)
    }

    func permitted(uid: UInt32, gid: UInt32) -> Bool {
        uid == 0 || daemon.config.allowUIDs.contains(uid) || daemon.config.allowGIDs.contains(gid)
    }

    private func serve(_ fd: Int32, id: UInt64) {
        defer { close(fd) }
        guard let p = peer(fd) else { return }
        let me = ClientIdentity(id: id, pid: p.pid, uid: p.uid, gid: p.gid, startTime: ProcessIdentity.startTime(p.pid) ?? 0)
        guard permitted(uid: p.uid, gid: p.gid) else {
            log.warning("refused connection: uid not permitted", metadata: ["pid": "\(p.pid)", "uid": "\(p.uid)", "gid": "\(p.gid)"])
            refuse(fd, WireError(.permission, "uid \(p.uid) is not allowed to use diskleased"))
            return
        }
        defer { daemon.clientGone(me) }
        var buffer = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            while let nl = buffer.firstIndex(of: 0x0A), nl < Wire.maxMessageBytes {
                let line = Array(buffer[..<nl])
                buffer.removeSubrange(...nl)
                guard let response = answer(line, from: me) else { return }
                if !send(fd, response) { return }
            }
            if buffer.count >= Wire.maxMessageBytes {
                log.warning("oversized request: closing connection", metadata: ["pid": "\(p.pid)", "bytes": "\(buffer.count)"])
                send(fd, .failure(WireError(.tooLarge, "request over \(Wire.maxMessageBytes) bytes")))
                return
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// The response to one line; nil closes the connection.
    private func answer(_ line: [UInt8], from c: ClientIdentity) -> Response? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) { return nil }
        let q: Request
        do {
            q = try Wire.decoder().decode(Request.self, from: Data(line))
        } catch {
            log.warning("malformed request", metadata: ["pid": "\(c.pid)", "bytes": "\(line.count)", "error": "\(Self.short(error))"])
            return .failure(WireError(.badRequest, "malformed request: \(Self.short(error))"))
        }
        return daemon.handle(q, from: c)
    }

    static func short(_ e: any Error) -> String {
        switch e {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "missing \(k.stringValue)"
        case DecodingError.typeMismatch(_, let c): return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.valueNotFound(_, let c): return "null at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(e)"
        }
    }

    /// Answers a refused peer's first request with `error`, then closes. The request is read
    /// first (for at most a second, and none of it is decoded) so that the reply never races
    /// the client's send: closing with its request unread would break the client's pipe, and
    /// it would see "Broken pipe" instead of why it was refused.
    private func refuse(_ fd: Int32, _ error: WireError) {
        var limit = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 4096)
        var received = 0
        while received < Wire.maxMessageBytes {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || chunk[0..<n].contains(0x0A) { break }
            received += n
        }
        send(fd, .failure(error))
        shutdown(fd, Int32(SHUT_WR))
    }

    @discardableResult
    private func send(_ fd: Int32, _ r: Response) -> Bool {
        let d = Wire.line(r)
        var sent = 0
        while sent < d.count {
            let n = d.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, d.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }
}

/// Prometheus text on 127.0.0.1:port, for any request (GET /metrics is what scrapers send).
public final class MetricsServer: @unchecked Sendable {
    let port: Int
    let render: @Sendable () -> String
    let log: Logger

    public init(port: Int, log: Logger, render: @escaping @Sendable () -> String) {
        self.port = port
        self.render = render
        self.log = log
    }

    public func start() throws(WireError) {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard s >= 0, rc == 0, listen(s, 16) == 0 else { throw WireError(.io, "metrics port \(port): \(String(cString: strerror(errno)))") }
        log.info("metrics", metadata: ["url": "http://127.0.0.1:\(port)/metrics"])
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(s, nil, nil)
                if c < 0 { if errno == EINTR { continue } else { return } }
                var buf = [UInt8](repeating: 0, count: 4096)
                _ = recv(c, &buf, buf.count, 0)
                let body = Array(render().utf8)
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                let out = Array(head.utf8) + body
                _ = out.withUnsafeBytes { Glibc.send(c, $0.baseAddress!, out.count, Int32(MSG_NOSIGNAL)) }
                close(c)
            }
        }
    }
}
