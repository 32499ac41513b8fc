import DiskLeaseClient
import Foundation
import HostCore

#if canImport(Glibc)
import Glibc
#endif

/// The leases local processes hold, carried across daemon restarts in
/// `<run_dir>/leases.json`: the next incarnation stops those holders before it rejoins.
///
/// Guarantees: a save replaces the file atomically (a temporary file, then rename), so a crash
/// leaves the old list or the new one; a save that fails says so (the caller fails the reply
/// that needed it); a damaged file is read entry by entry, keeping every complete entry.
struct StateFile: Sendable {
    let path: String

    init(runDir: String) { path = (runDir as NSString).appendingPathComponent("leases.json") }

    struct Loaded {
        var leases: [PersistedLease]
        /// Entries that could not be read, with why.
        var damaged: [String]
    }

    func load() -> Loaded {
        guard let d = FileManager.default.contents(atPath: path) else { return Loaded(leases: [], damaged: []) }
        if let all = try? JSONDecoder().decode([PersistedLease].self, from: d) {
            return Loaded(leases: all, damaged: [])
        }
        // Damaged (truncated, edited): keep every entry that still parses on its own.
        var leases: [PersistedLease] = [], damaged: [String] = []
        let text = String(decoding: d, as: UTF8.self)
        for chunk in Self.objects(in: text) {
            if let l = try? JSONDecoder().decode(PersistedLease.self, from: Data(chunk.utf8)) {
                leases.append(l)
            } else {
                damaged.append(String(chunk.prefix(120)))
            }
        }
        if leases.isEmpty && damaged.isEmpty { damaged.append(String(text.prefix(120))) }
        return Loaded(leases: leases, damaged: damaged)
    }

    /// The top-level `{...}` objects of a JSON array, as text (strings are respected).
    static func objects(in text: String) -> [String] {
        var out: [String] = [], depth = 0, inString = false, escaped = false
        var current = ""
        for c in text {
            if depth > 0 { current.append(c) }
            if inString {
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    inString = false
                }
                continue
            }
            switch c {
            case "\"": inString = true
            case "{":
                if depth == 0 { current = "{" }
                depth += 1
            case "}":
                depth -= 1
                if depth == 0 { out.append(current) }
            default: break
            }
        }
        if depth > 0 && !current.isEmpty { out.append(current) }
        return out
    }

    /// Writes the list atomically; throws with the reason when it could not.
    func save(_ leases: [PersistedLease]) throws(WireError) {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        guard let d = try? e.encode(leases) else { throw WireError(.internalError, "cannot encode the lease state") }
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WireError(.io, "\(tmp): \(String(cString: strerror(errno)))") }
        var written = 0
        let ok: Bool = d.withUnsafeBytes { raw in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                written += n
            }
            return true
        }
        let why = String(cString: strerror(errno))
        close(fd)
        guard ok else {
            unlink(tmp)
            throw WireError(.io, "\(tmp): cannot write the lease state: \(why)")
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw WireError(.io, "\(path): cannot replace the lease state: \(e)")
        }
    }
}
