import DiskLeaseClient
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct ClientLibraryTests {
    /// withLease releases on return and on throw; the fencing token grows; the metrics
    /// endpoint reports the acquires.
    @Test func withLeaseReleasesOnEveryExitPathAndMetricsCountIt() throws {
        let path = leaseFile()
        let dir = Scratch.directory("library")
        let a = try DaemonProcess(hostID: 1, lease: path, dir: dir, extra: ["--metrics-port", "19471"])
        try a.waitJoined()
        let client = try DiskLeaseClient(runDir: a.runDir)
        let vm1 = ResourceRef(lockspace: "LS", name: "vm1", path: path, offset: 1 << 20)

        let first = try client.withLease(vm1) { token in
            #expect(leaderField(path, "vm1", "timestamp") != "0")
            return token
        }
        #expect(first == 1)
        #expect(leaderField(path, "vm1", "timestamp") == "0")

        struct Boom: Error {}
        #expect(throws: Boom.self) { try client.withLease(vm1) { _ in throw Boom() } }
        #expect(leaderField(path, "vm1", "timestamp") == "0")
        #expect(leaderField(path, "vm1", "lver") == "2")

        // Try-acquire of a lease this process holds on another connection: refused at once.
        let other = try DiskLeaseClient(runDir: a.runDir)
        let token = try other.acquire(vm1)
        #expect(token == 3)
        #expect(throws: WireError.self) { try client.acquire(vm1, wait: false) }
        do { _ = try client.acquire(vm1, wait: false) } catch { #expect(error.code == .busy) }
        // A timed acquire gives up with timeout.
        do { _ = try client.acquire(vm1, timeoutMs: 300) } catch { #expect(error.code == .timeout) }
        try other.release(vm1)
        #expect(try client.acquire(vm1, timeoutMs: 5000) == 4)
        // Released before the daemon stops: this test runner is the holder, and a daemon killed
        // under a held lease leaves its guard to stop the holder once the lease expires.
        try client.release(vm1)

        let metrics = Programs.run("/usr/bin/curl", ["-s", "http://127.0.0.1:19471/metrics"]).stdout
        #expect(metrics.contains("disklease_acquires_total"), "\(metrics.prefix(400))")
        #expect(metrics.contains("disklease_renewal_seconds"))
        #expect(metrics.contains("disklease_hosts{"))
    }
}
