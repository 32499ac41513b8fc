import ArgumentParser
import DiskLeaseClient

/// The CLI spells lockspaces as sanlock does; host_id 0 is allowed where none is used.
extension LockspaceSpec: ExpressibleByArgument {
    public init?(argument: String) { self.init(sanlock: argument, minimumHostID: 0) }
    public static var defaultCompletionKind: CompletionKind { .default }
}

/// `RESOURCE = lockspace:name:path:offset[:lver|:SH]`, as sanlock spells it.
public struct ResourceSpec: ExpressibleByArgument, Sendable, Equatable {
    public var lockspace: String
    public var name: String
    public var path: String
    public var offset: UInt64
    public var lver: UInt64?
    public var shared: Bool

    public init(
        lockspace: String, name: String, path: String, offset: UInt64, lver: UInt64? = nil, shared: Bool = false
    ) {
        self.lockspace = lockspace
        self.name = name
        self.path = path
        self.offset = offset
        self.lver = lver
        self.shared = shared
    }

    public init?(argument: String) {
        let p = splitSanlockSpec(argument)
        guard p.count == 4 || p.count == 5, !p[0].isEmpty, !p[1].isEmpty, !p[2].isEmpty, let o = UInt64(p[3]) else {
            return nil
        }
        var lver: UInt64? = nil
        var shared = false
        if p.count == 5 {
            if p[4] == "SH" { shared = true } else if let v = UInt64(p[4]) { lver = v } else { return nil }
        }
        self.init(lockspace: p[0], name: p[1], path: p[2], offset: o, lver: lver, shared: shared)
    }
}

/// `PATH[:OFFSET[:SIZE]]` for dump.
public struct DumpSpec: ExpressibleByArgument, Sendable, Equatable {
    public var path: String
    public var offset: UInt64
    public var size: UInt64?

    public init?(argument: String) {
        let p = splitSanlockSpec(argument)
        guard (1...3).contains(p.count), !p[0].isEmpty else { return nil }
        path = p[0]
        if p.count >= 2 { guard let o = UInt64(p[1]) else { return nil }; offset = o } else { offset = 0 }
        if p.count == 3 { guard let s = UInt64(p[2]), s > 0 else { return nil }; size = s } else { size = nil }
    }
}

/// `-A 1M|2M|4M|8M` (or bytes).
struct AlignSize: ExpressibleByArgument {
    var bytes: Int

    init?(argument: String) {
        let table = ["1M": 1, "2M": 2, "4M": 4, "8M": 8]
        if let m = table[argument.uppercased()] {
            bytes = m << 20
        } else if let b = Int(argument), [1, 2, 4, 8].map({ $0 << 20 }).contains(b) {
            bytes = b
        } else {
            return nil
        }
    }
}
