import Foundation
import Logging

@_exported import HostCore

/// Every daemon option. Each is a flag of `diskleased` and a `key = value` line of the config
/// file (`/etc/disklease/diskleased.conf` by default); flags win over the file.
public struct DaemonConfig: Sendable {
    public var runDir = "/run/disklease"
    /// Lockspaces joined at start: `name:host_id:path:offset` (config key `lockspace`, repeatable).
    public var lockspaces: [String] = []
    public var ioTimeout = 10
    public var watchdogFireSeconds = 60
    /// live, full: the read mode of ballots (full is sanlock's; live falls back to full when
    /// a sanlock host is seen).
    public var readMode = "live"
    /// The host name in our delta leases (`dl:` is added): stable across restarts, so a
    /// restart takes the same-name fast path. Default: the node name and machine id.
    public var hostName: String? = nil
    /// Besides root, who may use the socket.
    public var allowUIDs: [UInt32] = []
    public var allowGIDs: [UInt32] = []
    /// Devices and directories non-root clients may name as lockspace paths (`allow-path`,
    /// repeatable); root may name any.
    public var allowPaths: [String] = []
    /// The socket's group (`socket-group`, a name or a gid): the socket is 0660, so only root
    /// and this group can connect at all. nil keeps the daemon's own group.
    public var socketGID: UInt32? = nil
    /// Connections served at once; more are refused with `busy` (`max-connections`).
    public var maxConnections = 256
    /// Connections one non-root uid may hold at once (`max-connections-per-uid`).
    public var maxConnectionsPerUID = 64
    /// Run when a lockspace fails, once per lease holder: `hook <pid> <lockspace> <resource>`.
    public var killHook: String? = nil
    /// How long the kill hook may take before SIGTERM, and SIGTERM before SIGKILL.
    public var killGraceSeconds = 5
    public var termGraceSeconds = 5
    /// The Linux watchdog device; "none" to run without one (self-fencing only).
    public var watchdogDevice = "/dev/watchdog"
    public var orphans = OrphanPolicy.release
    /// Prometheus metrics on 127.0.0.1:port when set.
    public var metricsPort: Int? = nil
    /// Storage-loss drill: while this file exists, every I/O of the daemon fails as if the
    /// device were gone (a detached LUN), so fencing can be exercised on a healthy disk.
    public var faultFile: String? = nil
    /// Lowest level logged (`log-level`): trace, debug, info, notice, warning, error, critical.
    public var logLevel = "info"
    /// The program the guard process runs (`PROGRAM --guard`); nil runs no guard.
    public var guardProgram: String? = nil

    public init() {}

    public static let defaultFile = "/etc/disklease/diskleased.conf"

    /// Applies a config file: `key = value` lines, `#` comments, keys as the flags without
    /// dashes (`io-timeout = 2`, `lockspace = LS:1:/dev/sdb:0`, `allow-uid = 107`); sanlock's
    /// underscore spellings (`io_timeout`, `watchdog_fire_timeout`) are the same keys.
    public mutating func apply(file path: String) throws(ConfigError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
            let data = FileHandle(forReadingAtPath: path)?.readDataToEndOfFile(),
            let text = String(data: data, encoding: .utf8)
        else {
            throw ConfigError(file: path, line: 0, message: "cannot read the config file (not a readable UTF-8 file)")
        }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line =
                raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if line.isEmpty { continue }
            guard let eq = line.firstIndex(of: "=") else {
                throw ConfigError(file: path, line: i + 1, message: "expected key = value")
            }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            do {
                try set(key, value)
            } catch let m {
                throw ConfigError(file: path, line: i + 1, message: m.message)
            }
        }
    }

    struct Bad: Error { var message: String }

    mutating func set(_ spelled: String, _ value: String) throws(Bad) {
        let key = spelled.replacingOccurrences(of: "_", with: "-")
        func int() throws(Bad) -> Int {
            guard let v = Int(value), v >= 0 else {
                throw Bad(message: "\(key): \(value) is not a non-negative integer")
            }
            return v
        }
        func int(_ range: ClosedRange<Int>) throws(Bad) -> Int {
            let v = try int()
            guard range.contains(v) else {
                throw Bad(message: "\(key): \(value) is outside \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
        func id() throws(Bad) -> UInt32 {
            guard let v = UInt32(value), v != UInt32.max else {
                throw Bad(message: "\(key): \(value) is not a uid or gid")
            }
            return v
        }
        switch key {
        case "run-dir": runDir = value
        case "lockspace": lockspaces.append(value)
        case "io-timeout": ioTimeout = try int(1...255)
        case "watchdog-fire-timeout": watchdogFireSeconds = try int(1...3600)
        case "read-mode":
            guard value == "live" || value == "full" else { throw Bad(message: "read-mode is live or full") }
            readMode = value
        case "host-name": hostName = value
        case "allow-uid": allowUIDs.append(try id())
        case "allow-gid": allowGIDs.append(try id())
        case "allow-path":
            guard value.hasPrefix("/") else { throw Bad(message: "allow-path must be absolute: \(value)") }
            allowPaths.append(value)
        case "socket-group": socketGID = try Self.group(value)
        case "max-connections":
            maxConnections = try int(1...65_536)
        case "max-connections-per-uid": maxConnectionsPerUID = try int(1...65_536)
        case "kill-hook": killHook = value
        case "kill-grace": killGraceSeconds = try int(0...3600)
        case "term-grace": termGraceSeconds = try int(0...3600)
        case "watchdog-device": watchdogDevice = value
        case "orphans":
            guard let p = OrphanPolicy(rawValue: value) else { throw Bad(message: "orphans is release or adopt") }
            orphans = p
        case "metrics-port": metricsPort = try int(1...65535)
        case "fault-file": faultFile = value
        case "log-level":
            guard Logger.Level(configName: value) != nil else {
                throw Bad(message: "log-level: \(value) is not trace, debug, info, notice, warning, error or critical")
            }
            logLevel = value
        default: throw Bad(message: "unknown key \(spelled)")
        }
    }
}

extension DaemonConfig {
    /// A group by name or number.
    static func group(_ value: String) throws(Bad) -> UInt32 {
        if let gid = UInt32(value) { return gid }
        guard let g = getgrnam(value) else { throw Bad(message: "socket-group: no group named \(value)") }
        return g.pointee.gr_gid
    }

    /// Sets `key` as a command-line option would (the same checks as the config file).
    public mutating func set(option key: String, _ value: String) throws(ConfigError) {
        do {
            try set(key, value)
        } catch let m {
            throw ConfigError(file: "--\(key)", line: 0, message: m.message)
        }
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
}
