import Testing
@testable import DirectIO

@Suite struct BatchPlanTests {
    @Test func contiguousAndOverlappingReadsMergeScatteredOnesDoNot() {
        let ranges = [
            IORange(offset: 4096, length: 512),
            IORange(offset: 0, length: 512),
            IORange(offset: 512, length: 1024),
            IORange(offset: 1024, length: 512),  // overlaps the previous one
            IORange(offset: 8192, length: 512),
        ]
        let plan = BatchPlan.reads(ranges)
        #expect(
            plan.requests == [
                IORange(offset: 0, length: 1536), IORange(offset: 4096, length: 512),
                IORange(offset: 8192, length: 512),
            ])
        #expect(plan.placements.map(\.request) == [1, 0, 0, 0, 2])
        #expect(plan.placements.map(\.offsetInRequest) == [0, 0, 512, 1024, 0])
    }

    @Test func overlappingWritesAreRefusedTouchingOnesMerge() {
        #expect(BatchPlan.writes([IORange(offset: 0, length: 1024), IORange(offset: 512, length: 512)]) == nil)
        let plan = BatchPlan.writes([IORange(offset: 512, length: 512), IORange(offset: 0, length: 512)])!
        #expect(plan.requests == [IORange(offset: 0, length: 1024)])
    }
}
