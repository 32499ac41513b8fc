import DirectIO
import LeaseFormat

/// Why a host-id (delta lease) operation failed.
public enum DeltaError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(BlockIOError)
    case format(FormatError)
    /// The slot is held by another host name and kept changing while we waited (SANLK_HOSTID_BUSY).
    case hostIDBusy(hostID: Int, holder: String)
    /// Our record on disk is no longer ours (SANLK_RENEW_OWNER).
    case renewOwner(hostID: Int, offset: UInt64)
    /// Our record changed since we wrote it (SANLK_RENEW_DIFF).
    case renewDiff(hostID: Int, offset: UInt64)
    case badHostName(String)

    public var description: String {
        switch self {
        case .io(let e): return e.description
        case .format(let e): return e.description
        case let .hostIDBusy(h, holder): return "host_id \(h) is busy: held by '\(holder)'"
        case let .renewOwner(h, o): return "offset \(o): host_id \(h)'s delta lease is owned by another host"
        case let .renewDiff(h, o): return "offset \(o): host_id \(h)'s delta lease changed under us"
        case let .badHostName(n): return "host name '\(n)' must be 1 to \(LeaseName.hostNameMax) bytes"
        }
    }
}
