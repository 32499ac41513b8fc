import Foundation
import LeaseFormat

/// A leader record as JSON: every on-disk field, numbers as numbers, magic/version/flags/checksum
/// also as the hex strings sanlock prints.
struct LeaderJSON: Codable, Equatable {
    var kind: String
    var magic: String
    var version: String
    var flags: String
    var sectorSize: UInt32
    var numHosts: UInt64
    var maxHosts: UInt64
    var ownerID: UInt64
    var ownerGeneration: UInt64
    var lver: UInt64
    var spaceName: String
    var resourceName: String
    var timestamp: UInt64
    var checksum: String
    var ioTimeout: UInt16
    var writeID: UInt64
    var writeGeneration: UInt64
    var writeTimestamp: UInt64

    init(_ r: LeaderRecord, kind: String) {
        self.kind = kind
        magic = Render.hex(r.magic)
        version = Render.hex(r.version)
        flags = Render.hex(r.flags)
        sectorSize = r.sectorSize
        numHosts = r.numHosts
        maxHosts = r.maxHosts
        ownerID = r.ownerID
        ownerGeneration = r.ownerGeneration
        lver = r.lver
        spaceName = r.spaceName
        resourceName = r.resourceName
        timestamp = r.timestamp
        checksum = Render.hex(r.checksum)
        ioTimeout = r.ioTimeout
        writeID = r.writeID
        writeGeneration = r.writeGeneration
        writeTimestamp = r.writeTimestamp
    }
}

struct SlotJSON: Codable {
    var hostID: Int
    var offset: UInt64
    var verdict: String
    var ownerID: UInt64
    var generation: UInt64
    var timestamp: UInt64
    var ioTimeout: UInt16
    var hostName: String
    var notifying: [Int]
}

struct DblockJSON: Codable {
    var hostID: Int
    var offset: UInt64
    var verdict: String
    var mbal: UInt64
    var bal: UInt64
    var inp: UInt64
    var inp2: UInt64
    var inp3: UInt64
    var lver: UInt64
    var released: Bool
    var shared: Bool
    var sharedGeneration: UInt64
}

/// One area of a dump as JSON.
struct AreaJSON: Codable {
    var type: String
    var offset: UInt64
    var geometry: String?
    var verdict: String
    var lockspace: String?
    var resource: String?
    var leader: LeaderJSON?
    var slots: [SlotJSON]?
    var request: [String: UInt64]?
    var requestVerdict: String?
    var sharedHolders: [Int]?
    var dblocks: [DblockJSON]?

    init(_ report: AreaReport, all: Bool) {
        offset = report.offset
        verdict = report.isCorrupt ? "corrupt" : "ok"
        switch report {
        case .lockspace(let l):
            type = "lockspace"
            geometry = l.geometry.description
            lockspace = l.name
            slots = l.slots.filter { all || !$0.isUnused }.map {
                SlotJSON(
                    hostID: $0.hostID, offset: $0.offset, verdict: $0.verdict.rawValue, ownerID: $0.record.ownerID,
                    generation: $0.record.ownerGeneration, timestamp: $0.record.timestamp,
                    ioTimeout: $0.record.ioTimeout, hostName: $0.record.resourceName, notifying: $0.notifying)
            }
        case .resource(let r):
            type = "resource"
            geometry = r.geometry.description
            lockspace = r.leader.spaceName
            resource = r.leader.resourceName
            leader = LeaderJSON(r.leader, kind: "paxos")
            request = ["lver": r.request.lver, "forceMode": UInt64(r.request.forceMode)]
            requestVerdict = r.requestVerdict.rawValue
            sharedHolders = r.sharedHolders
            dblocks = r.dblocks.filter { all || !$0.isUnused }.map {
                DblockJSON(
                    hostID: $0.hostID, offset: $0.offset, verdict: $0.verdict.rawValue, mbal: $0.dblock.mbal,
                    bal: $0.dblock.bal, inp: $0.dblock.inp, inp2: $0.dblock.inp2, inp3: $0.dblock.inp3,
                    lver: $0.dblock.lver, released: $0.dblock.isReleased, shared: $0.mode.isShared,
                    sharedGeneration: $0.mode.generation)
            }
        case .empty:
            type = "empty"
        case .unknown(_, let v, _):
            type = "unknown"
            verdict = v.rawValue
        }
    }
}

enum Render {
    static func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

