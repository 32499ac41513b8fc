/// sanlock's checksum: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), table driven,
/// seeded with 0xFFFFFFFE (NOT 1) and with **no final xor**: the raw register is stored.
/// Vectors: "123456789" → 0xE8C7BB34; 48 zero bytes → 0xCB5AD842. (The standard CRC-32C of
/// "123456789" is 0xE3069283; `standard(_:)` gives it, to show the table is the usual one.)
public enum CRC32C {
    public static let sanlockSeed: UInt32 = 0xFFFF_FFFE

    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// The raw table update over `bytes`, starting from `crc`.
    public static func update<C: Collection>(_ crc: UInt32, _ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c = crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        return c
    }

    /// The checksum sanlock stores for `bytes`.
    public static func sanlock<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        update(sanlockSeed, bytes)
    }

    /// Standard CRC-32C (seed and final xor 0xFFFFFFFF), for cross-checking the table.
    public static func standard<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        ~update(0xFFFF_FFFF, bytes)
    }
}
