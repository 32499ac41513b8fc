#if canImport(Glibc)
import Glibc
#endif

/// Everything that can go wrong between us and the device, each case naming the device and
/// the byte offset involved so a single line tells an operator what and where.
public enum BlockIOError: Error, Equatable, Sendable, CustomStringConvertible {
    /// open(2) failed (ENOENT for a missing path, EINVAL when the filesystem refuses O_DIRECT).
    case openFailed(path: String, errno: Int32)
    /// The path is neither a regular file nor a block device.
    case unsupportedFileType(path: String)
    /// An offset or length is not a multiple of the device's logical sector size.
    case misaligned(path: String, offset: UInt64, length: Int, alignment: Int)
    /// The request reaches past the end of the device or file.
    case outOfRange(path: String, offset: UInt64, length: Int, deviceSize: UInt64)
    /// Two writes in one batch overlap; their order on disk would be undefined.
    case overlappingWrites(path: String, offset: UInt64)
    /// The batch's deadline passed with requests still in flight; their buffers are parked.
    case timeout(path: String, offset: UInt64, inFlight: Int, timeoutMilliseconds: Int64)
    /// The kernel completed a request with an error (EIO and friends).
    case ioError(path: String, offset: UInt64, length: Int, errno: Int32)
    /// The kernel completed a request with fewer bytes than asked (a truncated file, usually).
    case shortTransfer(path: String, offset: UInt64, expected: Int, transferred: Int)
    /// io_submit or io_getevents failed outright.
    case kernelFailed(path: String, call: String, errno: Int32)
    /// Too many timed-out requests are still parked; the device is not answering.
    case degraded(path: String, parkedRequests: Int)
    /// A write to a sector whose earlier write timed out and may still land: issuing another
    /// could let the two land in either order, so it is refused until the first is reaped.
    case writePending(path: String, offset: UInt64)
    /// An aligned buffer could not be allocated.
    case outOfMemory(bytes: Int)

    public var description: String {
        switch self {
        case let .openFailed(path, errno):
            let hint = errno == EINVAL ? " (does the filesystem support O_DIRECT?)" : ""
            return "\(path): cannot open: \(Self.errnoText(errno))\(hint)"
        case let .unsupportedFileType(path):
            return "\(path): not a regular file or block device"
        case let .misaligned(path, offset, length, alignment):
            return "\(path): offset \(offset) length \(length) is not aligned to the \(alignment)-byte sector size"
        case let .outOfRange(path, offset, length, deviceSize):
            return
                "\(path): offset \(offset) length \(length) is beyond the end of the device (\(deviceSize) bytes): "
                    + "device too small or truncated"
        case let .overlappingWrites(path, offset):
            return "\(path): overlapping writes at offset \(offset) in one batch"
        case let .timeout(path, offset, inFlight, ms):
            return
                "\(path): I/O timed out after \(ms) ms at offset \(offset) (\(inFlight) request(s) still in flight, "
                    + "buffers parked)"
        case let .ioError(path, offset, length, errno):
            return "\(path): I/O error at offset \(offset) length \(length): \(Self.errnoText(errno))"
        case let .shortTransfer(path, offset, expected, transferred):
            return "\(path): short transfer at offset \(offset): \(transferred) of \(expected) bytes (file truncated?)"
        case let .kernelFailed(path, call, errno):
            return "\(path): \(call) failed: \(Self.errnoText(errno))"
        case let .degraded(path, parked):
            return "\(path): device not answering: \(parked) timed-out request(s) still unreaped"
        case let .writePending(path, offset):
            return
                "\(path): offset \(offset): an earlier write there timed out and may still land; not writing over it "
                    + "yet"
        case let .outOfMemory(bytes):
            return "cannot allocate an aligned buffer of \(bytes) bytes"
        }
    }

    /// The device path the error is about, if any.
    public var path: String? {
        switch self {
        case let .openFailed(p, _), let .unsupportedFileType(p), let .misaligned(p, _, _, _),
            let .outOfRange(p, _, _, _), let .overlappingWrites(p, _), let .timeout(p, _, _, _),
            let .ioError(p, _, _, _), let .shortTransfer(p, _, _, _), let .kernelFailed(p, _, _),
            let .degraded(p, _), let .writePending(p, _):
            return p
        case .outOfMemory:
            return nil
        }
    }

    static func errnoText(_ code: Int32) -> String {
        guard let c = strerror(code) else { return "errno \(code)" }
        return "\(String(cString: c)) (errno \(code))"
    }
}
