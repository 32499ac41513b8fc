import DeltaLease
import DirectIO

/// Runs many operations of one kind side by side, one round at a time: every pending read of
/// every operation goes out as one batch (the engine merges contiguous sectors and submits
/// them together), then every pending write as another; operations that sleep wait in place.
/// A failover that takes over a thousand leases thus costs a handful of submits per ballot
/// phase instead of a thousand.
///
/// Guarantees: each operation gets exactly the bytes of its own ranges, in its own order, and
/// its writes are on disk before it resumes, as with `Runner`. The operations must touch
/// disjoint sectors (different resources). A batch that fails (a timeout or EIO the engine
/// cannot pin on one request) fails every operation that had an I/O in it; each one then
/// handles the error as it would alone.
public struct BatchRunner: Sendable {
    public let runner: Runner

    public init(_ runner: Runner) { self.runner = runner }

    /// Runs every operation to completion; outputs are in the order of `ops`.
    public func run<Op: LeaseOperation>(_ ops: inout [Op]) -> [Op.Output] {
        var steps = ops.indices.map { ops[$0].start(now: runner.now()) }
        var outputs = [Op.Output?](repeating: nil, count: ops.count)
        while true {
            var reads: [Int] = [], writes: [Int] = [], sleepers: [(index: Int, until: Nanos)] = []
            for i in steps.indices {
                switch steps[i] {
                case .finished(let out):
                    if outputs[i] == nil { outputs[i] = out }
                case .perform(.read):
                    reads.append(i)
                case .perform(.write):
                    writes.append(i)
                case .perform(.sleep(let until)):
                    sleepers.append((i, until))
                }
            }
            if reads.isEmpty && writes.isEmpty && sleepers.isEmpty { break }
            if !reads.isEmpty { resumeReads(reads, &ops, &steps) }
            if !writes.isEmpty { resumeWrites(writes, &ops, &steps) }
            if reads.isEmpty && writes.isEmpty, let first = sleepers.map(\.until).min() {
                runner.sleep(first)
            }
            let now = runner.now()
            for s in sleepers where s.until <= now {
                steps[s.index] = ops[s.index].resume(.slept, now: now)
            }
        }
        return outputs.map { $0! }
    }

    private func resumeReads<Op: LeaseOperation>(_ indices: [Int], _ ops: inout [Op], _ steps: inout [Step<Op.Output>])
    {
        let groups = indices.map { i in
            guard case .perform(.read(let ranges)) = steps[i] else { preconditionFailure("not a read") }
            return ranges
        }
        let results: [IOResult]
        do {
            results = try runner.device.read(groups: groups, timeout: runner.ioTimeout).map { .read($0) }
        } catch {
            results = groups.map { _ in .failed(error) }
        }
        let now = runner.now()
        for (k, i) in indices.enumerated() { steps[i] = ops[i].resume(results[k], now: now) }
    }

    private func resumeWrites<Op: LeaseOperation>(_ indices: [Int], _ ops: inout [Op], _ steps: inout [Step<Op.Output>])
    {
        var all: [SectorWrite] = []
        for i in indices {
            guard case .perform(.write(let w)) = steps[i] else { preconditionFailure("not a write") }
            all += w
        }
        let result = runner.perform(.write(all))
        let now = runner.now()
        for i in indices { steps[i] = ops[i].resume(result, now: now) }
    }
}
