import Foundation
import LeaseFormat
import Testing

/// Inputs the fuzz targets (Fuzz/) once crashed on, kept as regressions: each must be answered
/// with a verdict or a typed error, never a trap.
@Suite struct FuzzRegressionTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/records")

    /// A valid resource leader presented at device offset 2^64 − 512: the area would end past
    /// 2^64 (AreaLayout.requestOffset trapped).
    @Test func anAreaEndingPast2To64IsOutOfRange() throws {
        let input = try [UInt8](Data(contentsOf: Self.corpus.appendingPathComponent("leader-offset-near-max")))
        let offset = (0..<8).reduce(UInt64(0)) { $0 | UInt64(input[$1]) << (8 * UInt64($1)) }
        #expect(offset == UInt64.max - 511)
        var area = [UInt8](repeating: 0, count: 1 << 20)
        area.replaceSubrange(0..<512, with: input[8..<520])
        guard case .unknown(_, let verdict, _) = AreaReport.inspect(area, deviceOffset: offset) else {
            Issue.record("expected an unknown area")
            return
        }
        #expect(verdict == .outOfRange)
        #expect(AreaReport.inspect(area, deviceOffset: 1 << 20).isCorrupt == false)
    }
}
