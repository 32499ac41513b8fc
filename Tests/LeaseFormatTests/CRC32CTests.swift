import Testing
@testable import LeaseFormat

@Suite struct CRC32CTests {
    @Test func sanlockVector() {
        #expect(CRC32C.sanlock(Array("123456789".utf8)) == 0xE8C7_BB34)
    }

    @Test func standardVectorProvesTheTable() {
        #expect(CRC32C.standard(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func fortyEightZeroBytes() {
        #expect(CRC32C.sanlock([UInt8](repeating: 0, count: 48)) == 0xCB5A_D842)
    }

    @Test func sanlockValueFromLibraryStyleAPI() {
        // SANLOCK-FORMAT.md §2: sanlock(x) == NOT(lib(0x00000001, x)) for a ~update(~crc) API.
        let data = Array("disklease".utf8)
        let lib = ~CRC32C.update(~UInt32(1), data)
        #expect(CRC32C.sanlock(data) == ~lib)
    }
}
