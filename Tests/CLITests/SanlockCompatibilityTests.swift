import Foundation
import LeaseFormat
import Testing
import TestSupport

/// Byte compatibility with sanlock 3.8.5, for each of the five geometries.
@Suite struct SanlockCompatibilityTests {
    static let geometries = Geometry.all

    @Test(arguments: geometries)
    func sanlockAreasReadByDiskLeaseFieldForField(geometry g: Geometry) throws {
        let path = Scratch.file(size: 2 * g.alignSize)
        defer { Scratch.remove(path) }
        let z = ["-Z", "\(g.sectorSize)", "-A", Sanlock.alignFlag(g.alignSize)]
        #expect(Sanlock.direct(["init", "-s", "LS:0:\(path):0"] + z).status == 0)
        #expect(Sanlock.direct(["init", "-r", "LS:vm-disk:\(path):\(g.alignSize)", "-n", "16"] + z).status == 0)

        for (flag, spec) in [
            ("-s", "LS:1:\(path):0"), ("-s", "LS:\(g.maxHosts):\(path):0"), ("-r", "LS:vm-disk:\(path):\(g.alignSize)"),
        ] {
            let theirs = try #require(Sanlock.readLeader(flag, spec), "sanlock read_leader \(flag) \(spec)")
            let ours = DiskLease.run(["read-leader", flag, spec])
            #expect(ours.status == 0, "\(ours)")
            #expect(Sanlock.fields(ours.stdout) == theirs, "\(g) \(flag) \(spec)")
        }
        // JSON carries the same values.
        let json = DiskLease.run(["read-leader", "-r", "LS:vm-disk:\(path):\(g.alignSize)", "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        #expect(
            obj["numHosts"] as? Int == 16 && obj["maxHosts"] as? Int == g.maxHosts
                && obj["sectorSize"] as? Int == g.sectorSize)
    }

    @Test(arguments: geometries)
    func diskLeaseInitIsByteIdenticalToSanlockInit(geometry g: Geometry) throws {
        let theirs = Scratch.file(size: 2 * g.alignSize)
        let ours = Scratch.file(size: 2 * g.alignSize)
        defer { Scratch.remove(theirs); Scratch.remove(ours) }
        let z = ["-Z", "\(g.sectorSize)", "-A", Sanlock.alignFlag(g.alignSize)]
        #expect(Sanlock.direct(["init", "-s", "LS:0:\(theirs):0"] + z).status == 0)
        #expect(Sanlock.direct(["init", "-r", "LS:res:\(theirs):\(g.alignSize)"] + z).status == 0)
        #expect(DiskLease.run(["init", "lockspace", "LS:0:\(ours):0"] + z).status == 0)
        #expect(DiskLease.run(["init", "resource", "LS:res:\(ours):\(g.alignSize)"] + z).status == 0)
        #expect(Scratch.bytes(of: ours) == Scratch.bytes(of: theirs))
    }

    @Test(arguments: geometries)
    func sanlockAcceptsListsAndAcquiresWhatDiskLeaseWrote(geometry g: Geometry) throws {
        let path = Scratch.file(size: 2 * g.alignSize)
        defer { Scratch.remove(path) }
        let z = ["-Z", "\(g.sectorSize)", "-A", Sanlock.alignFlag(g.alignSize)]
        // io_timeout 1 keeps sanlock's delta-acquire wait (2 × io_timeout) short.
        #expect(DiskLease.run(["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"] + z).status == 0)
        #expect(DiskLease.run(["init", "resource", "LS:vm-disk:\(path):\(g.alignSize)", "-n", "4"] + z).status == 0)

        let ls = try #require(Sanlock.readLeader("-s", "LS:1:\(path):0"))
        #expect(ls["magic"] == "0x12212010" && ls["sector_size"] == "\(g.sectorSize)" && ls["io_timeout"] == "1")
        let res = try #require(Sanlock.readLeader("-r", "LS:vm-disk:\(path):\(g.alignSize)"))
        #expect(res["num_hosts"] == "4" && res["max_hosts"] == "\(g.maxHosts)" && res["lver"] == "0")

        let dump = Sanlock.direct(["dump", "\(path):0:\(2 * g.alignSize)"] + z)
        #expect(dump.status == 0)
        #expect(dump.stdout.contains("vm-disk") && dump.stdout.contains(" LS "))

        #expect(Sanlock.direct(["acquire_id", "-s", "LS:1:\(path):0", "-o", "1"]).stdout.contains("acquire_id done 0"))
        let acq = Sanlock.direct(["acquire", "-r", "LS:vm-disk:\(path):\(g.alignSize)", "-i", "1", "-g", "1"])
        #expect(acq.stdout.contains("acquire done 0"), "\(acq)")

        // And we read what sanlock's acquire left: owner 1, lver 1, host 1's dblock committed.
        let ours = DiskLease.run(["dump", "\(path)", "--json"])
        #expect(ours.status == 0, "\(ours)")
        let areas = try JSONSerialization.jsonObject(with: Data(ours.stdout.utf8)) as! [[String: Any]]
        let resource = try #require(areas.first { $0["type"] as? String == "resource" })
        let leader = resource["leader"] as! [String: Any]
        #expect(leader["ownerID"] as? Int == 1 && leader["lver"] as? Int == 1)
        let dblocks = resource["dblocks"] as! [[String: Any]]
        #expect(
            dblocks.count == 1 && dblocks[0]["hostID"] as? Int == 1 && dblocks[0]["mbal"] as? Int == 1
                && dblocks[0]["verdict"] as? String == "ok")
        let lockspace = try #require(areas.first { $0["type"] as? String == "lockspace" })
        let slots = lockspace["slots"] as! [[String: Any]]
        #expect(slots.count == 1 && slots[0]["generation"] as? Int == 1)
    }
}

extension Geometry: CustomTestStringConvertible {
    public var testDescription: String { description }
}
