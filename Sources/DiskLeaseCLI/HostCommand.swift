import ArgumentParser
import DeltaLease
import Foundation
import LeaseFormat

/// `disklease host`: operator actions on another host's slot.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Operator actions on a host id's slot.",
        subcommands: [HostClear.self])
}

/// `disklease host clear`: an operator has confirmed a host is off (power-cycled, fenced by
/// other means). Its slot is left on its behalf (timestamp 0, then a fresh membership epoch),
/// so other hosts stop reading its blocks once they are dominated, and its leases are free to
/// take over at once instead of after host_dead_seconds. Unsafe if the host is in fact running.
struct HostClear: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clear",
        abstract: "Mark a host id as gone after confirming the host is off (oVirt's \"host has been rebooted\").",
        discussion: """
            -s names the lockspace and the host id to clear. --generation must be the
            incarnation on disk (read it with `disklease dump`): a host that has rejoined
            since is not cleared. Refused (exit 75) when the slot holds another incarnation.
            """)
    @OptionGroup var options: DirectHostOptions
    @Option(help: "The generation on disk of the host id being cleared.") var generation: UInt64

    func run() throws {
        try reporting {
            let host = try options.host()
            let spec = options.lockspace
            let at = host.layout.deltaOffset(hostID: spec.hostID)
            let onDisk: LeaderRecord
            do throws(FormatError) {
                onDisk = try LeaderRecord.verifyDelta(host.slot, deviceOffset: at, space: spec.name)
            } catch {
                throw CLIFailure(path: spec.path, error)
            }
            guard onDisk.ownerID == UInt64(spec.hostID), onDisk.timestamp != 0 else {
                throw CLIFailure(
                    "\(spec.path): offset \(at): host_id \(spec.hostID) is not in lockspace \(spec.name): "
                        + "nothing to clear", .noInput)
            }
            guard onDisk.ownerGeneration == generation else {
                throw CLIFailure(
                    "\(spec.path): offset \(at): host_id \(spec.hostID) is at generation "
                        + "\(onDisk.ownerGeneration), not \(generation): it rejoined since; not cleared", .busy)
            }
            var rng = SystemRandomNumberGenerator()
            _ = try host.run(
                SlotClear(
                    layout: host.layout, space: spec.name, hostID: spec.hostID, generation: generation,
                    nonce: rng.next()))
            FileHandleStream.stdout.write(
                "cleared \(spec.name) host_id \(spec.hostID) generation \(generation): its slot is free\n")
        }
    }
}
