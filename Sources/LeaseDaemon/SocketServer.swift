import CDirectIO
import DiskLeaseClient
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The local API: a Unix stream socket (mode 0660, group `socket-group`), one thread per
/// admitted connection, one JSON request per line.
///
/// Guarantees: peer credentials are checked in the accept loop, before any thread exists:
/// only root and the configured uids/gids are admitted, and at most `max-connections` at once;
/// everyone else gets the reason from the one refuser thread. A line over
/// `Wire.maxMessageBytes` closes the connection with `too_large`; a line that does not decode
/// (an empty line included) gets `bad_request` and the connection stays usable; nothing a
/// client sends can stop the daemon, and running out of descriptors only slows accepting
/// down. When a connection closes, its process's leases are released.
public final class SocketServer: @unchecked Sendable {
    let daemon: Daemon
    let path: String
    let log: Logger
    private var listenFD: Int32 = -1
    private let lock = NSLock()
    private var nextClient: UInt64 = 1
    private var active = 0
    private var activeByUID: [UInt32: Int] = [:]
    private var refused: [String: Int] = [:]
    private let refuser = Refuser()

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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0, listen(s, 64) == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw WireError(.io, "\(path): cannot listen: \(e)")
        }
        // Who may connect at all: root and the socket group; who may use it is then decided
        // per connection from SO_PEERCRED.
        chmod(path, 0o660)
        if let gid = daemon.config.socketGID, chown(path, UInt32.max, gid) != 0 {
            let e = String(cString: strerror(errno))
            close(s)
            unlink(path)
            throw WireError(.io, "\(path): cannot give the socket to group \(gid): \(e)")
        }
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
        var exhausted = false
        while true {
            let c = accept(listenFD, nil, nil)
            if c < 0 {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors or memory: the pending connection stays queued; try
                    // again shortly instead of spinning or giving up the socket.
                    if !exhausted { log.error("accept: \(String(cString: strerror(errno))); retrying every 100 ms") }
                    exhausted = true
                    usleep(100_000)
                    continue
                default:
                    return  // the listening socket was closed (stop)
                }
            }
            exhausted = false
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            admit(c)
        }
    }

    /// Checks the peer before any thread exists for it.
    private func admit(_ fd: Int32) {
        guard let p = peer(fd) else { close(fd); return }
        guard permitted(uid: p.uid, gid: p.gid) else {
            noteRefusal("uid not permitted", p)
            return refuser.refuse(fd, WireError(.permission, "uid \(p.uid) is not allowed to use diskleased"))
        }
        lock.lock()
        guard active < daemon.config.maxConnections else {
            lock.unlock()
            noteRefusal("too many connections", p)
            let max = daemon.config.maxConnections
            return refuser.refuse(fd, WireError(.busy, "too many connections (max-connections = \(max))"))
        }
        guard p.uid == 0 || activeByUID[p.uid, default: 0] < daemon.config.maxConnectionsPerUID else {
            lock.unlock()
            noteRefusal("too many connections from one uid", p)
            let max = daemon.config.maxConnectionsPerUID
            return refuser.refuse(
                fd, WireError(.busy, "too many connections from uid \(p.uid) (max-connections-per-uid = \(max))"))
        }
        active += 1
        activeByUID[p.uid, default: 0] += 1
        let id = nextClient
        nextClient += 1
        lock.unlock()
        let t = Thread { [self] in
            serve(fd, id: id, peer: p)
            lock.withLock {
                active -= 1
                activeByUID[p.uid, default: 1] -= 1
                if activeByUID[p.uid] == 0 { activeByUID[p.uid] = nil }
            }
        }
        t.stackSize = 512 << 10
        t.start()
    }

    /// Logs the first refusal for each reason and every 100th after it: a flood must not
    /// flood the log too.
    private func noteRefusal(_ why: String, _ p: (pid: Int32, uid: UInt32, gid: UInt32)) {
        let n = lock.withLock {
            refused[why, default: 0] += 1
            return refused[why]!
        }
        guard n == 1 || n % 100 == 0 else { return }
        log.warning(
            "refused connection: \(why)",
            metadata: ["pid": "\(p.pid)", "uid": "\(p.uid)", "gid": "\(p.gid)", "refused_total": "\(n)"])
    }

    /// Connections being served now.
    public var activeConnections: Int { lock.withLock { active } }

    func peer(_ fd: Int32) -> (pid: Int32, uid: UInt32, gid: UInt32)? {
        var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
        guard cdio_peer_cred(fd, &pid, &uid, &gid) == 0 else { return nil }
        return (pid, uid, gid)
    }

    func permitted(uid: UInt32, gid: UInt32) -> Bool {
        uid == 0 || daemon.config.allowUIDs.contains(uid) || daemon.config.allowGIDs.contains(gid)
    }

    private func serve(_ fd: Int32, id: UInt64, peer p: (pid: Int32, uid: UInt32, gid: UInt32)) {
        defer { close(fd) }
        let me = ClientIdentity(
            id: id, pid: p.pid, uid: p.uid, gid: p.gid,
            startTime: ProcessIdentity.startTime(p.pid) ?? 0)
        daemon.connectionOpened(me)
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
                log.warning(
                    "oversized request: closing connection", metadata: ["pid": "\(p.pid)", "bytes": "\(buffer.count)"])
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
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
            return .failure(WireError(.badRequest, "empty request line"))
        }
        let unknown = Request.unknownKeys(in: Data(line))
        guard unknown.isEmpty else {
            return .failure(WireError(.badRequest, "unknown key \(unknown.map { "'\($0)'" }.joined(separator: ", "))"))
        }
        let q: Request
        do {
            q = try Wire.decoder().decode(Request.self, from: Data(line))
        } catch {
            log.warning(
                "malformed request",
                metadata: ["pid": "\(c.pid)", "bytes": "\(line.count)", "error": "\(Self.short(error))"])
            return .failure(WireError(.badRequest, "malformed request: \(Self.short(error))"))
        }
        return daemon.handle(q, from: c)
    }

    static func short(_ e: any Error) -> String {
        switch e {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "missing \(k.stringValue)"
        case DecodingError.typeMismatch(_, let c):
            return "wrong type at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.valueNotFound(_, let c):
            return "null at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(e)"
        }
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard s >= 0, rc == 0, listen(s, 16) == 0 else {
            throw WireError(.io, "metrics port \(port): \(String(cString: strerror(errno)))")
        }
        log.info("metrics", metadata: ["url": "http://127.0.0.1:\(port)/metrics"])
        Thread.detachNewThread { [self] in
            while true {
                let c = accept(s, nil, nil)
                if c < 0 { if errno == EINTR { continue } else { return } }
                var buf = [UInt8](repeating: 0, count: 4096)
                _ = recv(c, &buf, buf.count, 0)
                let body = Array(render().utf8)
                let head =
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: "
                    + "\(body.count)\r\nConnection: close\r\n\r\n"
                let out = Array(head.utf8) + body
                _ = out.withUnsafeBytes { Glibc.send(c, $0.baseAddress!, out.count, Int32(MSG_NOSIGNAL)) }
                close(c)
            }
        }
    }
}
