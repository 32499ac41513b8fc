import Foundation
import Testing
import TestSupport

/// `init` refuses to write over any sector of a valid area, not only one that starts at the
/// same offset; nothing is written when it refuses.
@Suite struct InitOverlapTests {
    @Test func initNeverOverlapsAValidNeighbour() {
        let path = Scratch.file(size: 4 << 20)
        let cli = Programs.disklease
        #expect(Programs.run(cli, ["init", "lockspace", "LS:0:\(path):0"]).status == 0)
        #expect(Programs.run(cli, ["init", "resource", "LS:vm1:\(path):1048576"]).status == 0)
        #expect(Programs.run(cli, ["init", "resource", "LS:vm2:\(path):2097152"]).status == 0)
        let before = Scratch.bytes(of: path)
        // 1.5 MiB: inside vm1's area and running into vm2's.
        let inside = Programs.run(cli, ["init", "resource", "LS:vm3:\(path):1572864"])
        #expect(inside.status == 73 && inside.stderr.contains("offset 1048576"), "\(inside)")
        // A lockspace at 512 would overwrite the lockspace at 0 from its second slot on.
        let shifted = Programs.run(cli, ["init", "lockspace", "LS2:0:\(path):512"])
        #expect(shifted.status == 73 && shifted.stderr.contains("lockspace"), "\(shifted)")
        #expect(Scratch.bytes(of: path) == before, "a refused init wrote to the device")
        // Right after the last area: fine.
        #expect(Programs.run(cli, ["init", "resource", "LS:vm3:\(path):3145728"]).status == 0)
        // --force still overwrites.
        #expect(Programs.run(cli, ["init", "resource", "LS:vm3:\(path):1572864", "--force"]).status == 0)
    }
}
