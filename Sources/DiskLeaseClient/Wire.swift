import Foundation

/// The daemon's local wire protocol, version 1 (docs/PROTOCOL.md is its reference).
///
/// A client connects to `<run_dir>/diskleased.sock` (a Unix stream socket) and sends requests,
/// one JSON object per line (UTF-8, at most `Wire.maxMessageBytes` including the newline;
/// responses may be up to `Wire.maxResponseBytes`, as a status of thousands of leases is). Each
/// request gets exactly one response line, in order. Keys are snake_case. The connection is
/// the registration: leases acquired on it belong to the connecting process (its pid comes from
/// the socket's peer credentials) and are released when it closes, unless acquired persistent.
public enum Wire {
    public static let version = 1
    public static let maxMessageBytes = 65_536
    public static let maxResponseBytes = 16 << 20
    public static let socketName = "diskleased.sock"

    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }

    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// One line: the JSON of `value` and a newline.
    public static func line<T: Encodable>(_ value: T) -> Data {
        var d = (try? encoder().encode(value)) ?? Data("{}".utf8)
        d.append(0x0A)
        return d
    }
}

/// Every operation of protocol version 1.
public enum RequestOp: String, Codable, Sendable, CaseIterable {
    /// Names the connecting process (optional; the pid comes from the socket).
    case register
    /// Joins a lockspace: `lockspace`, `host_id`, `path`, `offset`; `wait` blocks until joined.
    case addLockspace = "add_lockspace"
    /// Leaves a lockspace (refused while leases are held in it).
    case remLockspace = "rem_lockspace"
    /// `lockspace`, `resource`, `path`, `offset`; `shared`, `wait` (default true), `timeout_ms`,
    /// `lver` (required version), `persistent`. Returns the fencing token `lver`.
    case acquire
    /// `lockspace`, `resource`; root may add `pid` to release another process's lease (0: an orphan).
    case release
    /// The leases held by this connection's process (or by `pid`, for root).
    case inquire
    /// `lockspace`, `resource`, `shared`: converts a held lease between SH and EX.
    case convert
    /// `lockspace`, `resource`, `path`, `offset`: asks the current owner's host to release.
    case request
    /// Daemon status: lockspaces and every lease held through it.
    case status
    /// `lockspace`: every host seen in it and its state.
    case hostStatus = "host_status"
    /// The daemon's version and what it can do (`version`, `capabilities`).
    case version
}

/// This build's version, shown by `--version` of both programs and the `version` op.
public enum DiskLeaseVersion {
    public static let string = "0.9.0"
    /// What the daemon offers, for clients that must know before they ask: the wire protocol
    /// version, live-only ballot reads with the membership epoch, persistent leases, orphans,
    /// convert, request records, required lvers, and the sanlock 3.8 on-disk format.
    public static let capabilities = [
        "protocol-\(Wire.version)", "live-reads", "membership-epoch", "persistent", "orphans", "convert",
        "request", "required-lver", "sanlock-3.8-format",
    ]
}

public struct Request: Codable, Sendable, Equatable {
    public var v: Int = Wire.version
    public var id: UInt64? = nil
    public var op: RequestOp
    public var lockspace: String? = nil
    public var hostId: Int? = nil
    public var path: String? = nil
    public var offset: UInt64? = nil
    public var resource: String? = nil
    public var shared: Bool? = nil
    public var wait: Bool? = nil
    public var timeoutMs: Int? = nil
    public var lver: UInt64? = nil
    public var persistent: Bool? = nil
    public var name: String? = nil
    public var pid: Int32? = nil

    public init(op: RequestOp) { self.op = op }

    /// Every key a request may carry, as spelt on the wire.
    public static let keys: Set<String> = [
        "v", "id", "op", "lockspace", "host_id", "path", "offset", "resource", "shared", "wait", "timeout_ms",
        "lver", "persistent", "name", "pid",
    ]

