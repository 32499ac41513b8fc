import Foundation
import LeaseFormat
import Testing
import TestSupport

/// Bad input: one clear line naming path and offset, a distinct exit code, and not one byte
/// of the device changed.
@Suite struct BadInputTests {
    /// Runs `args` and checks exit status, the message, and that `path` is byte-for-byte unchanged.
    func expectRefused(
        _ args: [String], status: Int32, mentions: [String], unchanged path: String?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let before = path.map(Scratch.bytes(of:))
        let r = DiskLease.run(args)
        #expect(r.status == status, "\(r)", sourceLocation: sourceLocation)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line expected: \(r.stderr)", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(r.stderr.contains(m), "stderr lacks '\(m)': \(r.stderr)", sourceLocation: sourceLocation)
        }
        if let path {
            #expect(Scratch.bytes(of: path) == before!, "device bytes changed", sourceLocation: sourceLocation)
        }
    }

    func lockspaceFile(size: Int = 2 << 20) -> String {
        let path = Scratch.file(size: size)
        #expect(DiskLease.run(["init", "lockspace", "LS:0:\(path):0"]).status == 0)
        #expect(DiskLease.run(["init", "resource", "LS:r1:\(path):1048576"]).status == 0)
        return path
    }

    @Test func missingPath() {
        expectRefused(
            ["dump", "/nonexistent/disk.img"], status: 66, mentions: ["/nonexistent/disk.img", "No such file"],
            unchanged: nil)
        expectRefused(
            ["init", "lockspace", "LS:0:/nonexistent/disk.img:0"], status: 66, mentions: ["/nonexistent/disk.img"],
            unchanged: nil)
    }

    @Test func deviceSmallerThanTheArea() {
        let path = Scratch.file(size: 512 * 1024)
        defer { Scratch.remove(path) }
        expectRefused(
            ["init", "lockspace", "LS:0:\(path):0"], status: 78, mentions: [path, "offset 0", "too small"],
            unchanged: path)
        expectRefused(
            ["init", "resource", "LS:r:\(path):4096", "-Z", "4096", "-A", "1M"], status: 78,
            mentions: [path, "offset 4096"], unchanged: path)
    }

    @Test func misalignedOffset() {
        let path = lockspaceFile()
        defer { Scratch.remove(path) }
        expectRefused(
            ["init", "resource", "LS:r2:\(path):1000"], status: 64, mentions: [path, "offset 1000"], unchanged: path)
        expectRefused(
            ["read-leader", "-r", "LS:r1:\(path):1000"], status: 64, mentions: [path, "offset 1000"], unchanged: path)
        expectRefused(["dump", "\(path):100"], status: 64, mentions: [path, "offset 100"], unchanged: path)
    }

    @Test func corruptChecksumAndWrongMagic() throws {
        let path = lockspaceFile()
        defer { Scratch.remove(path) }
        try patch(path, at: 512 * 2 + 60, [0x41])  // host 3's space_name padding: checksum now wrong
        try patch(path, at: 1048576, [0x00, 0x00, 0x00, 0x00])  // resource leader magic gone
        expectRefused(
            ["read-leader", "-s", "LS:3:\(path):0"], status: 65, mentions: [path, "offset 1024", "bad checksum"],
            unchanged: path)
        expectRefused(
            ["read-leader", "-r", "LS:r1:\(path):1048576"], status: 65,
            mentions: [path, "offset 1048576", "bad magic"], unchanged: path)
        // dump still prints the table, names the damage, and exits 65.
        let before = Scratch.bytes(of: path)
        let d = DiskLease.run(["dump", path])
        #expect(d.status == 65)
        #expect(d.stdout.contains("bad checksum") && d.stdout.contains("unknown area at offset 1048576"))
        #expect(Scratch.bytes(of: path) == before)
        // read-leader of an intact slot still works.
        #expect(DiskLease.run(["read-leader", "-s", "LS:1:\(path):0"]).status == 0)
    }

    @Test func wrongVersionAndWrongName() throws {
        let path = lockspaceFile()
        defer { Scratch.remove(path) }
        expectRefused(
            ["read-leader", "-r", "OTHER:r1:\(path):1048576"], status: 65, mentions: [path, "lockspace name is 'LS'"],
            unchanged: path)
        try patch(path, at: 1048576 + 6, [0x09])  // paxos major version 6 → 9
        expectRefused(
            ["read-leader", "-r", "LS:r1:\(path):1048576"], status: 65, mentions: [path, "offset 1048576", "version"],
            unchanged: path)
    }

    @Test func truncatedFile() throws {
        let path = lockspaceFile()
        defer { Scratch.remove(path) }
        let h = FileHandle(forWritingAtPath: path)!
        try h.truncate(atOffset: 1048576 + 300 * 1024)
        try h.close()
        expectRefused(["dump", path], status: 78, mentions: [path, "offset 1048576", "truncated"], unchanged: path)
        expectRefused(
            ["read-leader", "-r", "LS:r1:\(path):1048576"], status: 78, mentions: [path, "offset 1048576"],
            unchanged: path)
    }

    @Test func sectorSizeThatDoesNotMatchTheDevice() throws {
        let loop = try LoopDevice(size: 4 << 20, sectorSize: 4096)
        expectRefused(
            ["init", "lockspace", "LS:0:\(loop.path):0", "-Z", "512"], status: 78,
            mentions: [loop.path, "sector size 512 does not match 4096"], unchanged: loop.path)
        // A 512-byte area copied onto a 4K device is refused when read, too.
        let image = try InitImage.lockspace(space: "LS", geometry: .g512_1M, ioTimeout: 10).final
        let h = FileHandle(forWritingAtPath: loop.path)!
        try h.write(contentsOf: Data(image))
        try h.synchronize()
        try h.close()
        expectRefused(
            ["read-leader", "-s", "LS:1:\(loop.path):0"], status: 78, mentions: [loop.path, "offset 0"],
            unchanged: loop.path)
        // The right size works on the same device.
        #expect(
            DiskLease.run(["init", "lockspace", "LS:0:\(loop.path):0", "-Z", "4096", "-A", "1M", "--force"]).status == 0
        )
        #expect(DiskLease.run(["read-leader", "-s", "LS:250:\(loop.path):0"]).status == 0)
    }

    @Test func refusesToOverwriteWithoutForce() {
        let path = lockspaceFile()
        defer { Scratch.remove(path) }
        expectRefused(
            ["init", "resource", "X:y:\(path):0"], status: 73, mentions: [path, "offset 0", "lockspace 'LS'"],
            unchanged: path)
        expectRefused(
            ["init", "lockspace", "X:0:\(path):1048576"], status: 73, mentions: [path, "resource 'LS:r1'"],
            unchanged: path)
        #expect(DiskLease.run(["init", "lockspace", "X:0:\(path):1048576", "--force"]).status == 0)
        #expect(DiskLease.run(["read-leader", "-s", "X:1:\(path):1048576"]).status == 0)
    }

    @Test func malformedArgumentsAreUsageErrors() {
        for args in [
            ["init", "lockspace", "LS:x:/tmp/a:0"], ["init", "resource", "LS:r:/tmp/a"], ["dump", ""],
            ["init", "lockspace", "LS:0:/tmp/a:0", "-Z", "1024"], ["read-leader"],
        ] {
            let r = DiskLease.run(args)
            #expect(r.status == 64, "\(args): \(r)")
        }
    }

    func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
        let h = FileHandle(forUpdatingAtPath: path)!
        try h.seek(toOffset: offset)
        try h.write(contentsOf: Data(bytes))
        try h.close()
    }
}
