/// Why bytes on disk are not the record they should be, or why a record cannot be written.
/// Every case that comes from reading names the byte offset on the device.
public enum FormatError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic(offset: UInt64, found: UInt32, expected: UInt32)
    /// A paxos leader deliberately cleared (`PAXOS_DISK_CLEAR`): there is no lease here.
    case clearedLease(offset: UInt64)
    case badVersion(offset: UInt64, found: UInt32, expectedMajor: UInt32)
    case badChecksum(offset: UInt64, stored: UInt32, computed: UInt32)
    case lockspaceMismatch(offset: UInt64, found: String, expected: String)
    case resourceMismatch(offset: UInt64, found: String, expected: String)
    /// The leader's num_hosts is below the reader's host id (sanlock's SANLK_LEADER_NUMHOSTS).
    case numHostsTooSmall(offset: UInt64, numHosts: UInt64, hostID: UInt64)
    case badSectorSize(offset: UInt64, found: UInt32)
    /// A record says one sector size, the caller or device another.
    case sectorSizeMismatch(offset: UInt64, record: Int, expected: Int)
    case badGeometry(sectorSize: Int, alignSize: Int)
    case hostIDOutOfRange(hostID: UInt64, maxHosts: Int)
    case badName(what: String, name: String, maxBytes: Int)
    case badNumHosts(numHosts: Int, maxHosts: Int)
    /// The area holds nothing (all zero) where a record was expected.
    case emptyArea(offset: UInt64)
    /// A field's value (from disk or a request) is outside what can be used: arithmetic on
    /// it would overflow, or it names nothing valid.
    case outOfRange(field: String, value: UInt64, offset: UInt64)

    public var description: String {
        func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }
        switch self {
        case let .badMagic(o, f, e): return "offset \(o): bad magic \(hex(f)) (expected \(hex(e)))"
        case let .clearedLease(o): return "offset \(o): lease was cleared (magic 0x11282016)"
        case let .badVersion(o, f, m): return "offset \(o): unsupported version \(hex(f)) (expected major \(m))"
        case let .badChecksum(o, s, c): return "offset \(o): bad checksum \(hex(s)) (computed \(hex(c)))"
        case let .lockspaceMismatch(o, f, e): return "offset \(o): lockspace name is '\(f)', expected '\(e)'"
        case let .resourceMismatch(o, f, e): return "offset \(o): resource name is '\(f)', expected '\(e)'"
        case let .numHostsTooSmall(o, n, h): return "offset \(o): num_hosts \(n) is below host_id \(h)"
        case let .badSectorSize(o, f): return "offset \(o): invalid sector_size \(f) (512 or 4096)"
        case let .sectorSizeMismatch(o, r, e): return "offset \(o): area sector size \(r) does not match \(e)"
        case let .badGeometry(s, a):
            return "invalid geometry: sector size \(s) with align size \(a) (valid: 512/1M, 4K/1M, 4K/2M, 4K/4M, 4K/8M)"
        case let .hostIDOutOfRange(h, m): return "host_id \(h) is out of range 1...\(m)"
        case let .badName(what, name, max): return "invalid \(what) name '\(name)': 1 to \(max) bytes, no ':' or NUL"
        case let .badNumHosts(n, m): return "num_hosts \(n) is out of range 1...\(m)"
        case let .emptyArea(o): return "offset \(o): no lease area here (all zero)"
        case let .outOfRange(f, v, o): return "offset \(o): \(f) \(v) is out of range"
        }
    }

    /// The device offset the error is about, if it came from reading.
    public var offset: UInt64? {
        switch self {
        case let .badMagic(o, _, _), let .clearedLease(o), let .badVersion(o, _, _), let .badChecksum(o, _, _),
            let .lockspaceMismatch(o, _, _), let .resourceMismatch(o, _, _), let .numHostsTooSmall(o, _, _),
            let .badSectorSize(o, _), let .sectorSizeMismatch(o, _, _), let .emptyArea(o), let .outOfRange(_, _, o):
            return o
        case .badGeometry, .hostIDOutOfRange, .badName, .badNumHosts:
            return nil
        }
    }

    /// `message` (an error text that may hold these descriptions) without the bytes the
    /// records were found to hold: the magic, version, checksums, sector size and names read
    /// from the device. The daemon answers non-root clients with this form, since a path a
    /// client names may be any file the daemon can read; the CLI and the log keep the detail.
    public static func redacted(_ message: String) -> String {
        // Patterns as strings, not literals: the fuzz targets compile these sources in a
        // language mode without bare regex literals.
        let rules: [(String, (Regex<AnyRegexOutput>.Match) -> String)] = [
            (
                #"bad magic 0x[0-9a-f]+ \(expected (0x[0-9a-f]+)\)"#,
                { "bad magic (expected \($0.output[1].substring ?? ""))" }
            ),
            (#"unsupported version 0x[0-9a-f]+"#, { _ in "unsupported version" }),
            (#"bad checksum 0x[0-9a-f]+ \(computed 0x[0-9a-f]+\)"#, { _ in "bad checksum" }),
            (
                #"(lockspace|resource) name is '.*?', expected"#,
                { "\($0.output[1].substring ?? "") name differs, expected" }
            ),
            (#"invalid sector_size [0-9]+"#, { _ in "invalid sector_size" }),
        ]
        var m = message
        for (pattern, replacement) in rules {
            if let r = try? Regex(pattern) { m.replace(r, with: replacement) }
        }
        return m
    }
}
