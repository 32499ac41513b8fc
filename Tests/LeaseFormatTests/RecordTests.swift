import Testing
@testable import LeaseFormat

@Suite struct LeaderRecordTests {
    @Test func decodesSanlockDeltaSector() throws {
        let s = Fixture.sector("delta-host1-acquired")
        let r = try LeaderRecord.verifyDelta(s, deviceOffset: 0, space: "LS1")
        #expect(r.magic == LeaderRecord.deltaMagic)
        #expect(r.version == 0x30004)
        #expect(r.flags == AlignFlag.align1M)
        #expect(r.sectorSize == 512)
        #expect(r.numHosts == 0 && r.maxHosts == 1)
        #expect(r.ownerID == 1 && r.ownerGeneration == 1 && r.lver == 0)
        #expect(r.resourceName.hasSuffix(".vm"))
        #expect(r.timestamp == 243)
        #expect(r.checksum == 0xC923_FC3A)
        #expect(r.ioTimeout == 10)
    }

    @Test func reencodingSanlockSectorsIsByteExact() {
        for name in ["delta-host1-acquired", "delta-host2-free", "paxos-leader-owned"] {
            let s = Fixture.sector(name)
            var r = LeaderRecord(decoding: s)
            var out = s
            out.replaceSubrange(0..<LeaderRecord.size, with: [UInt8](repeating: 0xAA, count: LeaderRecord.size))
            r.encode(into: &out)
            #expect(out == s, "\(name) did not re-encode to the same bytes")
        }
    }

    @Test func decodesSanlockPaxosLeader() throws {
        let s = Fixture.sector("paxos-leader-owned")
        let r = try LeaderRecord.verifyPaxos(s, deviceOffset: 1 << 20, space: "LS1", resource: "vm-disk-1", hostID: 1)
        #expect(r.numHosts == 2000 && r.maxHosts == 2000)
        #expect(r.ownerID == 1 && r.ownerGeneration == 1 && r.lver == 1)
        #expect(r.timestamp == 263 && r.writeID == 1 && r.writeGeneration == 1 && r.writeTimestamp == 263)
        #expect(r.checksum == 0x1584_5A4F)
    }

    @Test func roundTripsEveryField() {
        var r = LeaderRecord.paxos(
            space: "space", resource: String(repeating: "r", count: 48), geometry: .g4K_8M, numHosts: 7)
        r.ownerID = 7; r.ownerGeneration = 9; r.lver = 1 << 40; r.timestamp = 12345; r.unused1 = 3
        r.ioTimeout = 10; r.writeID = 7; r.writeGeneration = 9; r.writeTimestamp = 12346;
        r.flags |= LeaderRecord.flagShortHold
        let bytes = r.sector(size: 4096)
        let back = LeaderRecord(decoding: bytes)
        var expected = r
        expected.checksum = back.checksum
        #expect(back == expected)
        #expect(bytes[200...].isAllZero)
        #expect(back.resourceName.utf8.count == 48)  // a full name has no terminating NUL
    }

    @Test func checksumExcludesIoTimeoutAndWriteFields() {
        var r = LeaderRecord.delta(space: "ls", geometry: .g512_1M, ioTimeout: 10)
        let a = r.sector(size: 512)
        r.ioTimeout = 20; r.writeID = 5; r.writeTimestamp = 9
        let b = r.sector(size: 512)
        #expect(LeaderRecord(decoding: a).checksum == LeaderRecord(decoding: b).checksum)
    }

