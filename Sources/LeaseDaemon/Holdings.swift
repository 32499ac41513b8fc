import DiskLeaseClient
import DiskPaxos
import Foundation

/// A resource as the daemon names it: lockspace and resource name (one area per name).
struct ResourceKey: Hashable, Comparable, CustomStringConvertible {
    var lockspace: String
    var name: String
    static func < (a: Self, b: Self) -> Bool { (a.lockspace, a.name) < (b.lockspace, b.name) }
    var description: String { "\(lockspace):\(name)" }
}

/// One local process's hold on a lease. Several processes may share one SH lease of this host
/// (one grant on disk, counted here); an EX lease has exactly one holding.
final class Holding {
    let key: ResourceKey
    let path: String
    let offset: UInt64
    var grant: Grant
    var clientID: UInt64?
    var pid: Int32
    let persistent: Bool
    /// Held on disk for nobody: a persistent lease whose process exited, or one adopted from
    /// the previous incarnation. The next local acquire of it takes it over without I/O.
    var orphan: Bool
    var releaseRequested = false

    init(key: ResourceKey, path: String, offset: UInt64, grant: Grant, clientID: UInt64?, pid: Int32,
         persistent: Bool, orphan: Bool) {
        self.key = key
        self.path = path
        self.offset = offset
        self.grant = grant
        self.clientID = clientID
        self.pid = pid
        self.persistent = persistent
        self.orphan = orphan
    }

    var info: LeaseInfo {
        LeaseInfo(lockspace: key.lockspace, resource: key.name, path: path, offset: offset, lver: grant.lver,
                  shared: grant.shared, pid: pid, persistent: persistent, orphan: orphan, releaseRequested: releaseRequested)
    }
}

/// The leases of the previous incarnation, and the file that carries them across restarts.
struct LeaseStateFile {
    let path: String

    init(runDir: String) { path = (runDir as NSString).appendingPathComponent("leases.json") }

    func load() -> [LeaseInfo] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return (try? Wire.decoder().decode([LeaseInfo].self, from: d)) ?? []
    }

    /// Written atomically (rename) after every change, so a crash leaves the old or the new list.
    func save(_ leases: [LeaseInfo]) {
        guard let d = try? Wire.encoder().encode(leases) else { return }
        guard FileManager.default.createFile(atPath: path + ".tmp", contents: d) else { return }
        _ = rename(path + ".tmp", path)
    }
}
