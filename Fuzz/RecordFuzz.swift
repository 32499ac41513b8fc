// libFuzzer target: every on-disk record decoder and checker, on arbitrary bytes at an
// arbitrary device offset. A trap (overflow, out of bounds, force unwrap) is a finding; a
// thrown FormatError is the expected answer to bad input. Built by Fuzz/run.sh with the
// LeaseFormat sources and -sanitize=fuzzer.

@_cdecl("LLVMFuzzerTestOneInput")
public func recordFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard bytes.count >= 8 else { return 0 }
    // The first 8 bytes choose the device offset (any value, overflow included).
    var offset: UInt64 = 0
    for i in 0..<8 { offset |= UInt64(bytes[i]) << (8 * UInt64(i)) }
    bytes.removeFirst(8)
    for ss in [512, 4096] {
        var sector = Array(bytes.prefix(ss))
        sector += [UInt8](repeating: 0, count: ss - sector.count)
        _ = try? LeaderRecord.verifyDelta(sector, deviceOffset: offset, space: "LS")
        _ = try? LeaderRecord.verifyPaxos(sector, deviceOffset: offset, space: "LS", resource: "r", hostID: 1)
        _ = try? LeaderRecord(decoding: sector).geometry(deviceOffset: offset)
        _ = try? PaxosDblock.verify(sector, deviceOffset: offset)
        _ = try? RequestRecord.verify(sector, deviceOffset: offset)
        _ = try? EpochRecord.verify(sector, deviceOffset: offset, space: "LS")
        _ = EpochStamp(sector: sector)
        // A whole area whose sector 0 is the input: inspect walks every slot or dblock.
        if let g = AreaReport.geometry(ofAreaStart: sector, deviceOffset: offset), g.alignSize <= 1 << 20 {
            var area = [UInt8](repeating: 0, count: g.alignSize)
            area.replaceSubrange(0..<min(bytes.count, area.count), with: bytes.prefix(area.count))
            _ = AreaReport.inspect(area, deviceOffset: offset)
        }
    }
    return 0
}
