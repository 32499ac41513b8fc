import Foundation
import Testing
import TestSupport

/// The real sanlock binary (Debian's `sanlock` package). CI installs it; a test that needs it
/// fails, never skips, when it is missing.
enum Sanlock {
    static func direct(_ args: [String]) -> Run {
        #expect(Programs.isInstalled("sanlock"), "sanlock is not installed (apt-get install sanlock)")
        return Programs.run("sanlock", ["direct"] + args)
    }

    /// `sanlock direct read_leader` output as field → value, or nil when it failed.
    static func readLeader(_ flag: String, _ spec: String) -> [String: String]? {
        let r = direct(["read_leader", flag, spec])
        guard r.status == 0, r.stdout.contains("read_leader done 0") else { return nil }
        return fields(r.stdout)
    }

    /// Parses "key value" lines, skipping the "... done N" status line.
    static func fields(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.contains(" done ") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            out[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return out
    }

    static func alignFlag(_ alignSize: Int) -> String { "\(alignSize >> 20)M" }
}

enum DiskLease {
    @discardableResult
    static func run(_ args: [String]) -> Run { Programs.run(Programs.disklease, args) }
}
