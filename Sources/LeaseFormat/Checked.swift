/// Arithmetic on values that come from the disk or a request. A record can carry any value
/// its checksum covers, so sums that could pass 2^64 are checked and fail as bad input naming
/// the field, never as a trap (docs/AGREEMENT.md rule 9).
public enum Checked {
    /// `a + b`, or `.outOfRange` naming `field` and where it was read.
    @inline(__always)
    public static func add(_ a: UInt64, _ b: UInt64, field: String, offset: UInt64) throws(FormatError) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        if overflow { throw .outOfRange(field: field, value: a, offset: offset) }
        return sum
    }

    /// `offset + length` for a byte range, or `.outOfRange`.
    public static func end(_ offset: UInt64, _ length: Int, field: String) throws(FormatError) -> UInt64 {
        guard length >= 0 else { throw .outOfRange(field: field, value: offset, offset: offset) }
        return try add(offset, UInt64(length), field: field, offset: offset)
    }
}