    @Test func corruptInputGivesTypedErrorsWithOffset() {
        var s = Fixture.sector("delta-host1-acquired")
        s[57] ^= 0x20  // "LS1" -> "Ls1": inside space_name, covered by the checksum
        #expect(
            throws: FormatError.lockspaceMismatch(
                offset: 512, found: LeaderRecord(decoding: s).spaceName, expected: "LS1")
        ) {
            try LeaderRecord.verifyDelta(s, deviceOffset: 512, space: "LS1")
        }
        #expect {
            try LeaderRecord.verifyDelta(s, deviceOffset: 512)
        } throws: {
            ($0 as? FormatError).map { if case .badChecksum(512, 0xC923_FC3A, _) = $0 { true } else { false } } ?? false
        }

        var m = Fixture.sector("delta-host1-acquired")
        m[0] = 0x11
        #expect(throws: FormatError.badMagic(offset: 4096, found: 0x1221_2011, expected: LeaderRecord.deltaMagic)) {
            try LeaderRecord.verifyDelta(m, deviceOffset: 4096)
        }
        var v = Fixture.sector("paxos-leader-owned")
        v.putLE(UInt32(0x0007_0004), at: 4)
        #expect(throws: FormatError.badVersion(offset: 0, found: 0x70004, expectedMajor: 6)) {
            try LeaderRecord.verifyPaxos(v, deviceOffset: 0)
        }
        #expect(throws: FormatError.numHostsTooSmall(offset: 0, numHosts: 2000, hostID: 2001)) {
            try LeaderRecord.verifyPaxos(Fixture.sector("paxos-leader-owned"), deviceOffset: 0, hostID: 2001)
        }
        #expect(throws: FormatError.emptyArea(offset: 0)) {
            try LeaderRecord.verifyPaxos([UInt8](repeating: 0, count: 512), deviceOffset: 0)
        }
        var c = Fixture.sector("paxos-leader-owned")
        c.putLE(LeaderRecord.paxosClearMagic, at: 0)
        #expect(throws: FormatError.clearedLease(offset: 0)) { try LeaderRecord.verifyPaxos(c, deviceOffset: 0) }
    }

    @Test func minorVersionIsIgnored() throws {
        var s = Fixture.sector("delta-host2-free")
        s.putLE(UInt32(0x0003_0009), at: 4)
        var r = LeaderRecord(decoding: s)
        r.encode(into: &s)
        _ = try LeaderRecord.verifyDelta(s, deviceOffset: 0)
    }
}

@Suite struct DblockTests {
    @Test func decodesSanlockDblock() throws {
        let s = Fixture.sector("dblock-host1")
        let d = try PaxosDblock.verify(s, deviceOffset: 0)
        #expect(d == PaxosDblock(mbal: 1, bal: 1, inp: 1, inp2: 1, inp3: 263, lver: 1).withChecksum(d.checksum))
        #expect(!ModeBlock(decoding: s).isShared)
        var copy = d
        var out = [UInt8](repeating: 0, count: 512)
        copy.encode(into: &out)
        #expect(out == s)
    }

    @Test func releasedFlagIsOutsideTheChecksum() throws {
        var s = Fixture.sector("dblock-host1")
        s.putLE(PaxosDblock.flagReleased, at: 52)
        let d = try PaxosDblock.verify(s, deviceOffset: 0)
        #expect(d.isReleased)
    }

    @Test func allZeroDblockIsValidAndAnyOtherBadChecksumIsNot() throws {
        _ = try PaxosDblock.verify([UInt8](repeating: 0, count: 512), deviceOffset: 0)
        var s = Fixture.sector("dblock-host1")
        s[8] ^= 1
        #expect(throws: FormatError.self) { try PaxosDblock.verify(s, deviceOffset: 1536) }
    }

    @Test func modeBlockAndRequestRoundTrip() throws {
        var sector = [UInt8](repeating: 0, count: 512)
        ModeBlock(flags: ModeBlock.flagShared, generation: 42).encode(into: &sector)
        #expect(ModeBlock(decoding: sector) == ModeBlock(flags: 1, generation: 42))
        #expect(sector.le(128, as: UInt32.self) == 1 && sector.le(136, as: UInt64.self) == 42)

        let req = try RequestRecord.verify(Fixture.sector("request-record"), deviceOffset: 512)
        #expect(req == RequestRecord())
        var out = [UInt8](repeating: 0, count: 512)
        RequestRecord(lver: 2, forceMode: RequestRecord.forceKill).encode(into: &out)
        #expect(RequestRecord(decoding: out) == RequestRecord(lver: 2, forceMode: 1))
        var bad = out
        bad[0] = 0
        #expect(throws: FormatError.self) { try RequestRecord.verify(bad, deviceOffset: 512) }
    }

    @Test func hostBitmapUsesLSBFirst() {
        var b = HostBitmap()
        b.insert(hostID: 1)
        b.insert(hostID: 10)
        var sector = [UInt8](repeating: 0, count: 512)
        b.encode(into: &sector)
        #expect(sector[256] == 0x01 && sector[257] == 0x02)
        #expect(HostBitmap(decoding: sector).hostIDs == [1, 10])
    }
}

