import ArgumentParser
import DirectIO
import LeaseFormat
import DiskLeaseClient

#if canImport(Glibc)
import Glibc
#endif

/// `disklease`: create and inspect sanlock-compatible lease areas.
public struct DiskLeaseCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "disklease",
        abstract: "Create and inspect DiskLease (sanlock 3.8 compatible) lease areas.",
        discussion: """
            LOCKSPACE = name:host_id:path:offset
            RESOURCE  = lockspace:name:path:offset[:lver|:SH]
            A ':' inside a path is written '\\:'.

            Exit codes: 0 ok, 64 usage (bad arguments, misaligned offset), 65 corrupt area
            (bad checksum, magic, version or name), 66 missing device, 73 area already
            initialised (use --force), 74 I/O error or timeout, 75 held by another host (try
            again), 78 device does not fit the area (too small, truncated, sector size
            mismatch), 70 the simulator found a violation.
            """,
        version: DiskLeaseVersion.string,
        subcommands: [
            InitCommand.self, DumpCommand.self, ReadLeaderCommand.self, DirectCommand.self, SimulateCommand.self,
            ClientCommand.self, BenchCommand.self, HostCommand.self,
        ]
    )

    public init() {}
}

/// What the CLI exits with; sysexits(3) values so scripts can tell failures apart.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case usage = 64
    case corrupt = 65
    case noInput = 66
    case exists = 73
    case io = 74
    /// The lease (or host id) is held by someone else, or the race was lost: try again later.
    case busy = 75
    case geometry = 78
}

/// A failure the CLI reports as one line and an exit status.
public struct CLIFailure: Error, CustomStringConvertible {
    public var message: String
    public var status: ExitStatus

    public init(_ message: String, _ status: ExitStatus) {
        self.message = message
        self.status = status
    }

    public init(_ e: BlockIOError) {
        message = e.description
        switch e {
        case .openFailed(_, let errno): status = errno == EINVAL ? .geometry : .noInput
        case .unsupportedFileType: status = .noInput
        case .misaligned: status = .usage
        case .outOfRange: status = .geometry
        case .overlappingWrites, .timeout, .ioError, .shortTransfer, .kernelFailed, .degraded, .outOfMemory,
            .writePending:
            status = .io
        }
    }

    public init(path: String, _ e: FormatError) {
        message = "\(path): \(e)"
        switch e {
        case .badGeometry, .badName, .badNumHosts, .hostIDOutOfRange: status = .usage
        case .outOfRange: status = .corrupt
        case .sectorSizeMismatch: status = .geometry
        default: status = .corrupt
        }
    }

    public var description: String { message }
}

extension ParsableCommand {
    /// Runs `body`, turning our typed failures into one stderr line and the matching exit code.
    func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let f as CLIFailure {
            FileHandleStream.stderr.write("disklease: error: \(f.message)\n")
            throw ExitCode(f.status.rawValue)
        } catch let e as BlockIOError {
            try reporting { throw CLIFailure(e) }
        }
    }
}

/// Unbuffered writes to stdout/stderr without Foundation.
enum FileHandleStream {
    case stdout, stderr

    func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in
            var p = buf.baseAddress!
            var left = buf.count
            while left > 0 {
                let n = Glibc.write(self == .stdout ? 1 : 2, p, left)
                if n <= 0 { return }
                p += n
                left -= n
            }
        }
    }
}
