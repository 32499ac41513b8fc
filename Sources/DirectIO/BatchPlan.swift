/// How a batch of caller ranges becomes kernel requests: sorted, contiguous (or overlapping,
/// for reads) ranges merged into one request each, and every caller range mapped to its place
/// inside a merged request. Pure; the engine executes it.
struct BatchPlan: Equatable {
    /// The merged requests, in offset order.
    var requests: [IORange]
    /// For each caller range, in the caller's order: which request holds it, and where inside.
    var placements: [(request: Int, offsetInRequest: Int)]

    static func == (a: BatchPlan, b: BatchPlan) -> Bool {
        a.requests == b.requests && a.placements.elementsEqual(b.placements) { $0 == $1 }
    }

    /// Plans reads: overlapping and touching ranges merge.
    static func reads(_ ranges: [IORange]) -> BatchPlan {
        plan(ranges, mergeOverlaps: true)!
    }

    /// Plans writes: touching ranges merge; overlapping ones return nil (undefined order on disk).
    static func writes(_ ranges: [IORange]) -> BatchPlan? {
        plan(ranges, mergeOverlaps: false)
    }

    private static func plan(_ ranges: [IORange], mergeOverlaps: Bool) -> BatchPlan? {
        let order = ranges.indices.sorted { ranges[$0].offset < ranges[$1].offset }
        var requests: [IORange] = []
        var placements = [(request: Int, offsetInRequest: Int)](repeating: (0, 0), count: ranges.count)
        for i in order {
            let r = ranges[i]
            if var last = requests.last, r.offset <= last.end {
                if r.offset < last.end && !mergeOverlaps { return nil }
                let newEnd = max(last.end, r.end)
                last.length = Int(newEnd - last.offset)
                requests[requests.count - 1] = last
                placements[i] = (requests.count - 1, Int(r.offset - last.offset))
            } else {
                requests.append(r)
                placements[i] = (requests.count - 1, 0)
            }
        }
        return BatchPlan(requests: requests, placements: placements)
    }
}
