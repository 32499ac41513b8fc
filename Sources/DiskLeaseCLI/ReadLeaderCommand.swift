import ArgumentParser
import DirectIO
import DiskLeaseClient
import LeaseFormat

/// `disklease read-leader`: one lockspace slot or one resource leader, verified as sanlock does.
struct ReadLeaderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-leader",
        abstract: "Print and verify the delta lease of a host_id, or the leader of a resource.")

    @Option(name: .customShort("s"), help: "LOCKSPACE = name:host_id:path:offset (host_id 0 reads host_id 1).")
    var lockspace: LockspaceSpec?

    @Option(name: .customShort("r"), help: "RESOURCE = lockspace:name:path:offset")
    var resource: ResourceSpec?

    @Flag(help: "Print JSON instead of sanlock-style 'field value' lines.")
    var json = false

    func validate() throws {
        guard (lockspace == nil) != (resource == nil) else {
            throw ValidationError("give exactly one of -s LOCKSPACE or -r RESOURCE")
        }
    }

    func run() throws {
        try reporting {
            let (record, kind): (LeaderRecord, String)
            if let ls = lockspace {
                let access = try AreaAccess(path: ls.path, readOnly: true)
                let start = try access.readAreaStart(ls.offset)
                let g = try access.declaredGeometry(at: ls.offset, start: start)
                let hostID = max(1, ls.hostID)
                guard hostID <= g.maxHosts else {
                    throw CLIFailure(path: ls.path, .hostIDOutOfRange(hostID: UInt64(hostID), maxHosts: g.maxHosts))
                }
                let at = AreaLayout(offset: ls.offset, geometry: g).deltaOffset(hostID: hostID)
                let sector = try access.read(at, g.sectorSize)
                do throws(FormatError) {
                    record = try LeaderRecord.verifyDelta(sector, deviceOffset: at, space: ls.name)
                } catch {
                    throw CLIFailure(path: ls.path, error)
                }
                kind = "delta"
            } else {
                let r = resource!
                let access = try AreaAccess(path: r.path, readOnly: true)
                let start = try access.readAreaStart(r.offset)
                do throws(FormatError) {
                    record = try LeaderRecord.verifyPaxos(
                        start, deviceOffset: r.offset, space: r.lockspace, resource: r.name)
                } catch {
                    throw CLIFailure(path: r.path, error)
                }
                _ = try access.declaredGeometry(at: r.offset, start: start)
                kind = "paxos"
            }
            FileHandleStream.stdout.write(
                json ? Render.json(LeaderJSON(record, kind: kind)) : Render.leaderLines(record, kind: kind))
        }
    }
}
