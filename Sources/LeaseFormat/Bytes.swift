/// Little-endian field access on sector buffers. Every on-disk integer goes through here, so
/// byte order is handled in exactly one place (sanlock's `ondisk.c` does the same).
extension Array where Element == UInt8 {
    @inline(__always)
    func le<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        precondition(offset + MemoryLayout<T>.size <= count, "field read past the buffer")
        return withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    @inline(__always)
    mutating func putLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset + MemoryLayout<T>.size <= count, "field write past the buffer")
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }

    /// A NUL-padded name field of `size` bytes: the bytes up to the first NUL, at most `size`.
    func name(_ offset: Int, size: Int = LeaseName.fieldSize) -> String {
        let field = self[offset..<offset + size]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[offset..<end], as: UTF8.self)
    }

    /// Writes a name with strncpy semantics: NUL padded, no terminator when it fills the field.
    mutating func putName(_ name: String, at offset: Int, size: Int = LeaseName.fieldSize) {
        let utf8 = Array(name.utf8.prefix(size))
        for i in 0..<size { self[offset + i] = i < utf8.count ? utf8[i] : 0 }
    }
}

extension Collection where Element == UInt8 {
    /// True when every byte is zero.
    public var isAllZero: Bool { allSatisfy { $0 == 0 } }
}

/// Name fields: lockspace, resource and host names share sanlock's 48-byte NAME_ID_SIZE.
public enum LeaseName {
    public static let fieldSize = 48
    /// Host names in delta leases are at most 47 characters plus a NUL.
    public static let hostNameMax = 47

    /// Checks a lockspace or resource name: 1...48 bytes of UTF-8, no NUL, no ':'.
    public static func validate(_ name: String, what: String, max: Int = fieldSize) throws(FormatError) {
        let n = name.utf8.count
        guard n > 0, n <= max, !name.utf8.contains(0), !name.contains(":") else {
            throw .badName(what: what, name: name, maxBytes: max)
        }
    }
}
