import ArgumentParser
import DirectIO
import DiskLeaseClient
import LeaseFormat

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Initialise a lockspace or resource area (crash-safe: whole area, then sector 0).",
        subcommands: [InitLockspace.self, InitResource.self]
    )
}

/// Options shared by both init commands.
struct GeometryOptions: ParsableArguments {
    @Option(
        name: [.customShort("Z"), .customLong("sector-size")],
        help: "512 or 4096 (default: the device's, 512 for files).")
    var sectorSize: Int?

    @Option(
        name: [.customShort("A"), .customLong("align-size")],
        help: "1M, 2M, 4M or 8M (default: 1M for 512, 8M for 4096).")
    var alignSize: AlignSize?

    @Flag(help: "Overwrite an area that already holds a valid lockspace or resource.")
    var force = false

    func validate() throws {
        if let sectorSize, sectorSize != 512 && sectorSize != 4096 {
            throw ValidationError("--sector-size must be 512 or 4096")
        }
        if let sectorSize, let alignSize, (try? Geometry(sectorSize: sectorSize, alignSize: alignSize.bytes)) == nil {
            throw ValidationError("valid sector/align sizes: 512/1M, 4K/1M, 4K/2M, 4K/4M, 4K/8M")
        }
    }

    func geometry(for device: FileDevice) throws(CLIFailure) -> Geometry {
        let ss = sectorSize ?? (device.alignment == 4096 ? 4096 : 512)
        do {
            if let alignSize { return try Geometry(sectorSize: ss, alignSize: alignSize.bytes) }
            return try Geometry.defaultFor(sectorSize: ss)
        } catch {
            throw CLIFailure(path: device.path, error)
        }
    }
}

/// Writes an init image after the checks every init shares: the area fits, and it does not
/// already hold something valid (unless forced). Nothing is written when a check fails.
func writeInitImage(
    _ makeImage: (Geometry) throws(FormatError) -> InitImage, path: String, offset: UInt64, options: GeometryOptions
) throws(CLIFailure) -> Geometry {
    let access = try AreaAccess(path: path, readOnly: false)
    let g = try options.geometry(for: access.device)
    try access.checkFits(g, at: offset)
    let image: InitImage
    do {
        image = try makeImage(g)
    } catch {
        throw CLIFailure(path: path, error)
    }
    if !options.force {
        let start = try access.read(offset, g.sectorSize)
        if let what = validAreaKind(start, offset: offset) {
            throw CLIFailure(
                "\(path): offset \(offset) already holds a valid \(what); use --force to overwrite", .exists)
        }
        if let (at, what) = try overlappingArea(access, writing: offset, length: g.alignSize, sectorSize: g.sectorSize)
        {
            throw CLIFailure(
                "\(path): offset \(offset): a \(g) area there would overwrite the valid \(what) at offset \(at); "
                    + "use --force to overwrite", .exists)
        }
    }
    do {
        try access.device.write(offset: offset, bytes: image.area, timeout: CLITimeouts.initWrite)
        try access.device.write(offset: offset, bytes: image.sector0, timeout: CLITimeouts.initWrite)
    } catch {
        throw CLIFailure(error)
    }
    return g
}

/// The first valid area, other than one starting at `offset`, that [offset, offset + length)
/// would overlap: a resource leader, or a lockspace's first slot (a delta record at a multiple
/// of its own align size), anywhere from one largest area (8 MiB) before `offset` to its end.
func overlappingArea(
    _ access: AreaAccess, writing offset: UInt64, length: Int, sectorSize ss: Int
)
    throws(CLIFailure) -> (UInt64, String)?
{
    let largest = UInt64(8 << 20)
    let low = offset > largest - UInt64(ss) ? offset - (largest - UInt64(ss)) : 0
    let high = offset + UInt64(length)  // checkFits has shown this is inside the device
    let bytes = try access.read(low, Int(high - low))
    for i in stride(from: 0, to: bytes.count, by: ss) {
        let at = low + UInt64(i)
        guard at != offset else { continue }
        let magic =
            UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
        guard magic == LeaderRecord.deltaMagic || magic == LeaderRecord.paxosMagic else { continue }
        let sector = Array(bytes[i..<(i + ss)])
        guard let what = validAreaKind(sector, offset: at) else { continue }
        let head = LeaderRecord(decoding: sector)
        guard let g = try? head.geometry(deviceOffset: at) else { continue }
        let areaStart = magic == LeaderRecord.paxosMagic || at % UInt64(g.alignSize) == 0
        if areaStart && at < high && at + UInt64(g.alignSize) > offset { return (at, what) }
    }
    return nil
}

/// "lockspace 'x'" / "resource 'x:y'" when sector 0 is a valid record, else nil.
func validAreaKind(_ sector: [UInt8], offset: UInt64) -> String? {
    if let r = try? LeaderRecord.verifyDelta(sector, deviceOffset: offset) { return "lockspace '\(r.spaceName)'" }
    if let r = try? LeaderRecord.verifyPaxos(sector, deviceOffset: offset) {
        return "resource '\(r.spaceName):\(r.resourceName)'"
    }
    return nil
}

struct InitLockspace: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockspace",
        abstract: "Write a lockspace: a free delta lease for every host_id up to max_hosts.")

    @Argument(help: "LOCKSPACE = name:host_id:path:offset (host_id is ignored).")
    var lockspace: LockspaceSpec

    @Option(name: .customLong("io-timeout"), help: "io_timeout in seconds written to every slot (1-255).")
    var ioTimeout: UInt16 = 10

    @OptionGroup var geometry: GeometryOptions

    func validate() throws {
        guard (1...255).contains(ioTimeout) else { throw ValidationError("--io-timeout must be 1...255") }
    }

    func run() throws {
        try reporting {
            let ls = lockspace
            let io = ioTimeout
            let g = try writeInitImage(
                { (g: Geometry) throws(FormatError) in
                    try InitImage.lockspace(space: ls.name, geometry: g, ioTimeout: io)
                }, path: ls.path, offset: ls.offset, options: geometry)
            FileHandleStream.stdout.write(
                "init lockspace \(ls.name) at \(ls.path):\(ls.offset): \(g), max_hosts \(g.maxHosts), io_timeout "
                    + "\(io)\n"
            )
        }
    }
}

struct InitResource: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resource",
        abstract: "Write a resource lease: leader, request record, zeroed dblocks.")

    @Argument(help: "RESOURCE = lockspace:name:path:offset")
    var resource: ResourceSpec

    @Option(
        name: [.customShort("n"), .customLong("num-hosts")], help: "dblocks in use (default: max_hosts, as sanlock).")
    var numHosts: Int?

    @OptionGroup var geometry: GeometryOptions

    func run() throws {
        try reporting {
            let r = resource
            let n = numHosts
            let g = try writeInitImage(
                { (g: Geometry) throws(FormatError) in
                    try InitImage.resource(space: r.lockspace, resource: r.name, geometry: g, numHosts: n ?? g.maxHosts)
                }, path: r.path, offset: r.offset, options: geometry)
            FileHandleStream.stdout.write(
                "init resource \(r.lockspace):\(r.name) at \(r.path):\(r.offset): \(g), num_hosts \(n ?? g.maxHosts)\n")
        }
    }
}