    /// Keys of a request line that no request has (a misspelt `shared` or `wait` would
    /// otherwise be ignored and change what is asked), sorted; empty when the line is not a
    /// JSON object (the decoder reports that).
    public static func unknownKeys(in line: Data) -> [String] {
        guard let o = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { return [] }
        return o.keys.filter { !keys.contains($0) }.sorted()
    }
}

/// Error codes: stable strings a client can switch on.
public enum ErrorCode: String, Codable, Sendable {
    case badRequest = "bad_request"
    case unsupportedVersion = "unsupported_version"
    case tooLarge = "too_large"
    case permission
    case noLockspace = "no_lockspace"
    case joining
    case busy
    case timeout
    case notOwner = "not_owner"
    case fenced
    case io
    case corrupt
    case exists
    case internalError = "internal"
}

public struct WireError: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

public struct LeaseInfo: Codable, Sendable, Equatable {
    public var lockspace: String
    public var resource: String
    public var path: String
    public var offset: UInt64
    public var lver: UInt64
    public var shared: Bool
    public var pid: Int32
    public var persistent: Bool
    /// True for a lease of a process that exited (persistent) or of a previous daemon
    /// incarnation: held on disk, waiting to be adopted by the next acquire of it.
    public var orphan: Bool
    /// Another host asked for it (a request record naming this version or later).
    public var releaseRequested: Bool

    public init(
        lockspace: String, resource: String, path: String, offset: UInt64, lver: UInt64, shared: Bool,
        pid: Int32, persistent: Bool, orphan: Bool, releaseRequested: Bool
    ) {
        self.lockspace = lockspace
        self.resource = resource
        self.path = path
        self.offset = offset
        self.lver = lver
        self.shared = shared
        self.pid = pid
        self.persistent = persistent
        self.orphan = orphan
        self.releaseRequested = releaseRequested
    }
}

public struct LockspaceInfo: Codable, Sendable, Equatable {
    public var name: String
    public var hostId: Int
    public var path: String
    public var offset: UInt64
    /// joining, joined, failed (renewals failed: fenced), leaving
    public var state: String
    /// Progress while joining (what the join is waiting for).
    public var detail: String
    public var generation: UInt64
    public var ioTimeout: Int
    /// Seconds since the last successful renewal (0 while joining).
    public var renewalAgeSeconds: Double
    public var readMode: String

    public init(
        name: String, hostId: Int, path: String, offset: UInt64, state: String, detail: String,
        generation: UInt64, ioTimeout: Int, renewalAgeSeconds: Double, readMode: String
    ) {
        self.name = name
        self.hostId = hostId
        self.path = path
        self.offset = offset
        self.state = state
        self.detail = detail
        self.generation = generation
        self.ioTimeout = ioTimeout
        self.renewalAgeSeconds = renewalAgeSeconds
        self.readMode = readMode
    }
}

public struct HostInfo: Codable, Sendable, Equatable {
    public var hostId: Int
    public var state: String
    public var generation: UInt64
    public var timestamp: UInt64
    public var name: String
    public init(hostId: Int, state: String, generation: UInt64, timestamp: UInt64, name: String) {
        self.hostId = hostId
        self.state = state
        self.generation = generation
        self.timestamp = timestamp
        self.name = name
    }
}

public struct Response: Codable, Sendable, Equatable {
    public var v: Int = Wire.version
    public var id: UInt64? = nil
    public var ok: Bool
    public var error: WireError? = nil
    /// acquire, convert: the fencing token.
    public var lver: UInt64? = nil
    public var leases: [LeaseInfo]? = nil
    public var lockspaces: [LockspaceInfo]? = nil
    public var hosts: [HostInfo]? = nil
    public var pid: Int32? = nil
    public var version: String? = nil
    public var capabilities: [String]? = nil

    public init(ok: Bool) { self.ok = ok }

    public static func failure(_ e: WireError, id: UInt64? = nil) -> Response {
        var r = Response(ok: false)
        r.error = e
        r.id = id
        return r
    }
}
