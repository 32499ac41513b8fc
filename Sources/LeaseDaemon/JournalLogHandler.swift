import Foundation
import Logging

/// Log lines for a system daemon. When stderr goes to the journal (systemd sets
/// `JOURNAL_STREAM`), each line starts with its syslog priority as `<N>`, so journald stores
/// it at that priority and `journalctl -p err` shows critical lines; otherwise each line starts
/// with a timestamp and the level. Then the module that logged (`[LeaseDaemon]`), the message,
/// and the metadata, sorted by key.
public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider? = nil
    let label: String
    let journal: Bool
    let write: @Sendable (String) -> Void

    /// `environment` decides the journal form; `write` receives each whole line.
    public init(
        label: String, level: Logger.Level,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.label = label
        self.logLevel = level
        self.journal = environment["JOURNAL_STREAM"] != nil
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let p = metadataProvider { all.merge(p.get()) { $1 } }
        if let m = event.metadata { all.merge(m) { $1 } }
        write(line(event.level, "[\(event.source)] \(event.message)", all))
    }

    /// syslog priorities (sd-daemon(3)): debug 7 ... crit 2.
    static func priority(_ l: Logger.Level) -> Int {
        switch l {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    func line(_ level: Logger.Level, _ message: String, _ meta: Logger.Metadata) -> String {
        let fields = meta.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let tail = fields.isEmpty ? "" : " " + fields
        if journal { return "<\(Self.priority(level))>\(label): \(message)\(tail)\n" }
        let stamp = ISO8601DateFormatter().string(from: Date())
        return "\(stamp) \(level) \(label): \(message)\(tail)\n"
    }
}

extension Logger.Level {
    /// A level named in config (`log-level`): trace, debug, info, notice, warning, error,
    /// critical (sanlock's `err` and `warn` too).
    public init?(configName s: String) {
        switch s {
        case "err": self = .error
        case "warn": self = .warning
        case "crit": self = .critical
        default: self.init(rawValue: s)
        }
    }
}
