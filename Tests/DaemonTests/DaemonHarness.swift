import Foundation
import LeaseFormat
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// One real `diskleased` process with its own run directory, as a host of a test cluster.
/// Small timeouts (io_timeout 1, watchdog 4: host_dead_seconds 12) keep tests short.
final class DaemonProcess {
    let runDir: String
    let process = Process()
    let logPath: String
    let hostID: Int

    init(
        hostID: Int, lease: String, dir: URL, reuseRunDir: Bool = false, extra: [String] = [], ioTimeout: Int = 1,
        environment: [String: String] = [:]
    ) throws {
        self.hostID = hostID
        runDir = dir.appendingPathComponent("host\(hostID)").path
        if !reuseRunDir { try? FileManager.default.removeItem(atPath: runDir) }
        try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
        logPath = dir.appendingPathComponent("host\(hostID).log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Programs.diskleased)
        process.arguments =
            [
                "--config", "/dev/null", "--run-dir", runDir, "--lockspace", "LS:\(hostID):\(lease):0",
                "--io-timeout", "\(ioTimeout)", "--watchdog-fire-timeout", "4", "--kill-grace", "1", "--term-grace",
                "1",
                "--watchdog-device", "none", "--host-name", "h\(hostID)",
            ] + extra
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        if !environment.isEmpty {
            var env = ProcessInfo.processInfo.environment
            for (k, v) in environment { env[k] = v }
            process.environment = env
        }
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// `disklease client ...` against this daemon.
    @discardableResult
    func client(_ args: [String]) -> Run {
        Programs.run(Programs.disklease, ["client"] + [args[0], "--run-dir", runDir] + args.dropFirst())
    }

    /// Waits until the lockspace is joined and past its join wait (ballots possible).
    func waitJoined(seconds: Double = 30) throws {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            let r = client(["add-lockspace", "-s", "LS:\(hostID):\(lease):0", "--wait"])
            if r.status == 0 { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw HarnessError("host \(hostID) did not join: \(log)")
    }

    var lease: String {
        process.arguments![process.arguments!.firstIndex(of: "--lockspace")! + 1].split(separator: ":")[2].description
    }

    /// A program holding `resource` through this daemon until killed: `client command`.
    func holder(_ resource: String, extra: [String] = []) -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Programs.disklease)
        p.arguments = ["client", "command", "--run-dir", runDir, "-r", resource] + extra + ["--", "sleep", "600"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try! p.run()
        return p
    }

    func kill(_ signal: Int32) {
        Glibc.kill(process.processIdentifier, signal)
        if signal != SIGSTOP && signal != SIGCONT { process.waitUntilExit() }
    }

    /// A holder that proves mutual exclusion: through `client command`, it writes its own
    /// token into `token` every 20 ms and reads it back 10 ms later; any other writer in
    /// between is logged as VIOLATION in `log`, and each grant as "host lver".
    func tokenHolder(_ resource: String, token: String, log: String, extra: [String] = []) -> Process {
        let script = """
            echo "\(hostID) $DISKLEASE_LVER" >> \(log)
            while :; do
                echo "\(hostID) $$" > \(token)
                sleep 0.01
                [ "$(cat \(token) 2>/dev/null)" = "\(hostID) $$" ] || \
                    echo "VIOLATION host \(hostID) pid $$ saw $(cat \(token))" >> \(log)
                sleep 0.01
            done
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Programs.disklease)
        p.arguments =
            ["client", "command", "--run-dir", runDir, "-r", resource] + extra + ["--", "/bin/sh", "-c", script]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try! p.run()
        return p
    }

    deinit {
        if process.isRunning { kill(SIGKILL) }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Polls `condition` every 100 ms for up to `seconds`.
func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.1)
    }
    return condition()
}

/// A lease file with lockspace LS (io_timeout 1) at 0 and resource vm1 at 1 MiB.
func leaseFile() -> String {
    let path = Scratch.file(size: 3 << 20)
    precondition(
        Programs.run(Programs.disklease, ["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"]).status == 0)
    precondition(Programs.run(Programs.disklease, ["init", "resource", "LS:vm1:\(path):1048576"]).status == 0)
    precondition(Programs.run(Programs.disklease, ["init", "resource", "LS:vm2:\(path):2097152"]).status == 0)
    return path
}

/// A field of `disklease read-leader` (sanlock's `key value` lines).
/// `offset` defaults to where `leaseFile()` puts vm1 and vm2.
func leaderField(_ path: String, _ resource: String, _ key: String, offset: UInt64? = nil) -> String? {
    let at = offset ?? (resource == "vm1" ? 1048576 : 2097152)
    let out = Programs.run(Programs.disklease, ["read-leader", "-r", "LS:\(resource):\(path):\(at)"]).stdout
    for line in out.split(separator: "\n") {
        let kv = line.split(separator: " ", maxSplits: 1)
        if kv.count == 2 && kv[0] == key { return String(kv[1]) }
    }
    return nil
}

/// The timestamp field of host `h`'s delta lease (our monotonic seconds on this machine).
func deltaTimestamp(_ path: String, host h: Int) -> UInt64 {
    let bytes = Programs.run(
        "/bin/sh", ["-c", "dd if=\(path) bs=512 skip=\(h - 1) count=1 2>/dev/null | od -An -tu8 -j152 -N8"]
    ).stdout
    return UInt64(bytes.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
}
