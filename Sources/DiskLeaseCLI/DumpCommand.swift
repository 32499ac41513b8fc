import ArgumentParser
import DirectIO
import LeaseFormat

/// `disklease dump PATH[:OFFSET[:SIZE]]`: every lockspace and resource area in the range.
struct DumpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dump",
        abstract: "Show every lockspace slot and resource in a range, with a verdict per sector.",
        discussion: "Exits 65 when any sector is damaged (the table is still printed).")

    @Argument(help: "PATH[:OFFSET[:SIZE]] (default: the whole device).")
    var target: DumpSpec

    @Flag(help: "Include unused slots and empty dblocks.")
    var all = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try reporting {
            let access = try AreaAccess(path: target.path, readOnly: true)
            let end = target.size.map { min(target.offset + $0, access.device.sizeBytes) } ?? access.device.sizeBytes
            var reports: [AreaReport] = []
            var offset = target.offset
            while offset < end {
                let start = try access.readAreaStart(offset)
                let report: AreaReport
                if AreaReport.geometry(ofAreaStart: start, deviceOffset: offset) != nil {
                    let g = try access.declaredGeometry(at: offset, start: start)
                    report = AreaReport.inspect(try access.read(offset, g.alignSize), deviceOffset: offset)
                } else {
                    report = AreaReport.inspect(start, deviceOffset: offset)
                }
                reports.append(report)
                offset += UInt64(report.span)
            }
            let shown = reports.filter { if case .empty = $0 { return false } else { return true } }
            FileHandleStream.stdout.write(
                json
                    ? Render.json(shown.map { AreaJSON($0, all: all) })
                    : Render.dump(shown, path: target.path, all: all))
            if shown.contains(where: \.isCorrupt) { throw ExitCode(ExitStatus.corrupt.rawValue) }
        }
    }
}
