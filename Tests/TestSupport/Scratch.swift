import Foundation

/// Files for tests, on the filesystem the package lives on (ext4 here), never tmpfs: tmpfs
/// accepts misaligned O_DIRECT and would hide alignment bugs.
public enum Scratch {
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A fresh directory under .build/test-scratch.
    public static func directory(_ label: String = "t") -> URL {
        let dir = packageRoot.appendingPathComponent(".build/test-scratch/\(label)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A zero-filled file of `size` bytes.
    public static func file(_ name: String = "lease.img", size: Int) -> String {
        let path = directory().appendingPathComponent(name).path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let h = FileHandle(forWritingAtPath: path)!
        try! h.truncate(atOffset: UInt64(size))
        try! h.close()
        return path
    }

    /// A file of `size` bytes of real (allocated, non-zero) data, so O_DIRECT reads reach the
    /// disk instead of being answered from holes.
    public static func filledFile(_ name: String = "data.img", size: Int) -> String {
        let path = directory().appendingPathComponent(name).path
        let chunk = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) })
        var data = Data()
        while data.count < size { data.append(chunk.prefix(size - data.count)) }
        _ = FileManager.default.createFile(atPath: path, contents: data)
        return path
    }

    public static func bytes(of path: String) -> [UInt8] {
        let h = FileHandle(forReadingAtPath: path)!
        defer { try? h.close() }
        return [UInt8](try! h.readToEnd() ?? Data())
    }

    public static func remove(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The result of running a program to completion.
public struct Run: CustomStringConvertible {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    public var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

public enum Programs {
    /// The directory holding the test bundle, where SwiftPM also puts our executables.
    public static let buildDirectory: URL = {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }()

    /// The `disklease` executable from this build.
    public static var disklease: String {
        let p = buildDirectory.appendingPathComponent("disklease").path
        precondition(
            FileManager.default.isExecutableFile(atPath: p), "disklease not built at \(p): run swift build first")
        return p
    }

    /// The `diskleased` executable from this build.
    public static var diskleased: String {
        let p = buildDirectory.appendingPathComponent("diskleased").path
        precondition(
            FileManager.default.isExecutableFile(atPath: p), "diskleased not built at \(p): run swift build first")
        return p
    }

    /// Runs `executable` with `arguments`; `environment` entries are added to ours.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : which(executable))
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try! p.run()
        // Read before waiting, so a chatty child cannot fill the pipe and deadlock.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(
            status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
            stderr: String(decoding: e, as: UTF8.self))
    }

    /// Resolves a program name on PATH (plus /usr/sbin and /sbin, where sanlock and losetup live).
    public static func which(_ name: String) -> String {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return name
    }

    public static func isInstalled(_ name: String) -> Bool { which(name).hasPrefix("/") }
}

/// A loop device over a scratch file, with the given logical sector size (root only).
public final class LoopDevice {
    public let path: String
    public let backingFile: String

    public init(size: Int, sectorSize: Int) throws {
        backingFile = Scratch.file("loop-backing.img", size: size)
        let r = Programs.run(
            "losetup", ["--find", "--show", "--direct-io=on", "--sector-size", "\(sectorSize)", backingFile])
        guard r.status == 0 else { throw LoopError(message: r.description) }
        path = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    deinit {
        Programs.run("losetup", ["-d", path])
        Scratch.remove(backingFile)
    }

    public struct LoopError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { "losetup failed: \(message)" }
    }
}

/// Tools/faultio built once per test run: the LD_PRELOAD shim that delays, hangs, fails or
/// makes late the io_submit calls of a real process, or shifts its wall clock.
public enum FaultIO {
    public static let library: String = {
        let out = Scratch.packageRoot.appendingPathComponent(".build/faultio/faultio.so").path
        let src = Scratch.packageRoot.appendingPathComponent("Tools/faultio/faultio.c").path
        try? FileManager.default.createDirectory(
            atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let r = Programs.run("gcc", ["-O2", "-shared", "-fPIC", "-o", out, src, "-ldl", "-lpthread"])
        precondition(r.status == 0, "cannot build faultio: \(r)")
        return out
    }()

    /// The environment that preloads it with these settings.
    public static func environment(_ settings: [String: String]) -> [String: String] {
        var e = settings
        e["LD_PRELOAD"] = library
        return e
    }
}
