import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A connection to a local `diskleased`. The connection is this process's registration:
/// closing it (or exiting) releases every non-persistent lease acquired through it.
///
/// Calls are synchronous and one at a time per connection (a waiting acquire blocks the
/// connection until it returns).
public final class DiskLeaseClient {
    private let fd: Int32
    private var buffer = Data()
    private var nextID: UInt64 = 1
    public let socketPath: String

    /// Connects to `<runDir>/diskleased.sock`.
    public convenience init(runDir: String) throws(WireError) {
        try self.init(socketPath: (runDir as NSString).appendingPathComponent(Wire.socketName))
    }

    public init(socketPath: String) throws(WireError) {
        self.socketPath = socketPath
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard s >= 0 else { throw WireError(.io, "socket: \(String(cString: strerror(errno)))") }
        guard var addr = unixSocketAddress(socketPath) else {
            close(s)
            throw WireError(.badRequest, "\(socketPath): socket path too long")
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(s)
            throw WireError(.io, "\(socketPath): cannot connect to diskleased: \(e)")
        }
        fd = s
    }

    deinit { close(fd) }

    /// Sends one request and waits for its response.
    public func call(_ request: Request) throws(WireError) -> Response {
        var r = request
        r.id = nextID
        nextID += 1
        let line = Wire.line(r)
        do {
            try send(line)
        } catch {
            // The daemon may have answered and closed before reading (a refused uid): its
            // reply explains more than the broken pipe does.
            if let early = try? readLine(), let resp = try? Wire.decoder().decode(Response.self, from: early) {
                return resp
            }
            throw error
        }
        let reply = try readLine()
        do {
            return try Wire.decoder().decode(Response.self, from: reply)
        } catch {
            throw WireError(.internalError, "undecodable response from diskleased: \(error)")
        }
    }

    /// `call`, turning a failure response into a thrown error.
    @discardableResult
    public func checked(_ request: Request) throws(WireError) -> Response {
        let r = try call(request)
        if !r.ok { throw r.error ?? WireError(.internalError, "failure without an error") }
        return r
    }

    private func send(_ data: Data) throws(WireError) {
        var sent = 0
        while sent < data.count {
            let n = data.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, data.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw WireError(.io, "\(socketPath): send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    private func readLine() throws(WireError) -> Data {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                buffer = Data(buffer[(nl + 1)...])
                return Data(line)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw WireError(.io, "\(socketPath): diskleased closed the connection") }
            buffer.append(contentsOf: chunk[0..<n])
            if buffer.count > Wire.maxResponseBytes {
                throw WireError(.tooLarge, "response over \(Wire.maxResponseBytes) bytes")
            }
        }
    }
}

/// The address of a Unix socket at `path`, or nil if the path does not fit sun_path.
public func unixSocketAddress(_ path: String) -> sockaddr_un? {
    var addr = sockaddr_un()
    addr.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return nil }
    withUnsafeMutableBytes(of: &addr.sun_path) { raw in
        for (i, b) in bytes.enumerated() { raw[i] = b }
    }
    return addr
}

/// What names a resource lease: its lockspace and name, and where its area is.
public struct ResourceRef: Sendable, Hashable {
    public var lockspace: String
    public var name: String
    public var path: String
    public var offset: UInt64
    public init(lockspace: String, name: String, path: String, offset: UInt64) {
        self.lockspace = lockspace
        self.name = name
        self.path = path
        self.offset = offset
    }
}

extension DiskLeaseClient {
    public func request(_ op: RequestOp, _ r: ResourceRef) -> Request {
        var q = Request(op: op)
        q.lockspace = r.lockspace
        q.resource = r.name
        q.path = r.path
        q.offset = r.offset
        return q
    }

    /// Acquires `resource` and returns its fencing token (lver).
    public func acquire(
        _ resource: ResourceRef, shared: Bool = false, wait: Bool = true, timeoutMs: Int? = nil,
        lver: UInt64? = nil, persistent: Bool = false
    ) throws(WireError) -> UInt64 {
        var q = request(.acquire, resource)
        q.shared = shared
        q.wait = wait
        q.timeoutMs = timeoutMs
        q.lver = lver
        q.persistent = persistent
        return try checked(q).lver ?? 0
    }

    public func release(_ resource: ResourceRef) throws(WireError) {
        try checked(request(.release, resource))
    }

    /// Runs `body` holding `resource`, with the fencing token; the lease is released on every
    /// exit path (return or throw), and by the daemon if this process dies.
    public func withLease<T>(
        _ resource: ResourceRef, shared: Bool = false, wait: Bool = true, timeoutMs: Int? = nil,
        _ body: (UInt64) throws -> T
    ) throws -> T {
        let token = try acquire(resource, shared: shared, wait: wait, timeoutMs: timeoutMs)
        defer { try? release(resource) }
        return try body(token)
    }
}