    static func json<T: Encodable>(_ value: T) -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! e.encode(value), as: UTF8.self) + "\n"
    }

    /// The same lines, in the same order and spelling, as `sanlock direct read_leader`.
    static func leaderLines(_ r: LeaderRecord, kind: String) -> String {
        let w = kind == "delta" ? ["extra1", "extra2", "extra3"] : ["write_id", "write_generation", "write_timestamp"]
        return """
            magic \(hex(r.magic))
            version \(hex(r.version))
            flags \(hex(r.flags))
            sector_size \(r.sectorSize)
            num_hosts \(r.numHosts)
            max_hosts \(r.maxHosts)
            owner_id \(r.ownerID)
            owner_generation \(r.ownerGeneration)
            lver \(r.lver)
            space_name \(r.spaceName)
            resource_name \(r.resourceName)
            timestamp \(r.timestamp)
            checksum \(hex(r.checksum))
            io_timeout \(r.ioTimeout)
            \(w[0]) \(r.writeID)
            \(w[1]) \(r.writeGeneration)
            \(w[2]) \(r.writeTimestamp)

            """
    }

    static func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
        s.count >= n
            ? s
            : (right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
    }

    static func row(_ cells: [(String, Int)]) -> String {
        cells.map { pad($0.0, $0.1) }.joined(separator: " ").trimmingCharacters(in: .whitespaces) + "\n"
    }

    /// A readable dump: one block per area, one row per slot or dblock.
    static func dump(_ reports: [AreaReport], path: String, all: Bool) -> String {
        var out = ""
        if reports.isEmpty { out += "\(path): no lease areas found\n" }
        for report in reports {
            switch report {
            case .lockspace(let l): out += dumpLockspace(l, all: all)
            case .resource(let r): out += dumpResource(r, all: all)
            case .unknown(let o, let v, let magic):
                out += "unknown area at offset \(o): \(v.rawValue) (magic \(hex(magic)))\n"
            case .empty:
                break
            }
        }
        return out
    }

    static func dumpLockspace(_ l: LockspaceReport, all: Bool) -> String {
        let used = l.slots.filter { !$0.isUnused }
        var out = "lockspace \(l.name) at offset \(l.offset): \(l.geometry), max_hosts \(l.geometry.maxHosts), "
            + "\(used.count) slot(s) used or damaged\n"
        let shown = l.slots.filter { all || !$0.isUnused }
        if !shown.isEmpty {
            out += row([
                ("host_id", 7), ("offset", 10), ("verdict", 14), ("owner", 5), ("gen", 5), ("timestamp", 10),
                ("io_to", 5), ("host_name", 0),
            ])
        }
        for s in shown {
            let bits = s.notifying.isEmpty ? "" : " notify=\(s.notifying.map(String.init).joined(separator: ","))"
            out += row([
                ("\(s.hostID)", 7), ("\(s.offset)", 10), (s.verdict.rawValue, 14), ("\(s.record.ownerID)", 5),
                ("\(s.record.ownerGeneration)", 5), ("\(s.record.timestamp)", 10), ("\(s.record.ioTimeout)", 5),
                (s.record.resourceName + bits, 0),
            ])
        }
        return out
    }

    static func dumpResource(_ r: ResourceReport, all: Bool) -> String {
        let l = r.leader
        let state = r.leaderVerdict != .ok ? r.leaderVerdict.rawValue : (l.timestamp == 0 ? "free" : "held")
        var out = "resource \(l.spaceName):\(l.resourceName) at offset \(r.offset): \(r.geometry), num_hosts "
            + "\(l.numHosts), leader \(state)\n"
        out += "  leader  owner_id \(l.ownerID) gen \(l.ownerGeneration) lver \(l.lver) timestamp "
            + "\(l.timestamp) flags \(hex(l.flags)) write_id \(l.writeID) write_gen \(l.writeGeneration) "
            + "write_ts \(l.writeTimestamp) checksum \(hex(l.checksum))\n"
        out += "  request \(r.requestVerdict.rawValue) lver \(r.request.lver) force_mode \(r.request.forceMode)\n"
        if !r.sharedHolders.isEmpty {
            out += "  shared holders: \(r.sharedHolders.map(String.init).joined(separator: ","))\n"
        }
        let shown = r.dblocks.filter { all || !$0.isUnused }
        guard !shown.isEmpty else { return out }
        out += "  " + row([
            ("host_id", 7), ("offset", 10), ("verdict", 12), ("mbal", 8), ("bal", 8), ("inp", 5),
            ("inp2", 5), ("inp3", 10), ("lver", 6), ("flags", 0),
        ])
        for d in shown {
            let flags = [
                d.dblock.isReleased ? "released" : nil,
                d.mode.isShared ? "SH(gen \(d.mode.generation))" : nil,
            ].compactMap { $0 }.joined(separator: ",")
            out += "  " + row([
                ("\(d.hostID)", 7), ("\(d.offset)", 10), (d.verdict.rawValue, 12), ("\(d.dblock.mbal)", 8),
                ("\(d.dblock.bal)", 8), ("\(d.dblock.inp)", 5), ("\(d.dblock.inp2)", 5), ("\(d.dblock.inp3)", 10),
                ("\(d.dblock.lver)", 6), (flags, 0),
            ])
        }
        return out
    }
}
