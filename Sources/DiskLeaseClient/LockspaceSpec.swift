/// Splits sanlock's colon-separated strings, honouring '\:' as a literal colon in a path.
public func splitSanlockSpec(_ s: String) -> [String] {
    var parts: [String] = []
    var cur = ""
    var escaped = false
    for c in s {
        if escaped {
            cur.append(c)
            escaped = false
        } else if c == "\\" {
            escaped = true
        } else if c == ":" {
            parts.append(cur)
            cur = ""
        } else {
            cur.append(c)
        }
    }
    parts.append(cur)
    return parts
}

/// `LOCKSPACE = name:host_id:path:offset`, as sanlock spells it (a ':' in the path written
/// '\:'). One parser for the CLI, the daemon's config file and its socket.
public struct LockspaceSpec: Sendable, Hashable {
    public var name: String
    public var hostID: Int
    public var path: String
    public var offset: UInt64

    public init(name: String, hostID: Int, path: String, offset: UInt64) {
        self.name = name
        self.hostID = hostID
        self.path = path
        self.offset = offset
    }

    /// nil unless `s` has the four fields, a non-empty name and path, and host_id ≥
    /// `minimumHostID` (0 where a host id is not used, as in `init lockspace`).
    public init?(sanlock s: String, minimumHostID: Int = 1) {
        let p = splitSanlockSpec(s)
        guard p.count == 4, !p[0].isEmpty, let h = Int(p[1]), h >= minimumHostID, !p[2].isEmpty, let o = UInt64(p[3])
        else {
            return nil
        }
        self.init(name: p[0], hostID: h, path: p[2], offset: o)
    }

    /// As `init?(sanlock:)`, with the error a request or config line gets.
    public init(parsing s: String) throws(WireError) {
        guard let spec = LockspaceSpec(sanlock: s) else {
            throw WireError(.badRequest, "lockspace \(s): expected name:host_id:path:offset with host_id ≥ 1")
        }
        self = spec
    }
}
