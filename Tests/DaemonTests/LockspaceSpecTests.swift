import DiskLeaseClient
import Testing

/// One parser for sanlock's lockspace strings, shared by the CLI, the config file and the
/// socket: '\:' is a colon inside the path, and the daemon's form refuses host_id 0.
@Suite struct LockspaceSpecTests {
    @Test func escapedColonsStayInThePath() throws {
        let s = try LockspaceSpec(parsing: #"LS:3:/dev/disk/by-path/pci-0000\:00\:1f.2-ata-1:1048576"#)
        #expect(
            s
                == LockspaceSpec(
                    name: "LS", hostID: 3, path: "/dev/disk/by-path/pci-0000:00:1f.2-ata-1", offset: 1_048_576))
    }

    @Test func malformedOrHostZeroIsABadRequest() {
        for bad in [
            "LS:1:/dev/sdb", "LS:x:/dev/sdb:0", ":1:/dev/sdb:0", "LS:1::0", "LS:0:/dev/sdb:0", "LS:1:/dev/sdb:-1",
        ] {
            #expect(throws: WireError.self, "\(bad)") { try LockspaceSpec(parsing: bad) }
        }
        #expect(LockspaceSpec(sanlock: "LS:0:/dev/sdb:0", minimumHostID: 0)?.hostID == 0)
    }
}