extension PaxosDblock {
    func withChecksum(_ c: UInt32) -> PaxosDblock {
        var d = self
        d.checksum = c
        return d
    }
}

@Suite struct GeometryTests {
    @Test func sanlockTable() throws {
        let expected = [(512, 1, 2000), (4096, 1, 250), (4096, 2, 500), (4096, 4, 1000), (4096, 8, 2000)]
        for (s, a, m) in expected {
            let g = try Geometry(sectorSize: s, alignSize: a << 20)
            #expect(g.maxHosts == m)
            #expect(try Geometry.fromRecord(sectorSize: UInt32(s), flags: g.alignFlag, offset: 0) == g)
        }
        #expect(throws: FormatError.badGeometry(sectorSize: 512, alignSize: 2 << 20)) {
            try Geometry(sectorSize: 512, alignSize: 2 << 20)
        }
        // No align flag: the legacy default.
        #expect(try Geometry.fromRecord(sectorSize: 4096, flags: 0, offset: 0) == .g4K_8M)
        #expect(throws: FormatError.badSectorSize(offset: 7, found: 1024)) {
            try Geometry.fromRecord(sectorSize: 1024, flags: 0x10, offset: 7)
        }
    }

    @Test func layoutOffsets() {
        let l = AreaLayout(offset: 1 << 20, geometry: .g512_1M)
        #expect(l.deltaOffset(hostID: 1) == 1 << 20)
        #expect(l.dblockOffset(hostID: 1) == (1 << 20) + 1024)
        #expect(l.lvbOffset == (1 << 20) + 1_025_024)
        #expect(AreaLayout(offset: 0, geometry: .g4K_1M).lvbOffset == nil)
        #expect(AreaLayout(offset: 0, geometry: .g4K_8M).lvbOffset == 2002 * 4096)
    }
}

@Suite struct InitImageTests {
    @Test func lockspaceImageMatchesSanlockSectors() throws {
        let image = try InitImage.lockspace(space: "LS1", geometry: .g512_1M, ioTimeout: 10)
        let final = image.final
        #expect(final.count == 1 << 20)
        #expect(Array(final[512..<1024]) == Fixture.sector("delta-host2-free"))
        #expect(LeaderRecord(decoding: image.area).magic == 0)  // step 1 leaves sector 0 invalid
        #expect(final[(2000 * 512)...].isAllZero)
    }

    @Test func resourceImageHasLeaderAndRequest() throws {
        let image = try InitImage.resource(space: "LS1", resource: "vm-disk-1", geometry: .g4K_2M, numHosts: 4)
        let l = try LeaderRecord.verifyPaxos(image.final, deviceOffset: 0, space: "LS1", resource: "vm-disk-1")
        #expect(l.numHosts == 4 && l.maxHosts == 500 && l.flags == AlignFlag.align2M)
        #expect(Array(image.final[4096..<4096 + 512]) == Fixture.sector("request-record"))
        #expect(throws: FormatError.badNumHosts(numHosts: 501, maxHosts: 500)) {
            try InitImage.resource(space: "a", resource: "b", geometry: .g4K_2M, numHosts: 501)
        }
        #expect(throws: FormatError.self) { try InitImage.lockspace(space: "a:b", geometry: .g512_1M, ioTimeout: 10) }
        #expect(throws: FormatError.self) {
            try InitImage.lockspace(space: String(repeating: "x", count: 49), geometry: .g512_1M, ioTimeout: 10)
        }
    }

    @Test func inspectFindsCorruption() throws {
        var area = try InitImage.lockspace(space: "LS", geometry: .g512_1M, ioTimeout: 10).final
        area[512 * 5 + 100] ^= 1
        area.putLE(UInt32(0xDEAD), at: 512 * 7)
        guard case .lockspace(let report) = AreaReport.inspect(area, deviceOffset: 0) else {
            Issue.record("not a lockspace"); return
        }
        #expect(report.slots.count == 2000)
        #expect(report.slots[5].verdict == .badChecksum)
        #expect(report.slots[7].verdict == .badMagic)
        #expect(report.slots.filter { $0.verdict == .ok }.count == 1998)
        #expect(AreaReport.inspect(area, deviceOffset: 0).isCorrupt)
    }
}
