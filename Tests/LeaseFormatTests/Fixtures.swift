import Foundation

/// Sectors that sanlock 3.8.5 itself wrote (Debian bookworm), kept as hex: a lockspace
/// "LS1" with host 1 acquired, and a resource "vm-disk-1" acquired by host 1 (lver 1).
enum Fixture {
    static func sector(_ name: String) -> [UInt8] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let hex = try! String(contentsOf: dir.appendingPathComponent(name + ".hex"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }
}
