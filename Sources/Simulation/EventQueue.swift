import DeltaLease

/// A min-heap of events by (time, tiebreak); ties between simultaneous events are broken by
/// the seeded generator, so the interleaving is part of what a seed explores.
struct EventQueue {
    struct Entry {
        var time: Nanos
        var tiebreak: UInt64
        var kind: Simulation.EventKind
    }

    private var heap: [Entry] = []

    var isEmpty: Bool { heap.isEmpty }

    /// Every pending event, in no particular order.
    var entries: [Entry] { heap }

    mutating func push(at time: Nanos, _ kind: Simulation.EventKind, tiebreak: UInt64) {
        heap.append(Entry(time: time, tiebreak: tiebreak, kind: kind))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if less(heap[i], heap[p]) { heap.swapAt(i, p); i = p } else { break }
        }
    }

    mutating func pop() -> Entry? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        siftDown(0)
        return top
    }

    func contains(where match: (Entry) -> Bool) -> Bool { heap.contains(where: match) }

    mutating func removeAll(where drop: (Entry) -> Bool) {
        heap.removeAll(where: drop)
        for i in stride(from: heap.count / 2, through: 0, by: -1) { siftDown(i) }
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && less(heap[l], heap[m]) { m = l }
            if r < heap.count && less(heap[r], heap[m]) { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }

    private func less(_ a: Entry, _ b: Entry) -> Bool {
        a.time != b.time ? a.time < b.time : a.tiebreak < b.tiebreak
    }
}
