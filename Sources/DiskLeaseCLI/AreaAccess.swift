import DirectIO
import LeaseFormat

/// The timeouts the CLI uses: sanlock's write_init_io_timeout for init, io_timeout for reads.
enum CLITimeouts {
    static let initWrite: Duration = .seconds(60)
    static let read: Duration = .seconds(10)
}

/// Reading areas through a device, with checks that name the path and offset.
struct AreaAccess {
    let device: FileDevice

    init(path: String, readOnly: Bool, queueDepth: Int = 512) throws(CLIFailure) {
        do {
            device = try FileDevice(path: path, readOnly: readOnly, queueDepth: queueDepth)
        } catch {
            throw CLIFailure(error)
        }
    }

    var path: String { device.path }

    func read(_ offset: UInt64, _ length: Int) throws(CLIFailure) -> [UInt8] {
        do {
            return try device.read(offset: offset, length: length, timeout: CLITimeouts.read)
        } catch {
            throw CLIFailure(error)
        }
    }

    /// Checks that an area of `geometry` at `offset` can live on this device.
    func checkFits(_ geometry: Geometry, at offset: UInt64) throws(CLIFailure) {
        if geometry.sectorSize < device.alignment {
            throw CLIFailure(
                path: path, .sectorSizeMismatch(offset: offset, record: geometry.sectorSize, expected: device.alignment)
            )
        }
        if offset % UInt64(geometry.sectorSize) != 0 {
            throw CLIFailure(
                "\(path): offset \(offset) is not a multiple of the \(geometry.sectorSize)-byte sector size", .usage)
        }
        let end = offset + UInt64(geometry.alignSize)
        if end > device.sizeBytes {
            throw CLIFailure(
                "\(path): offset \(offset): a \(geometry) area needs \(geometry.alignSize) bytes but the device has "
                    + "\(device.sizeBytes > offset ? device.sizeBytes - offset : 0) from there (device too small or "
                    + "truncated)",
                .geometry)
        }
    }

    /// The first bytes of an area: enough to hold sector 0 in either sector size.
    func readAreaStart(_ offset: UInt64) throws(CLIFailure) -> [UInt8] {
        let unit = UInt64(device.alignment)
        if offset % unit != 0 {
            throw CLIFailure(
                "\(path): offset \(offset) is not a multiple of the device's \(unit)-byte sector size", .usage)
        }
        guard offset < device.sizeBytes else {
            throw CLIFailure(
                "\(path): offset \(offset) is beyond the end of the device (\(device.sizeBytes) bytes)", .geometry)
        }
        let length = Int(min(4096, device.sizeBytes - offset)) / Int(unit) * Int(unit)
        guard length >= LeaderRecord.size else {
            throw CLIFailure(
                "\(path): offset \(offset): only \(device.sizeBytes - offset) bytes left, no room for a lease record",
                .geometry)
        }
        return try read(offset, length)
    }

    /// The geometry sector 0 of the area at `offset` declares, checked against the device.
    func declaredGeometry(at offset: UInt64, start: [UInt8]) throws(CLIFailure) -> Geometry {
        let r = LeaderRecord(decoding: start)
        let g: Geometry
        do {
            g = try r.geometry(deviceOffset: offset)
        } catch {
            throw CLIFailure(path: path, error)
        }
        try checkFits(g, at: offset)
        return g
    }
}
