import Foundation
import Testing
import TestSupport

/// `disklease host clear`: an operator frees the slot of a host confirmed off. A wrong
/// generation (the host rejoined since) or an unused slot is refused and nothing is written.
@Suite struct HostClearTests {
    @Test func clearsOnlyTheNamedIncarnation() {
        let path = Scratch.file(size: 1 << 20)
        let cli = Programs.disklease
        #expect(Programs.run(cli, ["init", "lockspace", "LS:0:\(path):0", "--io-timeout", "1"]).status == 0)
        #expect(Programs.run(cli, ["direct", "join", "-s", "LS:3:\(path):0", "--name", "dl:gone"]).status == 0)
        let before = Scratch.bytes(of: path)

        let stale = Programs.run(cli, ["host", "clear", "-s", "LS:3:\(path):0", "--generation", "7"])
        #expect(
            stale.status == 75 && stale.stderr.contains("offset 1024") && stale.stderr.contains("not 7"), "\(stale)")
        let unused = Programs.run(cli, ["host", "clear", "-s", "LS:4:\(path):0", "--generation", "1"])
        #expect(unused.status == 66 && unused.stderr.contains("offset 1536"), "\(unused)")
        #expect(Scratch.bytes(of: path) == before, "a refused clear wrote to the device")

        let ok = Programs.run(cli, ["host", "clear", "-s", "LS:3:\(path):0", "--generation", "1"])
        #expect(ok.status == 0, "\(ok)")
        let after = Scratch.bytes(of: path)
        let slot = 1024, epoch = 2000 * 512
        // The slot keeps its owner (byte 32) with timestamp 0 (bytes 152..<160), and the epoch
        // sector now names a clear (kind 3 at byte 48) of host 3 (byte 16).
        #expect(after[(slot + 152)..<(slot + 160)].allSatisfy { $0 == 0 })
        #expect(after[slot + 32] == 3)
        #expect(after[epoch + 16] == 3 && after[epoch + 48] == 3, "epoch sector: \(Array(after[epoch..<(epoch + 56)]))")
    }
}
